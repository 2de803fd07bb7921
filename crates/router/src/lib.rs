//! The route table: maps a request's host and path to a target.
//!
//! Rules, in order: a route naming the request's host beats a host-less route; among those, the longest
//! path prefix wins (segment-wise, see [`wisp_core::route::path_has_prefix`]). Two functions may not claim
//! the same host + path; [`RouteTable::build`] rejects that naming both.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::fmt::Display;
use wisp_core::RoutePattern;
use wisp_core::route::path_has_prefix;

/// Two targets claim the same route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "route `{route}` is already served by `{existing}`; `{claimant}` cannot claim it too (pick another route, or remove it from `{existing}` first)"
)]
pub struct RouteConflict<T: Display> {
    /// The contested route.
    pub route: RoutePattern,
    /// Who had it.
    pub existing: T,
    /// Who asked for it.
    pub claimant: T,
}

#[derive(Debug, Clone)]
struct Entry<T> {
    path: String,
    pattern: RoutePattern,
    target: T,
}

/// An immutable route table; rebuild it to change routes and swap it in atomically.
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    by_host: HashMap<String, Vec<Entry<T>>>,
    any_host: Vec<Entry<T>>,
    len: usize,
}

/// A successful lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match<'a, T> {
    /// The target.
    pub target: &'a T,
    /// The pattern that matched.
    pub pattern: &'a RoutePattern,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable { by_host: HashMap::new(), any_host: Vec::new(), len: 0 }
    }
}

impl<T: Clone + PartialEq + Display> RouteTable<T> {
    /// Builds a table, or names the first conflict. One target may list a route once; listing the same
    /// route from the same target twice is not a conflict.
    pub fn build(routes: impl IntoIterator<Item = (RoutePattern, T)>) -> Result<Self, RouteConflict<T>> {
        let mut seen: HashMap<RoutePattern, T> = HashMap::new();
        let mut table = RouteTable::default();
        for (pattern, target) in routes {
            if let Some(existing) = seen.get(&pattern) {
                if *existing == target {
                    continue;
                }
                return Err(RouteConflict { route: pattern, existing: existing.clone(), claimant: target });
            }
            seen.insert(pattern.clone(), target.clone());
            let entry = Entry { path: pattern.path.clone(), pattern: pattern.clone(), target };
            match &pattern.host {
                Some(h) => table.by_host.entry(h.clone()).or_default().push(entry),
                None => table.any_host.push(entry),
            }
            table.len += 1;
        }
        let longest_first = |v: &mut Vec<Entry<T>>| v.sort_by_key(|e| std::cmp::Reverse(e.path.len()));
        table.by_host.values_mut().for_each(longest_first);
        longest_first(&mut table.any_host);
        Ok(table)
    }
}

impl<T> RouteTable<T> {
    /// Finds the target for a request. `host` is the request's Host (a port is ignored); `path` its path
    /// without query.
    pub fn lookup(&self, host: Option<&str>, path: &str) -> Option<Match<'_, T>> {
        if let Some(host) = host.filter(|_| !self.by_host.is_empty()) {
            let host = strip_port(host);
            let entries = if host.bytes().any(|b| b.is_ascii_uppercase()) {
                self.by_host.get(&host.to_ascii_lowercase())
            } else {
                self.by_host.get(host)
            };
            if let Some(m) = entries.and_then(|e| longest(e, path)) {
                return Some(m);
            }
        }
        longest(&self.any_host, path)
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every (pattern, target) pair.
    pub fn iter(&self) -> impl Iterator<Item = (&RoutePattern, &T)> {
        self.by_host.values().flatten().chain(self.any_host.iter()).map(|e| (&e.pattern, &e.target))
    }
}

fn longest<'a, T>(entries: &'a [Entry<T>], path: &str) -> Option<Match<'a, T>> {
    entries.iter().find(|e| path_has_prefix(path, &e.path)).map(|e| Match { target: &e.target, pattern: &e.pattern })
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // IPv6 literal: [::1]:8080
        return match host.find(']') {
            Some(i) => &host[..=i],
            None => host,
        };
    }
    match host.rfind(':') {
        Some(i) => &host[..i],
        None => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> RoutePattern {
        RoutePattern::parse(s).unwrap()
    }

    fn table(routes: &[(&str, &'static str)]) -> RouteTable<&'static str> {
        RouteTable::build(routes.iter().map(|(p, t)| (r(p), *t))).unwrap()
    }

    #[test]
    fn lookup_table() {
        let t = table(&[
            ("/", "root"),
            ("/api", "api"),
            ("/api/users", "users"),
            ("shop.example.com/", "shop"),
            ("shop.example.com/api", "shop-api"),
        ]);
        let cases: &[(Option<&str>, &str, Option<&str>)] = &[
            (None, "/", Some("root")),
            (None, "/x", Some("root")),
            (None, "/api", Some("api")),
            (None, "/api/", Some("api")),
            (None, "/apix", Some("root")),
            (None, "/api/users/7", Some("users")),
            (None, "/api/usersx", Some("api")),
            (Some("localhost:8080"), "/api", Some("api")),
            (Some("shop.example.com"), "/", Some("shop")),
            (Some("shop.example.com:8080"), "/api/users", Some("shop-api")),
            (Some("SHOP.Example.com"), "/other", Some("shop")),
            (Some("other.example.com"), "/api/users", Some("users")),
        ];
        for (host, path, want) in cases {
            let got = t.lookup(*host, path).map(|m| *m.target);
            assert_eq!(got, *want, "{host:?} {path}");
        }
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn no_match_without_root() {
        let t = table(&[("/a", "a")]);
        assert!(t.lookup(None, "/b").is_none());
        assert!(t.lookup(Some("x"), "/").is_none());
    }

    #[test]
    fn conflicts_name_both_targets() {
        let e = RouteTable::build([(r("/a"), "one"), (r("/b"), "one"), (r("/a/"), "two")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "route `/a` is already served by `one`; `two` cannot claim it too (pick another route, or remove it from `one` first)"
        );
        // Different hosts or paths do not conflict; the same target listing a route twice is harmless.
        assert!(RouteTable::build([(r("/a"), "one"), (r("x.com/a"), "two"), (r("/a"), "one")]).is_ok());
    }

    #[test]
    fn ipv6_host_ports_are_stripped() {
        assert_eq!(strip_port("[::1]:8080"), "[::1]");
        assert_eq!(strip_port("example.com"), "example.com");
    }
}
