//! The route table: maps a request's host and path to a target.
//!
//! Rules, in order: a route naming the request's host beats a host-less route; among those, an exact route
//! (`=/path`) of the request's path wins, then the longest path prefix (segment-wise, see
//! [`wisp_core::route::path_has_prefix`]). Two functions may not claim the same host + path (an exact and
//! a prefix route of one path are different routes); [`RouteTable::build`] rejects that naming both.
//!
//! Cost: a lookup is O(path depth), whatever the number of routes — one hash lookup for an exact route
//! (only when the table has any), then the path's segment-wise prefixes longest first, each one hash lookup. The maps are persistent (`imbl`), so a changed table
//! ([`RouteTable::with_routes`]) shares everything it did not change: O(changed routes), not O(routes).

#![warn(missing_docs)]

use std::collections::HashMap;
use std::fmt::Display;
use wisp_core::RoutePattern;

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
    pattern: RoutePattern,
    target: T,
}

/// Routes by path.
type Paths<T> = imbl::HashMap<String, Entry<T>>;

/// The routes of one host (or of every host): by path prefix, and exact ones.
#[derive(Debug, Clone)]
struct Routes<T: Clone> {
    prefix: Paths<T>,
    exact: Paths<T>,
}

impl<T: Clone> Default for Routes<T> {
    fn default() -> Self {
        Routes { prefix: imbl::HashMap::new(), exact: imbl::HashMap::new() }
    }
}

impl<T: Clone> Routes<T> {
    fn paths_mut(&mut self, exact: bool) -> &mut Paths<T> {
        if exact { &mut self.exact } else { &mut self.prefix }
    }

    fn is_empty(&self) -> bool {
        self.prefix.is_empty() && self.exact.is_empty()
    }

    /// The exact route of `path`, else the longest prefix route.
    fn find(&self, path: &str) -> Option<Match<'_, T>> {
        if !self.exact.is_empty()
            && let Some(e) = self.exact.get(path)
        {
            return Some(Match { target: &e.target, pattern: &e.pattern });
        }
        longest(&self.prefix, path)
    }
}

/// An immutable route table; derive a changed one and swap it in atomically.
#[derive(Debug, Clone)]
pub struct RouteTable<T: Clone> {
    by_host: imbl::HashMap<String, Routes<T>>,
    any_host: Routes<T>,
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

impl<T: Clone> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable { by_host: imbl::HashMap::new(), any_host: Routes::default(), len: 0 }
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
            let path = pattern.path.clone();
            let entry = Entry { pattern: pattern.clone(), target };
            let routes = match &pattern.host {
                Some(h) => table.by_host.entry(h.clone()).or_default(),
                None => &mut table.any_host,
            };
            routes.paths_mut(pattern.exact).insert(path, entry);
            table.len += 1;
        }
        Ok(table)
    }

    /// This table with `target`'s routes changed from `old` to `new`; a route another target holds is a
    /// conflict (and nothing changes).
    pub fn with_routes(
        &self,
        target: &T,
        old: &[RoutePattern],
        new: &[RoutePattern],
    ) -> Result<Self, RouteConflict<T>> {
        let mut t = self.clone();
        for p in old {
            let routes = match &p.host {
                Some(h) => t.by_host.get_mut(h.as_str()),
                None => Some(&mut t.any_host),
            };
            if let Some(paths) = routes.map(|r| r.paths_mut(p.exact))
                && paths.get(p.path.as_str()).is_some_and(|e| e.target == *target)
            {
                paths.remove(p.path.as_str());
                t.len -= 1;
            }
        }
        for p in new {
            let routes = match &p.host {
                Some(h) => t.by_host.entry(h.clone()).or_default(),
                None => &mut t.any_host,
            };
            let paths = routes.paths_mut(p.exact);
            match paths.get(p.path.as_str()) {
                Some(e) if e.target == *target => continue,
                Some(e) => {
                    return Err(RouteConflict {
                        route: p.clone(),
                        existing: e.target.clone(),
                        claimant: target.clone(),
                    });
                }
                None => {
                    paths.insert(p.path.clone(), Entry { pattern: p.clone(), target: target.clone() });
                    t.len += 1;
                }
            }
        }
        t.by_host.retain(|_, paths| !paths.is_empty());
        Ok(t)
    }
}

