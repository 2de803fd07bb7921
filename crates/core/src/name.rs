//! Names of namespaces, apps and functions.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest name accepted (a DNS label).
pub const MAX_NAME_LEN: usize = 63;

/// A validated name: 1–63 characters of `a-z`, `0-9` and `-`, starting with a letter and not ending with `-`
/// (a DNS label, so a name can become a host name or a NATS subject token later).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

/// Why a name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid name `{name}`: {reason} (use 1-63 characters of a-z, 0-9 and '-', starting with a letter)")]
pub struct NameError {
    /// The rejected input.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Name {
    /// Validates `s` as a name.
    pub fn new(s: impl Into<String>) -> Result<Self, NameError> {
        let name = s.into();
        let fail = |reason| Err(NameError { name: name.clone(), reason });
        if name.is_empty() {
            return fail("it is empty");
        }
        if name.len() > MAX_NAME_LEN {
            return fail("it is longer than 63 characters");
        }
        if !name.as_bytes()[0].is_ascii_lowercase() {
            return fail("it must start with a lowercase letter");
        }
        if name.ends_with('-') {
            return fail("it must not end with '-'");
        }
        if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return fail("it contains a character other than a-z, 0-9 and '-'");
        }
        Ok(Name(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Name::new(s)
    }
}

impl From<Name> for String {
    fn from(n: Name) -> String {
        n.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A function's identity: namespace + name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FunctionKey {
    /// The namespace (tenant boundary later).
    pub namespace: Name,
    /// The function's name, unique within its namespace.
    pub name: Name,
}

impl FunctionKey {
    /// A key from two validated names.
    pub fn new(namespace: Name, name: Name) -> Self {
        FunctionKey { namespace, name }
    }

    /// The store key: `<namespace>/<name>`.
    pub fn store_key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl fmt::Display for FunctionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let table: &[(&str, Option<&str>)] = &[
            ("hello", None),
            ("hello-c2", None),
            ("a", None),
            ("", Some("it is empty")),
            ("Hello", Some("it must start with a lowercase letter")),
            ("1abc", Some("it must start with a lowercase letter")),
            ("abc-", Some("it must not end with '-'")),
            ("ab_c", Some("it contains a character other than a-z, 0-9 and '-'")),
            ("ab.c", Some("it contains a character other than a-z, 0-9 and '-'")),
        ];
        for (input, want) in table {
            match (Name::new(*input), want) {
                (Ok(_), None) => {}
                (Err(e), Some(reason)) => assert_eq!(e.reason, *reason, "{input}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
        assert!(Name::new("a".repeat(63)).is_ok());
        assert_eq!(Name::new("a".repeat(64)).unwrap_err().reason, "it is longer than 63 characters");
        assert_eq!(
            Name::new("Bad").unwrap_err().to_string(),
            "invalid name `Bad`: it must start with a lowercase letter (use 1-63 characters of a-z, 0-9 and '-', starting with a letter)"
        );
    }
}
