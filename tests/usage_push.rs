//! End-to-end: the usage push (`[usage_push]`). Every invocation reaches a receiver the test runs as one
//! CloudEvent (`dev.wisp.invocation.v1`, subject = namespace) in signed batches; a batch the receiver refuses
//! with 503 is sent again, the same events, and nothing is counted twice.

mod common;

use axum::http::{HeaderMap, StatusCode};
use common::Server;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Received {
    /// Every POST: its content type, signature header, body.
    posts: Vec<(String, String, Vec<u8>)>,
}

async fn receiver() -> (String, Arc<Mutex<Received>>) {
    let got = Arc::new(Mutex::new(Received::default()));
    let state = got.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let state = state.clone();
            async move {
                let h = |k: &str| headers.get(k).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
                let mut s = state.lock().unwrap();
                s.posts.push((h("content-type"), h("x-wisp-signature"), body.to_vec()));
                // The first batch is refused as if the receiver were briefly down.
                if s.posts.len() == 1 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::ACCEPTED }
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, got)
}

fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    // HMAC-SHA256 by its definition (RFC 2104), so the test does not share the server's code.
    let mut key = [0u8; 64];
    key[..secret.len()].copy_from_slice(secret);
    let pad = |b: u8| key.iter().map(|k| k ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(body).finalize();
    hex::encode(Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_invocation_is_pushed_once_as_a_signed_cloudevent_and_refused_batches_are_retried() {
    let (url, got) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!("[usage_push]\nurl = \"{url}\"\nsecret = \"s3cret\"\nsource = \"wisp-test\"\nflush_ms = 50\n"),
    )
    .unwrap();
    let s = Server::start_with(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    s.deploy("hello", "hello-c", json!({"routes": ["/hello"], "limits": {"memory_mb": 64}})).await;
    const N: usize = 9;
    for _ in 0..N {
        let r = s.http.get(format!("{}/hello", s.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }

    // Wait until every invocation was taken by the receiver (accepted posts only: the first was refused).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let events: Vec<Value> = loop {
        let accepted: Vec<Value> = {
            let g = got.lock().unwrap();
            g.posts.iter().skip(1).flat_map(|(_, _, b)| serde_json::from_slice::<Vec<Value>>(b).unwrap()).collect()
        };
        if accepted.len() >= N {
            break accepted;
        }
        assert!(std::time::Instant::now() < deadline, "only {} of {N} events arrived", accepted.len());
        tokio::task::yield_now().await;
    };
    let ids: Vec<String> = s.logs("hello").await.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), N);
    let g = got.lock().unwrap();
    for (ct, sig, body) in &g.posts {
        assert_eq!(ct, "application/cloudevents-batch+json");
        assert_eq!(sig, &format!("sha256={}", hmac_hex(b"s3cret", body)), "every body is signed");
    }
    // The refused batch came again: its events are among those accepted, with the same ids.
    let refused: Vec<Value> = serde_json::from_slice(&g.posts[0].2).unwrap();
    assert!(!refused.is_empty());
    let by_id: HashMap<&str, &Value> = events.iter().map(|e| (e["id"].as_str().unwrap(), e)).collect();
    assert_eq!(by_id.len(), events.len(), "no event twice among accepted batches");
    for e in &refused {
        assert!(by_id.contains_key(e["id"].as_str().unwrap()), "refused event {} was not retried", e["id"]);
    }
    assert_eq!(events.len(), N);
    for e in &events {
        assert_eq!(e["specversion"], "1.0");
        assert_eq!(e["type"], "dev.wisp.invocation.v1");
        assert_eq!(e["source"], "wisp-test");
        assert_eq!(e["subject"], "default");
        let d = &e["data"];
        assert_eq!(d["function"], "hello");
        assert_eq!(d["status"], 200);
        assert_eq!(d["memory_limit_bytes"], 64 << 20);
        let billed = d["billed_ms"].as_u64().unwrap();
        assert!(billed >= 1, "wall time rounds up to at least 1 ms");
        let gb_s = d["gb_seconds"].as_f64().unwrap();
        assert!((gb_s - billed as f64 / 1000.0 / 16.0).abs() < 1e-12, "GB-s = 1/16 GiB × billed ms: {d}");
        assert!(ids.iter().any(|i| i == d["invocation"].as_str().unwrap()), "{d}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_push_setting_is_refused_at_start_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[usage_push]\nurl = \"ftp://meter.example/\"\n").unwrap();
    let out = std::process::Command::new(common::wisp_bin())
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir", dir.path().join("data").to_str().unwrap()])
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(err.contains("[usage_push] url") && err.contains("only http and https"), "{err}");
}
