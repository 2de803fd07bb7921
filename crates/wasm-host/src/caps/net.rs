//! The one check every outbound connection of a guest passes (HTTP requests, databases, brokers): the
//! function's `allowed_outbound_hosts` must allow the scheme, host and port; the host is resolved; every
//! address it resolves to is checked against the restricted ranges (loopback, private, link-local, …) and
//! the node's own listen addresses, which only a pattern naming that IP opens. The caller connects to one
//! of the addresses returned — never to the name again — so DNS cannot rebind between check and connect.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use wisp_core::outbound::{HostPattern, Scheme, restricted};

/// Why a connection may not be made.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// No pattern of the grant allows `scheme://host:port`: the message names the grant to add.
    NotAllowed(String),
    /// Allowed, but every address it resolves to is restricted (the message says which and why).
    Prohibited(String),
    /// The name did not resolve in time.
    DnsTimeout,
    /// The name did not resolve.
    Dns(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotAllowed(m) | Refusal::Prohibited(m) => f.write_str(m),
            Refusal::DnsTimeout => f.write_str("resolving the host name timed out"),
            Refusal::Dns(m) => f.write_str(m),
        }
    }
}

/// The addresses of `scheme://host:port` a function with `grant` may connect to (in resolver order), or
/// why it may not. `host` is lowercase, an IP literal without brackets; `own` are the node's listen
/// addresses; resolving is bounded by `timeout`.
pub(crate) async fn check(
    grant: &[HostPattern],
    scheme: Scheme,
    host: &str,
    port: u16,
    own: &[SocketAddr],
    timeout: Duration,
) -> Result<Vec<SocketAddr>, Refusal> {
    let allowing: Vec<&HostPattern> = grant.iter().filter(|p| p.allows(scheme, host, port)).collect();
    if allowing.is_empty() {
        let shown = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
        let wanted = format!("{scheme}://{shown}:{port}");
        return Err(Refusal::NotAllowed(if grant.is_empty() {
            format!(
                "the function has no allowed_outbound_hosts; add `allowed_outbound_hosts = [\"{wanted}\"]` to reach {wanted}"
            )
        } else {
            let list: Vec<String> = grant.iter().map(|p| p.to_string()).collect();
            format!("not in the function's allowed_outbound_hosts ({}); add \"{wanted}\" to reach it", list.join(", "))
        }));
    }
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
            Err(_) => return Err(Refusal::DnsTimeout),
            Ok(Err(e)) => return Err(Refusal::Dns(format!("{host} does not resolve: {e}"))),
            Ok(Ok(a)) => a.collect(),
        },
    };
    let mut why_not = None;
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| {
            let named = allowing.iter().any(|p| p.names_ip(a.ip()));
            let is_own = own.iter().any(|o| o.port() == a.port() && (o.ip() == a.ip() || o.ip().is_unspecified()));
            let reason = if is_own { Some("the node's own listen address") } else { restricted(a.ip()) };
            match reason {
                Some(r) if !named => {
                    why_not = Some(format!(
                        "{host} resolves to {} ({r}), which a function may reach only if allowed_outbound_hosts names that IP",
                        a.ip()
                    ));
                    false
                }
                _ => true,
            }
        })
        .collect();
    if allowed.is_empty() {
        return Err(Refusal::Prohibited(why_not.unwrap_or_else(|| format!("{host} has no address"))));
    }
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(patterns: &[&str]) -> Vec<HostPattern> {
        patterns.iter().map(|p| HostPattern::parse(p).unwrap()).collect()
    }

    #[tokio::test]
    async fn checks_scheme_port_and_restricted_addresses() {
        let t = Duration::from_secs(5);
        let g = grant(&["postgres://127.0.0.1:5432", "redis://*:*"]);
        let ok = check(&g, Scheme::Postgres, "127.0.0.1", 5432, &[], t).await.unwrap();
        assert_eq!(ok, vec!["127.0.0.1:5432".parse().unwrap()]);
        // Another scheme or port is not allowed, and the message names the grant to add.
        let Err(Refusal::NotAllowed(m)) = check(&g, Scheme::Mysql, "127.0.0.1", 3306, &[], t).await else { panic!() };
        assert!(m.contains("add \"mysql://127.0.0.1:3306\""), "{m}");
        // `*` allows the host, but loopback needs the IP named.
        let Err(Refusal::Prohibited(m)) = check(&g, Scheme::Redis, "127.0.0.1", 6379, &[], t).await else { panic!() };
        assert!(m.contains("127.0.0.1 (loopback)"), "{m}");
        // The node's own listen address needs the IP named too.
        let own: SocketAddr = "127.0.0.1:5432".parse().unwrap();
        let g = grant(&["postgres://*:*"]);
        let Err(Refusal::Prohibited(m)) = check(&g, Scheme::Postgres, "127.0.0.1", 5432, &[own], t).await else {
            panic!()
        };
        assert!(m.contains("own listen address"), "{m}");
        let Err(Refusal::NotAllowed(m)) = check(&[], Scheme::Mqtt, "::1", 1883, &[], t).await else { panic!() };
        assert!(m.contains("allowed_outbound_hosts = [\"mqtt://[::1]:1883\"]"), "{m}");
    }
}
