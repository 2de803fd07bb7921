//! End-to-end: restarts serve from the compiled cache; shutdown drains in-flight requests.

mod common;

use common::Server;
use serde_json::json;
use std::io::{Read, Write};

#[tokio::test(flavor = "multi_thread")]
async fn restart_serves_every_function_without_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start(&data);
    s.deploy("c", "hello-c", json!({"routes": ["/c"]})).await;
    s.deploy("w", "hello-wagi", json!({"kind": "wagi", "routes": ["/w"]})).await;
    assert_eq!(s.status().await["compilations"], 2);
    s.kill(); // no graceful shutdown: the store must still be consistent

    let s = Server::start(&data);
    assert_eq!(s.get("/c").await, (200, "Hello from C!\n".to_string()));
    assert_eq!(s.get("/w").await.1, "Hello from WAGI!\n");
    let st = s.status().await;
    assert_eq!(st["functions"], 2);
    assert_eq!(st["compilations"], 0, "restart must load precompiled code, not compile: {st}");
}

/// A request in flight when SIGTERM arrives completes; the server then exits cleanly.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_in_flight_requests_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(&dir.path().join("data"));
    s.deploy("echo", "echo-c", json!({"routes": ["/echo"]})).await;
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\nconnection: close\r\n\r\nhello").unwrap();
    // The echo guest answers with headers as soon as it runs; reading them proves the request is in flight.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    let pid = s.pid();
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    conn.write_all(b"world").unwrap();
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).unwrap();
    let text = String::from_utf8_lossy(&rest);
    assert!(text.contains("hello") && text.contains("world"), "{text}");
    let status = s.stop_after_signal();
    assert!(status.success(), "{status:?}");
}

/// Two servers never share one data directory.
#[tokio::test(flavor = "multi_thread")]
async fn a_data_directory_serves_one_server_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _s = Server::start(&data);
    let out = std::process::Command::new(common::wisp_bin())
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another `wisp up` is already using the data directory"), "{err}");
}

/// Reads until the server closes the connection.
fn read_all(conn: &mut std::net::TcpStream) -> String {
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Waits (bounded) until the server's log contains `needle`.
fn log_shows(dir: &std::path::Path, needle: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if std::fs::read_to_string(dir.join("data.log")).unwrap_or_default().contains(needle) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("the server log never showed {needle:?}");
}

/// SIGTERM with one request running and one queued: the queued one gets 503 at once, the running one
/// finishes, then the server exits cleanly.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_answers_queued_requests_503_and_finishes_running_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(&dir.path().join("data"));
    let scaling = json!({"max_instances": 1, "queue_timeout_ms": 60000});
    s.deploy("echo", "echo-c", json!({"routes": ["/echo"], "scaling": scaling})).await;
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut running = std::net::TcpStream::connect(&addr).unwrap();
    running
        .write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\nconnection: close\r\n\r\nhello")
        .unwrap();
    common::until(&s, "echo", |f| f["in_flight"] == 1).await;
    let mut queued = std::net::TcpStream::connect(&addr).unwrap();
    queued.write_all(b"GET /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
    common::until(&s, "echo", |f| f["queued"] == 1).await;

    std::process::Command::new("kill").args(["-TERM", &s.pid().to_string()]).status().unwrap();
    let answer = read_all(&mut queued);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("the node is shutting down"), "{answer}");
    running.write_all(b"world").unwrap();
    let text = read_all(&mut running);
    assert!(text.starts_with("HTTP/1.1 200") && text.contains("world"), "{text}");
    assert!(s.stop_after_signal().success());
}

/// A second signal forces the exit while a request is still running.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_forces_the_exit() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(&dir.path().join("data"));
    s.deploy("echo", "echo-c", json!({"routes": ["/echo"]})).await;
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut running = std::net::TcpStream::connect(&addr).unwrap();
    running.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nhello").unwrap();
    common::until(&s, "echo", |f| f["in_flight"] == 1).await;
    let pid = s.pid().to_string();
    std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
    log_shows(dir.path(), "shutting down (again to force)");
    std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let status = s.stop_after_signal();
    assert_eq!(status.code(), Some(130), "{status:?}");
    let log = std::fs::read_to_string(dir.path().join("data.log")).unwrap();
    assert!(log.contains("second signal: exiting without waiting for the drain"), "{log}");
}
