//! `allowed_outbound_hosts`: which hosts a function may connect to. Default: none.
//!
//! A pattern is `scheme://host[:port]`:
//! - scheme `http`, `https`, `postgres` (or `postgresql`), `mysql`, `redis`, `mqtt`, or `*` (any of them);
//! - host a DNS name (`api.example.com`), `*.example.com` (any subdomain, not the name itself), `*` (any
//!   host), or an IP literal (`127.0.0.1`, `[::1]`);
//! - port a number or `*`; left out, the scheme's default (80, 443, 5432, 3306, 6379, 1883; for `*://`, the
//!   default of the scheme a connection uses).
//!
//! Allowed is not reachable: after DNS resolution the host refuses loopback, link-local (incl. the cloud
//! metadata address 169.254.169.254), private, unique-local and the node's own addresses, unless a pattern
//! names that exact IP. Pure: no IO here; the wasm host does the resolving and connecting.

use std::fmt;
use std::net::IpAddr;

/// The scheme of an outbound connection: what a guest asks to reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// HTTP.
    Http,
    /// HTTPS.
    Https,
    /// PostgreSQL (`postgres://` or `postgresql://`).
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    /// Redis (plain TCP).
    Redis,
    /// MQTT (plain TCP).
    Mqtt,
}

impl Scheme {
    /// Every scheme, for messages.
    pub const ALL: [Scheme; 6] =
        [Scheme::Http, Scheme::Https, Scheme::Postgres, Scheme::Mysql, Scheme::Redis, Scheme::Mqtt];

    /// The port a pattern or address without one means.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
            Scheme::Postgres => 5432,
            Scheme::Mysql => 3306,
            Scheme::Redis => 6379,
            Scheme::Mqtt => 1883,
        }
    }

    /// Its name in patterns and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Postgres => "postgres",
            Scheme::Mysql => "mysql",
            Scheme::Redis => "redis",
            Scheme::Mqtt => "mqtt",
        }
    }

    /// The scheme named `name` (any case), if it is one; `Err` with a reason for one wisp knows but does
    /// not serve (TLS variants of the brokers' schemes).
    pub fn parse(name: &str) -> Result<Option<Scheme>, &'static str> {
        Ok(Some(match name.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "postgres" | "postgresql" => Scheme::Postgres,
            "mysql" => Scheme::Mysql,
            "redis" => Scheme::Redis,
            "mqtt" => Scheme::Mqtt,
            "rediss" => return Err("rediss:// (Redis over TLS) is not supported yet: use redis://"),
            "mqtts" | "ssl" => return Err("mqtts:// (MQTT over TLS) is not supported yet: use mqtt://"),
            _ => return Ok(None),
        }))
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scheme part of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemeMatch {
    /// This scheme.
    One(Scheme),
    /// `*://`: any.
    Any,
}

/// The host part of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// This DNS name exactly (lowercase).
    Name(String),
    /// Any subdomain of this name (`*.example.com` → `example.com`).
    Subdomains(String),
    /// This IP literal: the only way to reach a private, loopback or link-local address.
    Ip(IpAddr),
    /// Any host (`*`).
    Any,
}

/// The port part of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortMatch {
    /// The default port of the connection's scheme.
    Default,
    /// This port.
    Port(u16),
    /// Any port.
    Any,
}

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// Scheme.
    pub scheme: SchemeMatch,
    /// Host.
    pub host: HostMatch,
    /// Port.
    pub port: PortMatch,
}

