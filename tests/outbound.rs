//! End-to-end: the outbound HTTP capability. Default deny; a grant allows exactly what it names; allowed
//! names that resolve to private addresses are still refused unless the grant names the IP; bytes counted.

mod common;

use common::{Server, pong_server};
use serde_json::{Value, json};

async fn last(s: &Server, name: &str) -> Value {
    s.logs(name).await.last().cloned().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_allows_exactly_what_it_names() {
    let (port, hits) = pong_server().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("ok", "hello-c", json!({"routes": ["/ok"]})).await;
    let grant =
        json!([format!("http://127.0.0.1:{port}"), "http://localhost:*", "https://api.example.com", "http://*:9"]);
    s.deploy("out", "hostile-c", json!({"routes": ["/out"], "allowed_outbound_hosts": grant})).await;

    // The local server the grant names by IP: reached, and the bytes counted.
    let (status, body) = s.get(&format!("/out/outbound?127.0.0.1:{port}/ping")).await;
    assert_eq!((status, body.as_str()), (200, "outbound answered: 200, 4 body bytes\n"));
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(last(&s, "out").await["egress_bytes"], 4, "the 4-byte response body");

    // Not named (another port): denied, and the record lists the grant.
    let (_, body) = s.get("/out/outbound?127.0.0.1:1/").await;
    assert_eq!(body, "outbound refused: error 15 (HTTP-request-denied)\n");
    let logs = last(&s, "out").await["logs"].as_str().unwrap().to_string();
    assert!(logs.contains("not in the function's allowed_outbound_hosts (http://127.0.0.1:"), "{logs}");

    // A granted name that resolves to loopback: refused after resolution (error 4: destination-IP-prohibited).
    let (_, body) = s.get(&format!("/out/outbound?localhost:{port}/")).await;
    assert_eq!(body, "outbound refused: error 4\n");
    let logs = last(&s, "out").await["logs"].as_str().unwrap().to_string();
    // (`localhost` may resolve to ::1 as well; the record names a refused loopback address either way.)
    assert!(
        logs.contains("localhost resolves to 127.0.0.1 (loopback)")
            || logs.contains("localhost resolves to ::1 (loopback)"),
        "{logs}"
    );
    assert!(logs.contains("which a function may reach only if allowed_outbound_hosts names that IP"), "{logs}");
    // Any host on port 9 is granted, but not the metadata address behind it.
    let (_, body) = s.get("/out/outbound?169.254.169.254:9/latest/").await;
    assert_eq!(body, "outbound refused: error 4\n");
    let logs = last(&s, "out").await["logs"].as_str().unwrap().to_string();
    assert!(logs.contains("169.254.169.254 (link-local (cloud metadata))"), "{logs}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1, "nothing else reached the local server");
    assert_eq!(s.get("/ok").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_grants_and_runtime_config_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let bytes = std::fs::read(common::guest("hostile-c")).unwrap();
    let (status, msg) = s
        .deploy_bytes("bad", bytes, json!({"routes": ["/bad"], "allowed_outbound_hosts": ["api.example.com"]}))
        .await
        .unwrap_err();
    assert_eq!(status, 400);
    assert!(
        msg.contains("allowed_outbound_hosts entry `api.example.com`: it has no scheme (write `scheme://host[:port]`"),
        "{msg}"
    );

    let cfg = dir.path().join("node.toml");
    std::fs::write(&cfg, "[outbound_http]\ntimeout_ms = 5000\nretries = 3\n").unwrap();
    let out = std::process::Command::new(common::wisp_bin())
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("other"))
        .arg("--config")
        .arg(&cfg)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("node.toml") && err.contains("unknown field `retries`"), "{err}");
}
