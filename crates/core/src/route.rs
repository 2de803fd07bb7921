//! Route patterns: an optional host plus a path prefix, or an exact path.
//!
//! Syntax: `/path` (any host) or `host/path` (that host only, compared without port, case-insensitively).
//! A path matches itself and everything below it segment-wise: `/api` matches `/api`, `/api/` and `/api/x`,
//! but not `/apix`. `/` matches every path. A leading `=` makes a route exact: `=/api` matches `/api` only
//! (not `/api/` or `/api/x`), and beats a prefix route of the same path (Spin's exact routes).

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
    /// Whether only this path matches (written `=/path`), not what is below it.
    pub exact: bool,
}

/// Why a route pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid route `{route}`: {reason} (write `/path` or `host/path`, e.g. `/hello` or `api.example.com/v1`; `=/path` for that path only)"
)]
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
        let (exact, input) = match input.strip_prefix('=') {
            Some(rest) => (true, rest),
            None => (false, input),
        };
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
        if path_has_prefix(&path, RESERVED_PREFIX) {
            return fail("paths under `/_wisp` are reserved for the control API");
        }
        Ok(RoutePattern { host, path, exact })
    }

    /// Whether `request_path` falls under this pattern's path (segment-wise prefix), or is it (exact).
    pub fn matches_path(&self, request_path: &str) -> bool {
        if self.exact { request_path == self.path } else { path_has_prefix(request_path, &self.path) }
    }
}

/// The path prefix the control API answers under; no route may claim it.
pub const RESERVED_PREFIX: &str = "/_wisp";

/// Why a request path was refused (400): wisp routes paths as sent, so it refuses the ones whose meaning
/// depends on who normalises them, instead of guessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not absolute.
    #[error("the request path must start with `/`")]
    NotAbsolute,
    /// `//` inside the path.
    #[error("the request path has an empty segment (`//`); remove the doubled slash")]
    EmptySegment,
    /// A `.` or `..` segment.
    #[error("the request path has a `.` or `..` segment; send the resolved path")]
    DotSegment,
    /// `%2F` or `%5C` (an encoded `/` or `\\`), or an encoded dot segment.
    #[error(
        "the request path has an encoded `/`, `\\` or dot segment (`%2F`, `%5C`, `%2E`); send it unencoded or in the query"
    )]
    EncodedSeparator,
}

/// The one path policy of the data plane and the invoke API: reject (never normalise) empty segments,
/// dot segments and encoded separators, so the route that matches is the path the guest sees. A trailing `/`
/// is allowed (`/a/` is under `/a`).
pub fn check_request_path(path: &str) -> Result<(), PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let mut segments = path[1..].split('/').peekable();
    while let Some(seg) = segments.next() {
        if seg.is_empty() && segments.peek().is_some() {
            return Err(PathError::EmptySegment);
        }
        if seg == "." || seg == ".." {
            return Err(PathError::DotSegment);
        }
        if seg.contains('%') {
            let lower = seg.to_ascii_lowercase();
            if lower.contains("%2f") || lower.contains("%5c") {
                return Err(PathError::EncodedSeparator);
            }
            let decoded_dots = lower.replace("%2e", ".");
            if decoded_dots == "." || decoded_dots == ".." {
                return Err(PathError::EncodedSeparator);
            }
        }
    }
    Ok(())
}