/// An entry that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "allowed_outbound_hosts entry `{entry}`: {reason} (write `scheme://host[:port]`, e.g. `https://api.example.com`, `http://*.internal:8080`, `postgres://127.0.0.1:5432` or `redis://cache.internal`)"
)]
pub struct PatternError {
    /// The entry.
    pub entry: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl HostPattern {
    /// Parses one entry.
    pub fn parse(entry: &str) -> Result<Self, PatternError> {
        let fail = |reason| Err(PatternError { entry: entry.to_string(), reason });
        let Some((scheme, rest)) = entry.split_once("://") else {
            return fail("it has no scheme");
        };
        let scheme = match Scheme::parse(scheme) {
            Ok(Some(s)) => SchemeMatch::One(s),
            Ok(None) if scheme == "*" => SchemeMatch::Any,
            Ok(None) => return fail("the scheme must be http, https, postgres, mysql, redis, mqtt or *"),
            Err(why) => return fail(why),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return fail("it has no host");
        }
        if rest.contains(['/', '?', '#', '@']) || rest.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return fail("give only a scheme, a host and a port (no path, query or user)");
        }
        let (host, port) = match rest.strip_prefix('[') {
            Some(v6) => {
                let Some((ip, after)) = v6.split_once(']') else {
                    return fail("an IPv6 address must be closed with `]`");
                };
                let port = match after {
                    "" => None,
                    p => match p.strip_prefix(':') {
                        Some(p) => Some(p),
                        None => return fail("after `]` only `:port` may follow"),
                    },
                };
                let Ok(ip) = ip.parse::<std::net::Ipv6Addr>() else {
                    return fail("the IPv6 address does not parse");
                };
                (HostMatch::Ip(IpAddr::V6(ip)), port)
            }
            None => {
                let (h, port) = match rest.rsplit_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (rest, None),
                };
                let h = h.to_ascii_lowercase();
                let host = if h == "*" {
                    HostMatch::Any
                } else if let Ok(ip) = h.parse::<IpAddr>() {
                    HostMatch::Ip(ip)
                } else if let Some(suffix) = h.strip_prefix("*.") {
                    if !is_dns_name(suffix) {
                        return fail("the host after `*.` is not a valid DNS name");
                    }
                    HostMatch::Subdomains(suffix.to_string())
                } else if is_dns_name(&h) {
                    HostMatch::Name(h)
                } else {
                    return fail("the host is not a DNS name, `*.name`, `*` or an IP address");
                };
                (host, port)
            }
        };
        let port = match port {
            None => PortMatch::Default,
            Some("*") => PortMatch::Any,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => PortMatch::Port(n),
                _ => return fail("the port must be 1..=65535 or *"),
            },
        };
        Ok(HostPattern { scheme, host, port })
    }

    /// Whether a connection to `scheme://host:port` is allowed by this pattern (`host` lowercase, an IP
    /// literal without brackets).
    pub fn allows(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        let port = match self.port {
            PortMatch::Any => true,
            PortMatch::Port(p) => p == port,
            PortMatch::Default => port == scheme.default_port(),
        };
        let scheme = match self.scheme {
            SchemeMatch::One(s) => s == scheme,
            SchemeMatch::Any => true,
        };
        let host = match &self.host {
            HostMatch::Any => true,
            HostMatch::Name(n) => n == host,
            HostMatch::Subdomains(s) => {
                host.len() > s.len() + 1 && host.ends_with(s.as_str()) && {
                    host.as_bytes()[host.len() - s.len() - 1] == b'.'
                }
            }
            HostMatch::Ip(ip) => host.parse::<IpAddr>().is_ok_and(|h| h == *ip),
        };
        scheme && port && host
    }

    /// Whether this pattern names `ip` itself: then that address may be reached even if it is private.
    pub fn names_ip(&self, ip: IpAddr) -> bool {
        matches!(self.host, HostMatch::Ip(p) if p == ip)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scheme {
            SchemeMatch::One(s) => write!(f, "{s}://")?,
            SchemeMatch::Any => f.write_str("*://")?,
        }
        match &self.host {
            HostMatch::Name(n) => f.write_str(n)?,
            HostMatch::Subdomains(s) => write!(f, "*.{s}")?,
            HostMatch::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            HostMatch::Ip(ip) => write!(f, "{ip}")?,
            HostMatch::Any => f.write_str("*")?,
        }
        match self.port {
            PortMatch::Default => Ok(()),
            PortMatch::Port(p) => write!(f, ":{p}"),
            PortMatch::Any => f.write_str(":*"),
        }
    }
}

