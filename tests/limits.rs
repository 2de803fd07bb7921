//! End-to-end: misbehaving guests are stopped at their limits and the server keeps serving.

mod common;

use common::Server;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn trap_loop_and_memory_bomb_are_contained() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("ok", "hello-c", json!({"routes": ["/ok"]})).await;
    s.deploy("trap", "trap-c", json!({"routes": ["/trap"]})).await;
    s.deploy("spin", "loop-c", json!({"routes": ["/spin"], "limits": {"timeout_ms": 500}})).await;
    s.deploy("bomb", "membomb-c", json!({"routes": ["/bomb"], "limits": {"memory_mb": 16}})).await;

    // Trap: 500 with the invocation id, no guest detail leaked; details in the logs.
    let r = s.http.get(format!("{}/trap", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 500);
    let id = r.headers()["x-wisp-invocation-id"].to_str().unwrap().to_string();
    let body = r.text().await.unwrap();
    assert!(body.contains(&id) && !body.contains("wasm"), "{body}");
    let logs = s.logs("trap").await;
    assert_eq!(logs[0]["id"], id.as_str());
    assert!(logs[0]["error"].as_str().unwrap().contains("unreachable"), "{}", logs[0]["error"]);
    assert_eq!(s.get("/ok").await, (200, "Hello from C!\n".into()));

    // Infinite loop: 504 at the deadline.
    let r = s.http.get(format!("{}/spin", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 504);
    assert!(r.text().await.unwrap().contains("timeout of 500 ms"));
    assert_eq!(s.get("/ok").await.0, 200);

    // Memory bomb: stopped at its 16 MiB limit (it would answer "survived" if it ran out on its own).
    let (status, body) = s.get("/bomb").await;
    assert_eq!(status, 500, "{body}");
    let logs = s.logs("bomb").await;
    assert!(logs[0]["error"].as_str().unwrap().contains("memory limit of 16 MiB exceeded"), "{}", logs[0]["error"]);
    assert_eq!(s.get("/ok").await.0, 200);

    // Many failures in a row do not leak instances or wedge the server.
    for _ in 0..20 {
        assert_eq!(s.get("/trap").await.0, 500);
        assert_eq!(s.get("/bomb").await.0, 500);
    }
    assert_eq!(s.get("/ok").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_body_over_limit_is_413() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("echo", "echo-c", json!({"routes": ["/echo"], "limits": {"max_body_bytes": 1000}})).await;
    s.deploy("wagi", "hello-wagi", json!({"kind": "wagi", "routes": ["/wagi"], "limits": {"max_body_bytes": 1000}}))
        .await;
    let r = s.http.post(format!("{}/echo", s.url)).body(vec![b'x'; 1000]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    for route in ["/echo", "/wagi"] {
        let r = s.http.post(format!("{}{route}", s.url)).body(vec![b'x'; 1001]).send().await.unwrap();
        assert_eq!(r.status(), 413, "{route}");
        assert!(r.text().await.unwrap().contains("exceeds the function's limit of 1000 bytes"));
    }
    // A chunked body (no content-length) over the limit is cut off for WAGI, which reads it all first.
    let chunks = futures::stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 400])));
    let r = s.http.post(format!("{}/wagi", s.url)).body(reqwest::Body::wrap_stream(chunks)).send().await.unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_headers_are_rejected_by_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("ok", "hello-c", json!({"routes": ["/ok"]})).await;
    // Over the gateway's cap of 100 headers: 431. (A small request, so the server reads all of it before
    // answering and the client always sees the 431 rather than a reset mid-upload.)
    let mut req = s.http.get(format!("{}/ok", s.url));
    for i in 0..150 {
        req = req.header(format!("x-h{i}"), "v");
    }
    assert_eq!(req.send().await.unwrap().status(), 431);
    assert_eq!(s.get("/ok").await.0, 200);
}

/// A client that goes away before the response head does not cut the invocation short: the guest still runs
/// to its end (here: its deadline), is recorded, and gives its admission slot back.
#[tokio::test(flavor = "multi_thread")]
async fn an_invocation_whose_client_left_is_still_finished_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let scaling = json!({"max_instances": 1, "queue_timeout_ms": 60000});
    s.deploy("spin", "loop-c", json!({"routes": ["/spin"], "limits": {"timeout_ms": 300}, "scaling": scaling})).await;
    // The client sends its request, waits until the guest runs, then goes away before any answer.
    let mut c = tokio::net::TcpStream::connect(s.url.trim_start_matches("http://")).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut c, b"GET /spin HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    common::until(&s, "spin", |f| f["in_flight"] == 1).await;
    drop(c);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut logs = s.logs("spin").await;
    while logs.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        logs = s.logs("spin").await;
    }
    assert_eq!(logs.len(), 1, "the abandoned invocation is recorded: {logs:?}");
    assert_eq!(logs[0]["status"], 504, "{}", logs[0]);
    common::until(&s, "spin", |f| f["in_flight"] == 0).await;
    // Its only instance slot is free again: the next request is admitted (and times out the same way).
    assert_eq!(s.get("/spin").await.0, 504);
}
