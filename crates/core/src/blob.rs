//! The blob capability's domain (DESIGN §8): grants, object names, scopes. A function names the containers
//! it may use (`blob_containers = ["default", "uploads"]`); a container is a label inside the function's
//! namespace and app (the same scoping as key-value stores, [`crate::kv::scope`]), so two apps that both use
//! `default` never share objects.
//!
//! Object names are data: any UTF-8 text up to [`MAX_NAME_BYTES`] bytes except NUL. No backend may derive a
//! file path from one (the embedded backend keeps a name → object index; a file's name is random), so a
//! name like `../../etc/passwd` is just a name.

/// The container every grant may name.
pub const DEFAULT_CONTAINER: &str = "default";

/// Longest object name, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// Checks a `blob_containers` grant (labels as for key-value stores).
pub fn check_grant(containers: &[String]) -> Result<(), String> {
    crate::kv::check_labels("blob_containers", containers)
}

/// Checks an object name: 1 to [`MAX_NAME_BYTES`] bytes, no NUL.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the object name is empty: name the object".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "the object name is {} bytes; object names are at most {MAX_NAME_BYTES} bytes",
            name.len()
        ));
    }
    if name.contains('\0') {
        return Err("the object name contains a NUL character, which object names may not hold".into());
    }
    Ok(())
}

/// The owner of a container's scope (`<ns>/app/<app>/` or `<ns>/fn/<name>/`): the scope without its label,
/// the unit the size quota counts over. A scope without a label is its own owner.
pub fn owner(scope: &str) -> &str {
    let trimmed = scope.strip_suffix('/').unwrap_or(scope);
    match trimmed.rfind('/') {
        Some(i) => &scope[..=i],
        None => scope,
    }
}

/// The label of a container's scope (its last part).
pub fn label(scope: &str) -> &str {
    let trimmed = scope.strip_suffix('/').unwrap_or(scope);
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_grants_and_owners() {
        for ok in ["a", "../../x", "/etc/passwd", "with spaces/and slashes", "ü"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        assert!(check_name("").unwrap_err().contains("empty"));
        assert!(check_name("a\0b").unwrap_err().contains("NUL"));
        assert!(check_name(&"x".repeat(MAX_NAME_BYTES + 1)).unwrap_err().contains("at most 1024 bytes"));
        assert!(check_grant(&["default".into(), "up-loads".into()]).is_ok());
        assert!(check_grant(&["../x".into()]).unwrap_err().starts_with("blob_containers entry"));
        let scope = crate::kv::scope("ns", Some("shop"), "f", "default");
        assert_eq!(owner(&scope), "ns/app/shop/");
        assert_eq!(label(&scope), "default");
        assert_eq!(owner(&crate::kv::scope("ns", None, "f", "x")), "ns/fn/f/");
    }
}
