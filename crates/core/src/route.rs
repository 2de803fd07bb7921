//! Route patterns: an optional host plus a path prefix.
//!
//! Syntax: `/path` (any host) or `host/path` (that host only, compared without port, case-insensitively).
//! A path matches itself and everything below it segment-wise: `/api` matches `/api`, `/api/` and `/api/x`,
//! but not `/apix`. `/` matches every path.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A parsed, normalised route pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoutePattern {
    /// Lowercased host without port, or `None` for every host.
    pub host: Option<String>,
    /// The path prefix: starts with `/`, no trailing `/` unless it is `/` itself.
    pub path: String,
}

/// Why a route pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid route `{route}`: {reason} (write `/path` or `host/path`, e.g. `/hello` or `api.example.com/v1`)")]
pub struct RouteError {
    /// The rejected input.
    pub route: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The longest route accepted.
pub const MAX_ROUTE_LEN: usize = 1024;

impl RoutePattern {
    /// Parses and normalises a route.
    pub fn parse(input: &str) -> Result<Self, RouteError> {
        let fail = |reason| Err(RouteError { route: input.to_string(), reason });
        if input.is_empty() {
            return fail("it is empty");
        }
        if input.len() > MAX_ROUTE_LEN {
            return fail("it is longer than 1024 characters");
        }
        if input.contains("://") {
            return fail("leave out the scheme");
        }
        if input.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return fail("it contains whitespace or control characters");
        }
        if input.contains(['?', '#']) {
            return fail("a route cannot contain a query or fragment");
        }
        let (host, path) = match input.find('/') {
            Some(0) => (None, input),
            Some(i) => (Some(&input[..i]), &input[i..]),
            None => return fail("it has no path; add one, e.g. `example.com/`"),
        };
        let host = match host {
            None => None,
            Some(h) => {
                let h = h.to_ascii_lowercase();
                if h.contains(':') {
                    return fail("a route host is matched without its port; leave the port out");
                }
                if !h.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                }) {
                    return fail("the host is not a valid DNS name");
                }
                Some(h)
            }
        };
        let mut segments = Vec::new();
        for seg in path.split('/').skip(1) {
            match seg {
                "" => continue,
                "." | ".." => return fail("a route cannot contain `.` or `..` segments"),
                s => segments.push(s),
            }
        }
        let path = format!("/{}", segments.join("/"));
        Ok(RoutePattern { host, path })
    }

    /// Whether `request_path` falls under this pattern's path (segment-wise prefix).
    pub fn matches_path(&self, request_path: &str) -> bool {
        path_has_prefix(request_path, &self.path)
    }
}

/// Segment-wise prefix test: `/a` is a prefix of `/a`, `/a/` and `/a/b`, not of `/ab`.
pub fn path_has_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

impl TryFrom<String> for RoutePattern {
    type Error = RouteError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RoutePattern::parse(&s)
    }
}

impl From<RoutePattern> for String {
    fn from(r: RoutePattern) -> String {
        r.to_string()
    }
}

impl fmt::Display for RoutePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(h) => write!(f, "{h}{}", self.path),
            None => f.write_str(&self.path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok: &[(&str, Option<&str>, &str)] = &[
            ("/", None, "/"),
            ("/hello", None, "/hello"),
            ("/hello/", None, "/hello"),
            ("//a//b/", None, "/a/b"),
            ("Example.COM/api", Some("example.com"), "/api"),
            ("a-b.example.com/", Some("a-b.example.com"), "/"),
        ];
        for (input, host, path) in ok {
            let r = RoutePattern::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.host.as_deref(), *host, "{input}");
            assert_eq!(r.path, *path, "{input}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "it is empty"),
            ("hello", "it has no path; add one, e.g. `example.com/`"),
            ("http://x/a", "leave out the scheme"),
            ("/a b", "it contains whitespace or control characters"),
            ("/a?x=1", "a route cannot contain a query or fragment"),
            ("/a/../b", "a route cannot contain `.` or `..` segments"),
            ("x.com:80/a", "a route host is matched without its port; leave the port out"),
            ("x..com/a", "the host is not a valid DNS name"),
            ("x_y.com/a", "the host is not a valid DNS name"),
        ];
        for (input, reason) in bad {
            let e = RoutePattern::parse(input).unwrap_err();
            assert_eq!(e.reason, *reason, "{input}");
        }
        assert_eq!(
            RoutePattern::parse("hello").unwrap_err().to_string(),
            "invalid route `hello`: it has no path; add one, e.g. `example.com/` (write `/path` or `host/path`, e.g. `/hello` or `api.example.com/v1`)"
        );
    }

    #[test]
    fn prefix_is_segment_wise() {
        let table = [
            ("/a", "/a", true),
            ("/a/", "/a", true),
            ("/a/b", "/a", true),
            ("/ab", "/a", false),
            ("/", "/a", false),
            ("/anything", "/", true),
            ("/a/b/c", "/a/b", true),
            ("/a/bc", "/a/b", false),
        ];
        for (path, prefix, want) in table {
            assert_eq!(path_has_prefix(path, prefix), want, "{path} under {prefix}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["/", "/a/b", "example.com/x"] {
            assert_eq!(RoutePattern::parse(s).unwrap().to_string(), s);
        }
    }
}
