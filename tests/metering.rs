//! End-to-end: what an invocation is billed on, measured. Thread CPU time counts a guest's work and not its
//! waiting; GB-seconds follow the memory limit and the wall time rounded up to 1 ms; request and response body
//! bytes are counted exactly, for wasi:http and WAGI functions alike.

mod common;

use common::Server;
use serde_json::{Value, json};

async fn last(s: &Server, name: &str) -> Value {
    s.logs(name).await.last().cloned().expect("a record")
}

#[tokio::test(flavor = "multi_thread")]
async fn cpu_time_bills_work_not_waiting_and_bytes_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    // sleep-c waits 50 ms on a wasi:clocks pollable; loop-c spins until its 50 ms deadline stops it: the same
    // wall time, opposite CPU.
    s.deploy("sleeper", "sleep-c", json!({"routes": ["/sleep"], "limits": {"memory_mb": 32}})).await;
    s.deploy("spinner", "loop-c", json!({"routes": ["/spin"], "limits": {"timeout_ms": 50, "memory_mb": 64}})).await;
    assert_eq!(s.get("/sleep").await, (200, "slept\n".to_string()));
    assert_eq!(s.get("/spin").await.0, 504);
    let (sleep, spin) = (last(&s, "sleeper").await, last(&s, "spinner").await);
    let n = |r: &Value, k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
    assert!(n(&sleep, "wall_us") >= 50_000, "{sleep}");
    assert!(n(&sleep, "cpu_us") * 10 < n(&sleep, "wall_us"), "a sleeping guest's CPU is near zero: {sleep}");
    assert!(n(&spin, "cpu_us") > 10 * n(&sleep, "cpu_us"), "spinning {spin} vs sleeping {sleep}");
    assert_eq!(n(&sleep, "memory_limit_bytes"), 32 << 20);
    assert_eq!(n(&spin, "memory_limit_bytes"), 64 << 20);

    // Body bytes: every byte in and out of a streaming echo, and of a WAGI module (stdin / stdout).
    s.deploy("echo", "echo-c", json!({"routes": ["/echo"]})).await;
    let body: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
    let r = s.http.post(format!("{}/echo", s.url)).body(body.clone()).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), body.len());
    let rec = last(&s, "echo").await;
    assert_eq!((n(&rec, "bytes_in"), n(&rec, "bytes_out")), (300_000, 300_000), "{rec}");
    s.deploy("hello-wagi", "hello-wagi", json!({"kind": "wagi", "routes": ["/wagi"]})).await;
    let (status, text) = s.get("/wagi").await;
    assert_eq!(status, 200);
    let rec = last(&s, "hello-wagi").await;
    assert!(n(&rec, "bytes_out") > text.len() as u64, "stdout holds the CGI headers too: {rec}");
    assert!(n(&rec, "cpu_us") > 0 && n(&rec, "wall_us") > 0, "{rec}");

    // `wisp logs` shows the bill's inputs.
    let out = common::stdout(&s.cli(&["logs", "echo"]));
    assert!(out.contains("in 300000 B, out 300000 B") && out.contains("GB-s"), "{out}");
}