impl<T: Clone> RouteTable<T> {
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
            if let Some(m) = entries.and_then(|e| e.find(path)) {
                return Some(m);
            }
        }
        self.any_host.find(path)
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The entry for the longest segment-wise prefix of `path`: `/a/b/c`, then `/a/b`, `/a`, `/`.
fn longest<'a, T: Clone>(entries: &'a Paths<T>, path: &str) -> Option<Match<'a, T>> {
    if entries.is_empty() {
        return None;
    }
    // `/a/` is under `/a` (patterns have no trailing slash).
    let mut p = if path.len() > 1 { path.strip_suffix('/').unwrap_or(path) } else { path };
    loop {
        if let Some(e) = entries.get(p) {
            return Some(Match { target: &e.target, pattern: &e.pattern });
        }
        match p.rfind('/') {
            Some(0) if p.len() > 1 => p = "/",
            Some(i) if i > 0 => p = &p[..i],
            _ => return None,
        }
    }
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
    fn agrees_with_the_segment_wise_definition() {
        // Every path over a small alphabet against every route set drawn from it: the hash walk finds what
        // the definition (longest segment-wise prefix) says.
        let patterns = ["/", "/a", "/a/b", "/ab", "/a/b/c", "/b", "/a/bc"];
        let paths = ["/", "/a", "/a/", "/ab", "/a/b", "/a/b/", "/a/bc", "/a/b/c/d", "/b/a", "/c", "/abc", "/a/bcd"];
        for mask in 0u32..(1 << patterns.len()) {
            let chosen: Vec<&str> =
                patterns.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, p)| *p).collect();
            let t = RouteTable::build(chosen.iter().map(|p| (r(p), *p))).unwrap();
            for path in paths {
                let want = chosen
                    .iter()
                    .filter(|p| wisp_core::route::path_has_prefix(path, p))
                    .max_by_key(|p| p.len())
                    .copied();
                assert_eq!(t.lookup(None, path).map(|m| *m.target), want, "{path} in {chosen:?}");
            }
        }
    }

    #[test]
    fn a_changed_table_equals_one_built_from_scratch() {
        let t = table(&[("/a", "a"), ("x.com/b", "b"), ("/c", "c")]);
        let t2 = t.with_routes(&"a", &[r("/a")], &[r("/a2"), r("y.com/a")]).unwrap();
        for (host, path, want) in [
            (None, "/a", None),
            (None, "/a2/x", Some("a")),
            (Some("y.com"), "/a", Some("a")),
            (Some("x.com"), "/b", Some("b")),
        ] {
            assert_eq!(t2.lookup(host, path).map(|m| *m.target), want, "{host:?} {path}");
        }
        assert_eq!(t2.len(), 4);
        // The old table is untouched, and a claimed route is a conflict.
        assert_eq!(t.lookup(None, "/a").map(|m| *m.target), Some("a"));
        let e = t2.with_routes(&"d", &[], &[r("/c")]).unwrap_err();
        assert_eq!((e.existing, e.claimant), ("c", "d"));
        // Removing every route of a target.
        let t3 = t2.with_routes(&"a", &[r("/a2"), r("y.com/a")], &[]).unwrap();
        assert_eq!(t3.len(), 2);
        assert!(t3.lookup(Some("y.com"), "/a").is_none());
    }

    #[test]
    fn an_exact_route_matches_its_path_only_and_beats_a_prefix() {
        let t = table(&[("=/a", "exact"), ("/a", "prefix"), ("=/b", "b"), ("x.com/", "x"), ("=x.com/a", "x-exact")]);
        let cases: &[(Option<&str>, &str, Option<&str>)] = &[
            (None, "/a", Some("exact")),
            (None, "/a/", Some("prefix")),
            (None, "/a/c", Some("prefix")),
            (None, "/b", Some("b")),
            (None, "/b/", None),
            (None, "/b/c", None),
            (Some("x.com"), "/a", Some("x-exact")),
            (Some("x.com"), "/a/c", Some("x")),
            (Some("x.com"), "/b", Some("x")),
        ];
        for (host, path, want) in cases {
            assert_eq!(t.lookup(*host, path).map(|m| *m.target), *want, "{host:?} {path}");
        }
        // An exact and a prefix route of one path are two routes; two exact claims of one path conflict.
        assert!(RouteTable::build([(r("=/a"), "one"), (r("=/a"), "two")]).is_err());
        let t2 = t.with_routes(&"exact", &[r("=/a")], &[]).unwrap();
        assert_eq!(t2.lookup(None, "/a").map(|m| *m.target), Some("prefix"));
        assert!(t2.with_routes(&"other", &[], &[r("=/b")]).is_err());
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
