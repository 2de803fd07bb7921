//! The key-value capability's grant and scoping (DESIGN §8). A function names the stores it may open
//! (`key_value_stores = ["default", "sessions"]`); a store is a label inside the function's namespace and app,
//! so two apps that both open `default` never share data. `""` is an alias of `default`.

/// The store every grant may name, and the one `""` means.
pub const DEFAULT_STORE: &str = "default";

/// Longest key a guest may use, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// Checks a key's size (any string up to [`MAX_KEY_BYTES`]).
pub fn check_key(key: &str) -> Result<(), String> {
    if key.len() > MAX_KEY_BYTES {
        return Err(format!("the key is {} bytes; keys are at most {MAX_KEY_BYTES} bytes", key.len()));
    }
    Ok(())
}

/// Checks a value's size (up to [`MAX_VALUE_BYTES`]).
pub fn check_value(len: usize) -> Result<(), String> {
    if len > MAX_VALUE_BYTES {
        return Err(format!("the value is {len} bytes; values are at most {MAX_VALUE_BYTES} bytes"));
    }
    Ok(())
}

/// The store a guest's `open(identifier)` names (`""` → `default`).
pub fn store_label(identifier: &str) -> &str {
    if identifier.is_empty() { DEFAULT_STORE } else { identifier }
}

/// Checks a grant: each label 1–63 characters of a-z, 0-9, '-' and '_', listed once.
pub fn check_grant(stores: &[String]) -> Result<(), String> {
    check_labels("key_value_stores", stores)
}

/// Checks the labels of a grant named `field` (`key_value_stores`, `sqlite_databases`): each 1–63 characters
/// of a-z, 0-9, '-' and '_', listed once.
pub fn check_labels(field: &str, stores: &[String]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for s in stores {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            return Err(format!(
                "{field} entry {s:?} is not a label: use 1-63 characters of a-z, 0-9, '-' and '_' (e.g. \"default\")"
            ));
        }
        if !seen.insert(s) {
            return Err(format!("{field} lists {s:?} twice"));
        }
    }
    Ok(())
}

/// The storage prefix of a store: namespace, app (or `-` for a function deployed on its own, which then has
/// stores of its own: `-fn-<name>`) and label, each ending in `/`. Labels, names and app names cannot contain
/// `/`, so no two stores share a prefix.
pub fn scope(namespace: &str, app: Option<&str>, function: &str, label: &str) -> String {
    format!("{}/{label}/", owner(namespace, app, function))
}

/// Who owns a function's resources: its namespace and app (`<ns>/app/<app>`), or for a function deployed
/// on its own, the function (`<ns>/fn/<name>`). Store scopes and pooled outbound connections are keyed by it.
pub fn owner(namespace: &str, app: Option<&str>, function: &str) -> String {
    match app {
        Some(app) => format!("{namespace}/app/{app}"),
        None => format!("{namespace}/fn/{function}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_and_scopes() {
        assert!(check_grant(&["default".into(), "sessions_2".into()]).is_ok());
        assert!(check_grant(&["Bad".into()]).unwrap_err().contains("not a label"));
        assert!(check_grant(&["a/b".into()]).is_err());
        assert!(check_grant(&["a".into(), "a".into()]).unwrap_err().contains("twice"));
        assert_eq!(store_label(""), "default");
        assert_eq!(scope("ns", Some("shop"), "cart", "default"), "ns/app/shop/default/");
        assert_ne!(scope("ns", Some("a"), "f", "default"), scope("ns", Some("b"), "f", "default"));
        assert_ne!(scope("ns", None, "a", "default"), scope("ns", Some("a"), "a", "default"));
    }
}
