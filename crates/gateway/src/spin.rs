//! Spin's request headers, added for functions deployed from a `spin.toml` (`spin_headers`), so Spin SDK code
//! that routes on them runs unchanged. A prefix route is written the way Spin writes a wildcard route
//! (`/api/...`, the path below it in `spin-path-info`), an exact route as itself (no path info).

use http::HeaderValue;
use std::net::SocketAddr;
use wisp_core::RoutePattern;

/// Adds `spin-full-url`, `spin-path-info`, `spin-matched-route`, `spin-component-route`,
/// `spin-raw-component-route`, `spin-base-path` and `spin-client-addr` to `parts`; `route` is the matched
/// route. Headers a client sent under these names are replaced.
pub(crate) fn add_headers(parts: &mut http::request::Parts, route: &RoutePattern, peer: SocketAddr) {
    let path = parts.uri.path();
    let (component_route, path_info, raw) = if route.exact {
        (route.path.as_str(), String::new(), route.path.clone())
    } else {
        let component_route = if route.path == "/" { "" } else { route.path.as_str() };
        let path_info = match path.strip_prefix(component_route) {
            Some("") | None => "/",
            Some(rest) => rest,
        };
        (component_route, path_info.to_string(), format!("{component_route}/..."))
    };
    let host = parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_string();
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let full_url = format!("http://{host}{path_and_query}");
    let h = &mut parts.headers;
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set("spin-full-url", &full_url);
    set("spin-path-info", &path_info);
    set("spin-matched-route", &raw);
    set("spin-raw-component-route", &raw);
    set("spin-component-route", component_route);
    set("spin-base-path", "/");
    set("spin-client-addr", &peer.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_spins_wildcard_route() {
        let req = http::Request::builder().uri("/spin/kv/x?a=1").header("host", "h:3000").body(()).unwrap();
        let (mut parts, ()) = req.into_parts();
        add_headers(&mut parts, &RoutePattern::parse("/spin").unwrap(), "127.0.0.1:5000".parse().unwrap());
        let get = |n: &str| parts.headers.get(n).unwrap().to_str().unwrap().to_string();
        assert_eq!(get("spin-path-info"), "/kv/x");
        assert_eq!(get("spin-full-url"), "http://h:3000/spin/kv/x?a=1");
        assert_eq!(get("spin-matched-route"), "/spin/...");
        assert_eq!(get("spin-component-route"), "/spin");
        assert_eq!(get("spin-client-addr"), "127.0.0.1:5000");
        let (mut root, ()) = http::Request::builder().uri("/").body(()).unwrap().into_parts();
        add_headers(&mut root, &RoutePattern::parse("/").unwrap(), "127.0.0.1:5000".parse().unwrap());
        assert_eq!(root.headers["spin-path-info"], "/");
        assert_eq!(root.headers["spin-matched-route"], "/...");
        let (mut exact, ()) = http::Request::builder().uri("/hello?x").body(()).unwrap().into_parts();
        add_headers(&mut exact, &RoutePattern::parse("=/hello").unwrap(), "127.0.0.1:5000".parse().unwrap());
        assert_eq!(exact.headers["spin-path-info"], "");
        assert_eq!(exact.headers["spin-matched-route"], "/hello");
        assert_eq!(exact.headers["spin-component-route"], "/hello");
    }
}
