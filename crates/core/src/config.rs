//! Function configuration served to guests through `wasi:config/store` (DESIGN §8): a function's `config`
//! table, whose values may name the app's `[variables]` as `{{ name }}`. Templates are resolved at deploy
//! (by the CLI, from each variable's value given with `--var NAME=VALUE`, else its default); a required
//! variable without a value fails the deploy, naming it. The resolved values are part of the revision.
//!
//! A variable declared `secret = true` (Spin's `secret` too) is the app secret of that name (`wisp secret
//! set APP NAME`): it has no default and no `--var`; a template naming it stays in the revision as
//! `{{ name }}`, the function is granted that secret, and the node resolves it when it activates the
//! function — the value never leaves the node or enters a stored record.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Largest config value, bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// One `[variables]` entry of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// The value when none is given at deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Whether a deploy must give a value (then `default` is not allowed).
    #[serde(default)]
    pub required: bool,
    /// Whether the value is the app's secret of this name (no default, no `--var`; `required` changes
    /// nothing: a granted secret must be set before the deploy anyway).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

/// How a template naming the secret variable `name` is kept in the revision, for the node to resolve.
pub fn secret_template(name: &str) -> String {
    format!("{{{{ {name} }}}}")
}

/// The variable names `template` uses (`{{ name }}`), in order; an unclosed `{{` ends the list.
pub fn template_names(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        names.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    names
}

/// Checks a config key: 1–255 characters of a-z, 0-9, `_`, `.` and `-`.
pub fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= 255
        && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("config key {key:?} is invalid: use 1-255 characters of a-z, 0-9, '_', '.' and '-'"))
    }
}

/// Checks a grant of secrets: names are config keys (the guest reads each under its name), listed once,
/// none also a key of `config`.
pub fn check_secret_grant(secrets: &[String], config: &BTreeMap<String, String>) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for s in secrets {
        check_key(s).map_err(|e| format!("secrets: {}", e.replace("config key", "secret name")))?;
        if !seen.insert(s) {
            return Err(format!("secrets lists {s:?} twice"));
        }
        if config.get(s).is_some_and(|v| *v != secret_template(s)) {
            return Err(format!("{s:?} is both a config key and a secret: a guest reads both by name, so rename one"));
        }
    }
    Ok(())
}

/// Checks resolved config: keys, value sizes.
pub fn check(config: &BTreeMap<String, String>) -> Result<(), String> {
    for (k, v) in config {
        check_key(k)?;
        if v.len() > MAX_VALUE_BYTES {
            return Err(format!("config value of {k:?} is {} bytes; at most {MAX_VALUE_BYTES}", v.len()));
        }
    }
    Ok(())
}

/// The value of each variable: what `given` says, else its default; a required one without a value, or a
/// given one the manifest does not declare, is an error naming it.
pub fn variable_values(
    declared: &BTreeMap<String, Variable>,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    for name in given.keys() {
        if !declared.contains_key(name) {
            return Err(format!("--var {name}: the manifest declares no variable `{name}` (add it under [variables])"));
        }
    }
    let mut out = BTreeMap::new();
    for (name, v) in declared {
        if v.secret {
            if v.default.is_some() {
                return Err(format!(
                    "variable `{name}` is secret: it takes no default (its value is the app secret `{name}`, set with `wisp secret set APP {name}`)"
                ));
            }
            if given.contains_key(name) {
                return Err(format!(
                    "variable `{name}` is secret: set it with `wisp secret set APP {name}`, not --var (a --var value would be stored in the revision)"
                ));
            }
            out.insert(name.clone(), secret_template(name));
            continue;
        }
        if v.required && v.default.is_some() {
            return Err(format!("variable `{name}` is required and has a default: drop one of them"));
        }
        match given.get(name).or(v.default.as_ref()) {
            Some(value) => {
                out.insert(name.clone(), value.clone());
            }
            None if v.required => {
                return Err(format!("variable `{name}` is required: give it at deploy with --var {name}=VALUE"));
            }
            None => {}
        }
    }
    Ok(out)
}

/// Resolves `{{ name }}` in `template` from `values` (spaces inside the braces are optional).
pub fn resolve(template: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| format!("{template:?}: a `{{{{` without its `}}}}`"))?;
        let name = after[..end].trim();
        let value = values.get(name).ok_or_else(|| {
            format!("{template:?} names variable `{name}`, which has no value (declare it under [variables] with a default, or give --var {name}=VALUE)")
        })?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn templates_and_variables() {
        let declared: BTreeMap<String, Variable> = [
            ("greeting".to_string(), Variable { default: Some("hello".into()), required: false, secret: false }),
            ("token".to_string(), Variable { default: None, required: true, secret: false }),
            ("key".to_string(), Variable { secret: true, ..Default::default() }),
        ]
        .into();
        assert!(variable_values(&declared, &map(&[])).unwrap_err().contains("`token` is required"));
        assert!(
            variable_values(&declared, &map(&[("nope", "x")])).unwrap_err().contains("declares no variable `nope`")
        );
        let values = variable_values(&declared, &map(&[("token", "t0k")])).unwrap();
        assert_eq!(resolve("{{ greeting }}, world ({{token}})", &values).unwrap(), "hello, world (t0k)");
        assert_eq!(resolve("plain", &values).unwrap(), "plain");
        // A secret variable stays a template, for the node to resolve; its names can be listed.
        assert_eq!(resolve("Bearer {{key}}", &values).unwrap(), "Bearer {{ key }}");
        assert_eq!(template_names("{{ a }}-{{b}} {{ open"), ["a", "b"]);
        let e = variable_values(&declared, &map(&[("token", "t"), ("key", "k")])).unwrap_err();
        assert!(e.contains("variable `key` is secret: set it with `wisp secret set APP key`, not --var"), "{e}");
        let bad: BTreeMap<String, Variable> =
            [("key".to_string(), Variable { secret: true, default: Some("x".into()), required: false })].into();
        assert!(variable_values(&bad, &map(&[])).unwrap_err().contains("it takes no default"));
        // A config key may be the secret it names.
        assert!(check_secret_grant(&["key".into()], &map(&[("key", "{{ key }}")])).is_ok());
        assert!(check_secret_grant(&["key".into()], &map(&[("key", "other")])).is_err());
        assert!(resolve("{{ missing }}", &values).unwrap_err().contains("variable `missing`"));
        assert!(resolve("{{ open", &values).unwrap_err().contains("without its"));
        assert!(check(&map(&[("Bad", "x")])).is_err());
        assert!(check(&map(&[("api.url", "x")])).is_ok());
    }
}
