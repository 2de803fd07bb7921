//! End-to-end: hostile clients. Each case asserts the node keeps serving a healthy function meanwhile, and
//! that the connection the attacker holds is closed by the server (read to EOF: the server decides when).

mod common;

use common::Server;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Short defences so the test sees them act; the cases wait for the server to act, never for a duration.
const FAST: &[&str] =
    &["--first-byte-timeout-ms", "300", "--header-read-timeout-ms", "300", "--idle-timeout-ms", "300"];

fn addr(s: &Server) -> String {
    s.url.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection; returns what it sent. Bounded, so a server that never
/// closes fails the test instead of hanging it.
async fn until_closed(c: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match c.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read).await.expect("the server never closed the connection");
    out
}

/// One raw HTTP/1.1 exchange on a new connection; returns the status line's code and the whole answer.
async fn raw(s: &Server, request: &str) -> (u16, String) {
    let mut c = TcpStream::connect(addr(s)).await.unwrap();
    c.write_all(request.as_bytes()).await.unwrap();
    let out = String::from_utf8_lossy(&until_closed(&mut c).await).into_owned();
    let code = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, out)
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_idle_connections_are_closed_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), FAST).without_connection_reuse();
    s.deploy("ok", "hello-c", json!({"routes": ["/ok"]})).await;

    // Idle TCP connections that never send a byte.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(addr(&s)).await.unwrap());
    }
    // Half an h2 preface, then nothing.
    let mut preface = TcpStream::connect(addr(&s)).await.unwrap();
    preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    // Half a request head, then nothing.
    let mut partial = TcpStream::connect(addr(&s)).await.unwrap();
    partial.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    // A keep-alive connection that served one request and then sits idle.
    let mut keep = TcpStream::connect(addr(&s)).await.unwrap();
    keep.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();

    // Meanwhile the healthy function serves.
    assert_eq!(s.get("/ok").await, (200, "Hello from C!\n".into()));

    for c in &mut idle {
        assert!(until_closed(c).await.is_empty());
    }
    assert!(until_closed(&mut preface).await.is_empty());
    let answered = String::from_utf8_lossy(&until_closed(&mut partial).await).into_owned();
    assert!(!answered.contains("Hello"), "a partial head must not be served: {answered}");
    let served = String::from_utf8_lossy(&until_closed(&mut keep).await).into_owned();
    assert!(served.starts_with("HTTP/1.1 200") && served.contains("Hello from C!\n"), "{served}");
    assert_eq!(s.get("/ok").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_cap_are_closed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = FAST.to_vec();
    args.extend(["--max-connections", "4"]);
    let s = Server::start_with(&dir.path().join("data"), &args).without_connection_reuse();
    s.deploy("ok", "hello-c", json!({"routes": ["/ok"]})).await;

    // 2x the cap: every connection is closed by the server, those past the cap at once, the others when
    // their first-byte deadline passes; none of them is ever served.
    let mut conns = Vec::new();
    for _ in 0..8 {
        conns.push(TcpStream::connect(addr(&s)).await.unwrap());
    }
    for c in &mut conns {
        assert!(until_closed(c).await.is_empty());
    }
    // The slots are free again.
    for _ in 0..4 {
        assert_eq!(s.get("/ok").await.0, 200);
    }
    let log = std::fs::read_to_string(dir.path().join("data.log")).unwrap();
    assert!(log.contains("--max-connections reached"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_authority_and_one_path_policy() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("a", "hello-c", json!({"routes": ["a.example/r"]})).await;
    s.deploy("b", "hello-wagi", json!({"kind": "wagi", "routes": ["b.example/r"]})).await;
    s.deploy("ok", "hello-c", json!({"routes": ["/ok"]})).await;

    // The absolute-form target routes (and a Host naming the same host is fine).
    let (code, out) =
        raw(&s, "GET http://a.example/r HTTP/1.1\r\nHost: A.example:80\r\nConnection: close\r\n\r\n").await;
    assert_eq!(code, 200, "{out}");
    assert!(out.contains("Hello from C!\n"), "{out}");
    let (code, out) = raw(&s, "GET /r HTTP/1.1\r\nHost: b.example.\r\nConnection: close\r\n\r\n").await;
    assert_eq!(code, 200, "{out}");
    assert!(out.contains("Hello from WAGI!\n"), "{out}");

    let refused = [
        ("GET http://a.example/r HTTP/1.1\r\nHost: b.example\r\n", "names another host than the request target"),
        ("GET /r HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n", "more than one Host header"),
        ("GET //ok HTTP/1.1\r\nHost: x\r\n", "empty segment"),
        ("GET /ok/../ok HTTP/1.1\r\nHost: x\r\n", "`.` or `..` segment"),
        ("GET /ok%2Fx HTTP/1.1\r\nHost: x\r\n", "encoded `/`"),
    ];
    for (head, why) in refused {
        let (code, out) = raw(&s, &format!("{head}Connection: close\r\n\r\n")).await;
        assert_eq!(code, 400, "{head}: {out}");
        assert!(out.contains(why), "{head}: {out}");
        assert!(out.to_ascii_lowercase().contains("x-content-type-options: nosniff"), "{out}");
        assert_eq!(s.get("/ok").await.0, 200);
    }
    // The invoke API applies the same policy to the path it passes on, undecoded.
    for (path, code) in [("/x%2Fy", 400), ("/x%3Fy", 200)] {
        let r = s
            .api(reqwest::Method::GET, &format!("/_wisp/v1/namespaces/default/functions/ok/invoke{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), code, "{path}");
    }
    // Both paths are one dispatch: each record says what started it.
    let triggers: Vec<String> = s.logs("ok").await.iter().map(|r| r["trigger"].as_str().unwrap().to_string()).collect();
    assert!(triggers.contains(&"http".to_string()) && triggers.contains(&"api".to_string()), "{triggers:?}");
    // (reqwest resolves dot segments itself, so that one goes raw.)
    let head = format!(
        "GET /_wisp/v1/namespaces/default/functions/ok/invoke/x/../y HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        s.token
    );
    let (code, out) = raw(&s, &head).await;
    assert_eq!(code, 400, "{out}");
    assert!(out.contains("`.` or `..` segment"), "{out}");
    // Routes under the API prefix can never be reached, so they are refused at deploy.
    let bytes = std::fs::read(common::guest("hello-c")).unwrap();
    let (status, msg) = s.deploy_bytes("api", bytes, json!({"routes": ["/_wisp/x"]})).await.unwrap_err();
    assert_eq!(status, 400);
    assert!(msg.contains("paths under `/_wisp` are reserved for the control API"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_api_can_have_a_listener_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), &["--api-listen", "127.0.0.1:0"]);
    let api = s.api_url.clone().expect("the API listening line");
    assert_ne!(api, s.url);
    s.deploy("ok", "hello-c", json!({"routes": ["/ok"]})).await;
    assert_eq!(s.get("/ok").await, (200, "Hello from C!\n".into()));
    // The data plane does not answer the API, and the API listener serves no functions.
    let r = s.http.get(format!("{}/_wisp/v1/status", s.url)).bearer_auth(&s.token).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("not served on this listener"));
    let r = s.http.get(format!("{api}/ok")).bearer_auth(&s.token).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("no such API endpoint"));
    assert_eq!(s.status().await["functions"], 1);
    let out = s.cli(&["ls"]);
    assert!(common::stdout(&out).contains("ok"), "{}", common::stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn h2c_with_prior_knowledge_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("ok", "hello-c", json!({"routes": ["/ok"]})).await;
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let r = h2.get(format!("{}/ok", s.url)).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "Hello from C!\n");
}
