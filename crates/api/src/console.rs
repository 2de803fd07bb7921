//! The web console at `/_wisp/console`: a few static files embedded in the binary (`crates/api/console/`,
//! plain HTML, JavaScript and CSS, no build step, nothing from another origin). The pages hold no data and are
//! served without the bearer token; the script asks for the token on a login screen, keeps it in the tab's
//! `sessionStorage` and calls the control API (`/_wisp/v1/...`) with `Authorization: Bearer`, like the CLI.
//!
//! Every answer carries a strict Content-Security-Policy (this origin only, no inline script or style, no
//! framing), `nosniff`, `no-referrer`, and an `ETag` with `Cache-Control: no-cache`: a browser revalidates
//! and gets 304 until the binary (and so the file) changes.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Where the console is served.
pub const PATH: &str = "/_wisp/console";

/// The policy every console answer carries: scripts, styles, images and API calls from this origin only;
/// no inline script or style (the script builds its DOM and sets styles through the CSSOM); no plugins,
/// no `<base>`, no form posts, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; \
                       form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// FNV-1a of the body, computed at compile time: the ETag.
    hash: u64,
}

/// An [`Asset`] of `crates/api/console/<name>`.
macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../console/", $name)),
            hash: fnv1a(include_bytes!(concat!("../console/", $name))),
        }
    };
}

const INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");

/// The files under `/_wisp/console/`, by name.
const ASSETS: &[Asset] = &[
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("charts.js", "text/javascript; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

const fn fnv1a(body: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < body.len() {
        h ^= body[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

/// The console's routes (no auth: the files hold no data).
pub fn router() -> Router {
    Router::new()
        .route(PATH, get(|headers: HeaderMap| async move { serve(&INDEX, &headers) }))
        .route(&format!("{PATH}/"), get(|headers: HeaderMap| async move { serve(&INDEX, &headers) }))
        .route(&format!("{PATH}/{{*file}}"), get(asset))
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => serve(a, &headers),
        None => {
            let mut r = (StatusCode::NOT_FOUND, format!("no console file `{file}`; the console starts at {PATH}\n"))
                .into_response();
            secure(r.headers_mut());
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
    }
}

/// The headers every console answer carries.
fn secure(h: &mut HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
}

fn serve(a: &Asset, req: &HeaderMap) -> Response {
    let etag = etag(a);
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == etag || t.trim() == "*"));
    let mut r = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { a.body.into_response() };
    let h = r.headers_mut();
    secure(h);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex is a header value"));
    r
}

/// A strong validator of an asset: its hash and length, quoted.
fn etag(a: &Asset) -> String {
    format!("\"{:016x}-{}\"", a.hash, a.body.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = http::Request::get(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = router().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = r.into_parts();
        (parts.status, parts.headers, body.collect().await.unwrap().to_bytes().to_vec())
    }

    #[tokio::test]
    async fn pages_and_assets_have_their_types_and_the_policy() {
        for (path, ty) in [
            ("/_wisp/console", "text/html; charset=utf-8"),
            ("/_wisp/console/", "text/html; charset=utf-8"),
            ("/_wisp/console/app.js", "text/javascript; charset=utf-8"),
            ("/_wisp/console/charts.js", "text/javascript; charset=utf-8"),
            ("/_wisp/console/style.css", "text/css; charset=utf-8"),
            ("/_wisp/console/favicon.svg", "image/svg+xml"),
        ] {
            let (status, h, body) = get(path, &[]).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(h[header::CONTENT_TYPE], ty, "{path}");
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP, "{path}");
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
            assert_eq!(h[header::CACHE_CONTROL], "no-cache", "{path}");
            assert!(!body.is_empty(), "{path}");
        }
        let csp = CSP.split(';').map(str::trim).collect::<Vec<_>>();
        assert!(csp.contains(&"script-src 'self'") && csp.contains(&"default-src 'none'"), "{csp:?}");
        assert!(!CSP.contains("unsafe") && !CSP.contains("http"), "self only, nothing inline: {CSP}");
    }

    #[tokio::test]
    async fn the_page_loads_only_its_own_files_and_no_inline_script() {
        let html = String::from_utf8(INDEX.body.to_vec()).unwrap();
        assert!(!html.contains("<script>") && !html.contains("style="), "inline script or style would be blocked");
        for src in html.split("src=\"").skip(1).chain(html.split("href=\"").skip(1)) {
            let url = &src[..src.find('"').unwrap()];
            let file = url.strip_prefix("/_wisp/console/").unwrap_or_else(|| panic!("{url} is not a console file"));
            assert!(ASSETS.iter().any(|a| a.name == file), "{url} is not embedded");
        }
    }

    #[tokio::test]
    async fn unknown_files_are_404_and_revalidation_is_304() {
        for path in ["/_wisp/console/nope.js", "/_wisp/console/../v1/status", "/_wisp/console/app.js/x"] {
            let (status, h, _) = get(path, &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP, "{path}");
        }
        let (_, h, _) = get("/_wisp/console/app.js", &[]).await;
        let tag = h[header::ETAG].to_str().unwrap().to_string();
        let (status, h, body) = get("/_wisp/console/app.js", &[("if-none-match", &tag)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        assert_eq!(h[header::ETAG], tag.as_str());
        let (status, _, _) = get("/_wisp/console/app.js", &[("if-none-match", "\"other\"")]).await;
        assert_eq!(status, StatusCode::OK);
        let (_, h2, _) = get("/_wisp/console/style.css", &[]).await;
        assert_ne!(h2[header::ETAG], tag.as_str(), "each file has its own validator");
    }
}
