//! End-to-end: hostile guests and a full node. Each case is stopped or denied with the reason in its
//! invocation record, and the node keeps serving a healthy function meanwhile.

mod common;

use common::{Server, held, until};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The newest invocation record of `name`.
async fn last(s: &Server, name: &str) -> Value {
    s.logs(name).await.last().cloned().unwrap_or_else(|| panic!("{name} has no invocation record"))
}

#[tokio::test(flavor = "multi_thread")]
async fn guests_cannot_reach_out_or_exhaust_host_memory() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("ok", "hello-c", json!({"routes": ["/ok"]})).await;
    s.deploy("h", "hostile-c", json!({"routes": ["/h"], "limits": {"memory_mb": 32, "timeout_ms": 20000}})).await;

    // A local server the guest must not reach.
    let victim = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = victim.local_addr().unwrap().port();

    // Header fields built in a loop: the instance is stopped once its resource table is full (32 × 32 MiB =
    // 1024 entries of at most 32 KiB each), long before host memory matters.
    let (status, body) = s.get("/h/fields").await;
    assert_eq!(status, 500, "{body}");
    let err = last(&s, "h").await["error"].as_str().unwrap().to_string();
    assert!(err.contains("stopped: the instance holds the most host resources it may"), "{err}");
    assert_eq!(s.get("/ok").await.0, 200);

    // wasi:sockets: denied, and the record says so.
    let (status, body) = s.get(&format!("/h/socket?{port}")).await;
    assert_eq!((status, body.as_str()), (200, "connect refused: error 1 (access-denied)\n"));
    let logs = last(&s, "h").await["logs"].as_str().unwrap().to_string();
    // (The connect's implicit bind is checked first: that is the use the record names.)
    assert!(
        logs.contains("wisp: denied wasi:sockets TcpBind 0.0.0.0:0: this node grants functions no sockets"),
        "{logs}"
    );

    // wasi:filesystem: one empty root, and every open is denied with the path in the record.
    assert_eq!(s.get("/h/fs").await, (200, "directories: 1\n".into()));
    for path in ["etc/passwd", "../../../../proc/self/environ", "."] {
        let (status, body) = s.get(&format!("/h/fs?{path}")).await;
        assert_eq!((status, body.as_str()), (200, "open-at refused under /: error 0 (access)\n"), "{path}");
        let logs = last(&s, "h").await["logs"].as_str().unwrap().to_string();
        assert!(
            logs.contains(&format!(
                "wisp: denied wasi:filesystem open-at \"{path}\": this node grants functions no filesystem"
            )),
            "{path}: {logs}"
        );
    }

    // Outbound HTTP: denied for every target, with the target in the record.
    for target in ["example.com/", "169.254.169.254/latest/meta-data/", &format!("127.0.0.1:{port}/"), "localhost/"] {
        let (status, body) = s.get(&format!("/h/outbound?{target}")).await;
        assert_eq!((status, body.as_str()), (200, "outbound refused: error 15 (HTTP-request-denied)\n"), "{target}");
        let logs = last(&s, "h").await["logs"].as_str().unwrap().to_string();
        assert!(logs.contains(&format!("wisp: denied outbound HTTP GET http://{target}")), "{target}: {logs}");
    }
    assert_eq!(s.get("/ok").await, (200, "Hello from C!\n".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guest_sees_the_authority_that_routed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("h", "hostile-c", json!({"routes": ["/h"]})).await;
    let mut c = tokio::net::TcpStream::connect(s.url.trim_start_matches("http://")).await.unwrap();
    c.write_all(b"GET http://Api.Example./h/whoami HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("api.example\n"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wagi_output_and_stalled_bodies_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("ok", "hello-c", json!({"routes": ["/ok"]})).await;
    s.deploy(
        "flood",
        "flood-wagi",
        json!({"kind": "wagi", "routes": ["/flood"], "limits": {"max_output_bytes": 65536}}),
    )
    .await;
    s.deploy("wagi", "hello-wagi", json!({"kind": "wagi", "routes": ["/wagi"], "limits": {"timeout_ms": 500}})).await;

    // Under the cap: served whole. Over it: a 500, and the record names the limit.
    let (status, body) = s.get("/flood?60000").await;
    assert_eq!((status, body.len()), (200, 60000));
    assert_eq!(s.get("/flood?200000").await.0, 500);
    let err = last(&s, "flood").await["error"].as_str().unwrap().to_string();
    assert!(err.contains("more than its limits.max_output_bytes = 65536 bytes"), "{err}");
    assert_eq!(s.get("/ok").await.0, 200);

    // A body that stalls after its first bytes: the module waits on stdin until the deadline, then 504.
    let mut c = tokio::net::TcpStream::connect(s.url.trim_start_matches("http://")).await.unwrap();
    c.write_all(b"POST /wagi HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\npartial").await.unwrap();
    until(&s, "wagi", |f| f["in_flight"] == 1).await;
    assert_eq!(s.get("/ok").await.0, 200, "served while the WAGI body stalls");
    let mut buf = [0u8; 12];
    c.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 504");
    until(&s, "wagi", |f| f["in_flight"] == 0).await;
    let err = last(&s, "wagi").await["error"].as_str().unwrap().to_string();
    assert!(err.contains("timeout of 500 ms"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_node_evicts_idle_instances_then_answers_503_capacity_never_500() {
    let dir = tempfile::tempdir().unwrap();
    // Two instance slots; the autoscaler stays out of the way (its first tick is at start).
    let s = Server::start_with(&dir.path().join("data"), &["--max-instances", "2", "--autoscale-tick-ms", "60000"]);
    let reuse = json!({"instance_mode": "reuse"});
    s.deploy("a", "hello-c", json!({"routes": ["/a"], "scaling": reuse})).await;
    s.deploy("b", "hello-c", json!({"routes": ["/b"], "scaling": reuse})).await;
    s.deploy("fresh", "hello-c", json!({"routes": ["/fresh"]})).await;
    s.deploy("echo", "echo-c", json!({"routes": ["/echo"]})).await;

    // Both slots end up held by idle warm instances of a and b.
    assert_eq!(s.get("/a").await.0, 200);
    assert_eq!(s.get("/b").await.0, 200);
    assert_eq!(
        (s.function("a").await["idle_instances"].as_u64(), s.function("b").await["idle_instances"].as_u64()),
        (Some(1), Some(1))
    );
    // A fresh function still serves: the least recently used idle instance (a's) makes room.
    assert_eq!(s.get("/fresh").await, (200, "Hello from C!\n".into()));
    assert_eq!(s.function("a").await["idle_instances"], 0);
    assert_eq!(s.function("b").await["idle_instances"], 1);

    // Both slots running: nothing to evict, so 503 with Retry-After, recorded as capacity.
    let (t1, tx1) = held(&s, "/echo");
    tx1.send(b"x".to_vec()).await.unwrap();
    until(&s, "echo", |f| f["in_flight"] == 1).await;
    // One slot runs echo, b's idle instance holds the other: a gets it by evicting b's, and keeps it idle.
    assert_eq!(s.get("/a").await.0, 200);
    assert_eq!(s.function("b").await["idle_instances"], 0);
    // The second echo evicts a's idle instance in turn.
    let (t2, tx2) = held(&s, "/echo");
    tx2.send(b"y".to_vec()).await.unwrap();
    until(&s, "echo", |f| f["in_flight"] == 2).await;
    let r = s.http.get(format!("{}/fresh", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let rec = last(&s, "fresh").await;
    assert_eq!(rec["status"], 503);
    assert!(rec["error"].as_str().unwrap().contains("no free instance slot"), "{rec}");
    drop((tx1, tx2));
    assert_eq!(t1.await.unwrap(), (200, "x".into()));
    assert_eq!(t2.await.unwrap(), (200, "y".into()));
    assert_eq!(s.get("/fresh").await.0, 200);

    // Provisioned instances hold slots for good, so they are checked against the node at deploy.
    let bytes = std::fs::read(common::guest("hello-c")).unwrap();
    let (status, msg) = s
        .deploy_bytes(
            "big",
            bytes,
            json!({"routes": ["/big"], "scaling": {"instance_mode": "reuse", "min_instances": 2}}),
        )
        .await
        .unwrap_err();
    assert_eq!(status, 400);
    assert!(msg.contains("scaling.min_instances = 2 is out of range: allowed 0..=1"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn provisioned_instances_outlive_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), &["--autoscale-tick-ms", "60000"]);
    let scaling = json!({"instance_mode": "reuse", "min_instances": 1, "idle_timeout_seconds": 1});
    s.deploy("p", "hello-c", json!({"routes": ["/p"], "scaling": scaling})).await;
    until(&s, "p", |f| f["idle_instances"] == 1).await;
    // The scenario is the passing of time: let the provisioned instance sit idle past its idle timeout.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(s.get("/p").await.0, 200);
    assert_eq!(last(&s, "p").await["cold"], false, "the provisioned instance served it");
}