/// Normalises a request authority (`host[:port]`) for routing: lowercase, no trailing dot, no port.
/// `None` if it is not a plausible host (empty, or with characters no DNS name or IP literal has). Borrows
/// when nothing needs lowercasing (the common case: no allocation per request).
pub fn routing_host(authority: &str) -> Option<std::borrow::Cow<'_, str>> {
    let host = match authority.strip_prefix('[') {
        // An IPv6 literal: `[::1]:8080`.
        Some(rest) => &authority[..rest.find(']')? + 2],
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(h, port)| if port.bytes().all(|b| b.is_ascii_digit()) { h } else { authority }),
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty()
        || !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'[' | b']' | b':'))
        || (!host.starts_with('[') && (host.starts_with('.') || host.ends_with('.') || host.contains("..")))
    {
        return None;
    }
    Some(if host.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(host.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(host)
    })
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
        if self.exact {
            f.write_str("=")?;
        }
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
            ("=/hello/", None, "/hello"),
            ("=x.com/a", Some("x.com"), "/a"),
        ];
        for (input, host, path) in ok {
            let r = RoutePattern::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.host.as_deref(), *host, "{input}");
            assert_eq!(r.path, *path, "{input}");
            assert_eq!(r.exact, input.starts_with('='), "{input}");
        }
        let exact = RoutePattern::parse("=/a").unwrap();
        assert!(exact.matches_path("/a") && !exact.matches_path("/a/") && !exact.matches_path("/a/b"));
        assert!(RoutePattern::parse("/a").unwrap().matches_path("/a/b"));
        let bad: &[(&str, &str)] = &[
            ("", "it is empty"),
            ("=", "it is empty"),
            ("hello", "it has no path; add one, e.g. `example.com/`"),
            ("http://x/a", "leave out the scheme"),
            ("/a b", "it contains whitespace or control characters"),
            ("/a?x=1", "a route cannot contain a query or fragment"),
            ("/a/../b", "a route cannot contain `.` or `..` segments"),
            ("x.com:80/a", "a route host is matched without its port; leave the port out"),
            ("x..com/a", "the host is not a valid DNS name"),
            ("x_y.com/a", "the host is not a valid DNS name"),
            ("/_wisp", "paths under `/_wisp` are reserved for the control API"),
            ("/_wisp/v1/x", "paths under `/_wisp` are reserved for the control API"),
            ("example.com/_wisp/", "paths under `/_wisp` are reserved for the control API"),
        ];
        for (input, reason) in bad {
            let e = RoutePattern::parse(input).unwrap_err();
            assert_eq!(e.reason, *reason, "{input}");
        }
        assert_eq!(
            RoutePattern::parse("hello").unwrap_err().to_string(),
            "invalid route `hello`: it has no path; add one, e.g. `example.com/` (write `/path` or `host/path`, e.g. `/hello` or `api.example.com/v1`; `=/path` for that path only)"
        );
    }

    #[test]
    fn request_path_policy() {
        for ok in ["/", "/a", "/a/", "/a/b", "/a.b/c..d", "/a%20b", "/%2e%2ex", "/..."] {
            assert_eq!(check_request_path(ok), Ok(()), "{ok}");
        }
        let bad = [
            ("x", PathError::NotAbsolute),
            ("//x", PathError::EmptySegment),
            ("/a//b", PathError::EmptySegment),
            ("/x/../y", PathError::DotSegment),
            ("/x/./y", PathError::DotSegment),
            ("/x/..", PathError::DotSegment),
            ("/a%2Fb", PathError::EncodedSeparator),
            ("/a%2fb", PathError::EncodedSeparator),
            ("/a%5cb", PathError::EncodedSeparator),
            ("/a/%2E%2E/b", PathError::EncodedSeparator),
            ("/a/.%2e", PathError::EncodedSeparator),
        ];
        for (path, want) in bad {
            assert_eq!(check_request_path(path), Err(want), "{path}");
        }
    }

    #[test]
    fn routing_hosts() {
        let table = [
            ("Example.COM", Some("example.com")),
            ("example.com:8080", Some("example.com")),
            ("example.com.", Some("example.com")),
            ("example.com.:80", Some("example.com")),
            ("127.0.0.1:80", Some("127.0.0.1")),
            ("[::1]:8080", Some("[::1]")),
            ("[::1]", Some("[::1]")),
            ("", None),
            ("a b", None),
            ("a/b", None),
            ("..", None),
            ("a..b", None),
            (".a", None),
        ];
        for (authority, want) in table {
            assert_eq!(routing_host(authority).as_deref(), want, "{authority}");
        }
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
        for s in ["/", "/a/b", "example.com/x", "=/a", "=example.com/"] {
            assert_eq!(RoutePattern::parse(s).unwrap().to_string(), s);
        }
    }
}