fn is_dns_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// Why an address may not be reached without a pattern naming it, if it may not.
pub fn restricted(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_link_local() {
                Some("link-local (cloud metadata)")
            } else if v4.is_private() {
                Some("private")
            } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
                Some("shared address space (CGNAT)")
            } else if v4.is_unspecified() || o[0] == 0 {
                Some("unspecified")
            } else if v4.is_broadcast() || v4.is_multicast() {
                Some("broadcast or multicast")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if (seg[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if (seg[0] & 0xfe00) == 0xfc00 {
                Some("unique-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

/// Parses a whole list, naming the first bad entry.
pub fn parse_all(entries: &[String]) -> Result<Vec<HostPattern>, PatternError> {
    entries.iter().map(|e| HostPattern::parse(e)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        for (input, shown) in [
            ("https://api.example.com", "https://api.example.com"),
            ("HTTP://API.Example.com:8080/", "http://api.example.com:8080"),
            ("*://*.internal:*", "*://*.internal:*"),
            ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
            ("http://[::1]:80", "http://[::1]:80"),
            ("https://*", "https://*"),
        ] {
            assert_eq!(HostPattern::parse(input).unwrap().to_string(), shown, "{input}");
        }
        for (input, reason) in [
            ("api.example.com", "it has no scheme"),
            ("ftp://x", "the scheme must be http, https, postgres, mysql, redis, mqtt or *"),
            ("http://", "it has no host"),
            ("http://x/path", "give only a scheme, a host and a port (no path, query or user)"),
            ("http://u@x", "give only a scheme, a host and a port (no path, query or user)"),
            ("http://x:0", "the port must be 1..=65535 or *"),
            ("http://x:http", "the port must be 1..=65535 or *"),
            ("http://*.", "the host after `*.` is not a valid DNS name"),
            ("http://a_b", "the host is not a DNS name, `*.name`, `*` or an IP address"),
            ("http://[::1", "an IPv6 address must be closed with `]`"),
        ] {
            assert_eq!(HostPattern::parse(input).unwrap_err().reason, reason, "{input}");
        }
    }

    #[test]
    fn matching() {
        let p = |s| HostPattern::parse(s).unwrap();
        assert!(p("https://api.example.com").allows(Scheme::Https, "api.example.com", 443));
        assert!(!p("https://api.example.com").allows(Scheme::Http, "api.example.com", 80));
        assert!(!p("https://api.example.com").allows(Scheme::Https, "api.example.com", 8443));
        assert!(!p("https://api.example.com").allows(Scheme::Https, "evil.com", 443));
        assert!(p("http://*.internal:8080").allows(Scheme::Http, "a.b.internal", 8080));
        assert!(!p("http://*.internal:8080").allows(Scheme::Http, "internal", 8080));
        assert!(!p("http://*.internal:8080").allows(Scheme::Http, "xinternal", 8080));
        assert!(p("*://x.com").allows(Scheme::Https, "x.com", 443) && p("*://x.com").allows(Scheme::Http, "x.com", 80));
        assert!(p("http://127.0.0.1:*").allows(Scheme::Http, "127.0.0.1", 9999));
        assert!(p("http://127.0.0.1:*").names_ip("127.0.0.1".parse().unwrap()));
        assert!(!p("http://*:*").names_ip("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn database_and_broker_schemes() {
        use Scheme::*;
        let p = |s| HostPattern::parse(s).unwrap();
        // (pattern, scheme, host, port, allowed)
        for (pattern, scheme, host, port, allowed) in [
            ("postgres://db.internal", Postgres, "db.internal", 5432, true),
            ("postgres://db.internal", Postgres, "db.internal", 5433, false),
            ("postgresql://db.internal:6000", Postgres, "db.internal", 6000, true),
            ("postgres://db.internal", Mysql, "db.internal", 5432, false),
            ("postgres://db.internal", Http, "db.internal", 80, false),
            ("mysql://127.0.0.1", Mysql, "127.0.0.1", 3306, true),
            ("mysql://127.0.0.1", Mysql, "127.0.0.1", 3307, false),
            ("mysql://127.0.0.1:*", Mysql, "127.0.0.1", 3307, true),
            ("redis://cache", Redis, "cache", 6379, true),
            ("redis://cache", Redis, "cache", 6380, false),
            ("redis://*.cache.internal:*", Redis, "a.cache.internal", 7000, true),
            ("mqtt://broker", Mqtt, "broker", 1883, true),
            ("mqtt://broker", Mqtt, "broker", 8883, false),
            ("mqtt://broker:*", Redis, "broker", 6379, false),
            // `*://` with no port: the default port of the connection's own scheme.
            ("*://db", Postgres, "db", 5432, true),
            ("*://db", Redis, "db", 6379, true),
            ("*://db", Redis, "db", 5432, false),
            ("*://db:*", Mqtt, "db", 1, true),
            // HTTP keeps its meaning.
            ("http://x", Http, "x", 80, true),
            ("https://x", Https, "x", 443, true),
            ("http://x", Https, "x", 443, false),
        ] {
            assert_eq!(p(pattern).allows(scheme, host, port), allowed, "{pattern} vs {scheme}://{host}:{port}");
        }
        for (input, shown) in [
            ("postgres://127.0.0.1:5432", "postgres://127.0.0.1:5432"),
            ("PostgreSQL://db", "postgres://db"),
            ("mysql://[::1]", "mysql://[::1]"),
            ("redis://*:*", "redis://*:*"),
            ("mqtt://broker.example.com", "mqtt://broker.example.com"),
        ] {
            assert_eq!(p(input).to_string(), shown, "{input}");
        }
        for (input, reason) in [
            ("rediss://cache", "rediss:// (Redis over TLS) is not supported yet: use redis://"),
            ("mqtts://broker", "mqtts:// (MQTT over TLS) is not supported yet: use mqtt://"),
            ("mongodb://x", "the scheme must be http, https, postgres, mysql, redis, mqtt or *"),
        ] {
            assert_eq!(HostPattern::parse(input).unwrap_err().reason, reason, "{input}");
        }
        assert_eq!(Scheme::ALL.map(Scheme::default_port), [80, 443, 5432, 3306, 6379, 1883]);
    }

    #[test]
    fn restricted_addresses() {
        for (ip, why) in [
            ("127.0.0.1", Some("loopback")),
            ("169.254.169.254", Some("link-local (cloud metadata)")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("192.168.1.1", Some("private")),
            ("100.64.0.1", Some("shared address space (CGNAT)")),
            ("0.0.0.0", Some("unspecified")),
            ("::1", Some("loopback")),
            ("fe80::1", Some("link-local")),
            ("fd00::1", Some("unique-local")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("93.184.216.34", None),
            ("2606:4700::1111", None),
        ] {
            assert_eq!(restricted(ip.parse().unwrap()), why, "{ip}");
        }
    }
}
