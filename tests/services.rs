//! End-to-end, across the platform services: what each invocation used of them (operations and payload
//! bytes per service, in its record and in `wisp logs`), and a warm instance serving each invocation under
//! that invocation's own deadline and meter.

mod common;

use common::{Server, stderr, stdout};
use serde_json::{Value, json};

/// The last record of `name`'s invocations.
async fn last_record(s: &Server, name: &str) -> Value {
    s.logs(name).await.last().cloned().expect("a record")
}

#[tokio::test(flavor = "multi_thread")]
async fn service_use_is_counted_per_invocation_and_a_warm_instance_gets_each_invocations_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    // The Spin SDK test app, in reuse mode with a short timeout: a warm instance outlives the first
    // invocation's deadline.
    let spec = json!({
        "app": "meter", "routes": ["/m"], "spin_headers": true,
        "key_value_stores": ["default"], "sqlite_databases": ["default"],
        "limits": {"timeout_ms": 3000}, "scaling": {"instance_mode": "reuse"},
    });
    s.deploy("meter", "spin-py", spec).await;
    let out = s.cli(&["sql", "meter", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // INSERT with one text parameter (5 bytes), then SELECT with one integer parameter (8) answering one row
    // of an integer and that text (8 + 5): two statements, 26 payload bytes.
    let http = reqwest::Client::new();
    let r = http.post(format!("{}/m/sql", s.url)).body("hello").send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    r.text().await.unwrap();
    let rec = last_record(&s, "meter").await;
    assert_eq!(rec["cold"], true, "{rec}");
    assert_eq!(rec["services"], json!({"sql": {"ops": 2, "bytes": 26}}), "{rec}");

    // Key-value through fermyon:spin/key-value: get hits (absent), set hits = "1" (1 byte), get note (absent),
    // get-keys (one page): four operations, one byte of values.
    assert_eq!(s.get("/m/kv").await.0, 200);
    let rec = last_record(&s, "meter").await;
    assert_eq!(rec["cold"], false, "{rec}");
    assert_eq!(
        rec["services"],
        json!({"kv": {"ops": 4, "bytes": 1}}),
        "the count starts at zero per invocation: {rec}"
    );

    // `wisp logs` shows it.
    let out = s.cli(&["logs", "meter"]);
    assert!(stdout(&out).contains("kv 4 ops 1 B"), "{}", stdout(&out));
    assert!(stdout(&out).contains("sql 2 ops 26 B"), "{}", stdout(&out));

    // Past the first invocation's deadline, the same warm instance runs a statement under the deadline of the
    // invocation it serves now (it used to keep the first one's, and every statement failed).
    let first_deadline = std::time::Instant::now() + std::time::Duration::from_millis(3100);
    tokio::time::sleep_until(first_deadline.into()).await;
    let (status, body) = s.get("/m/sql").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["rows"], json!([[1, "hello"]]));
    let rec = last_record(&s, "meter").await;
    assert_eq!(rec["cold"], false, "served by the warm instance: {rec}");
    assert_eq!(rec["services"], json!({"sql": {"ops": 1, "bytes": 21}}), "{rec}");

    // A function using no service records none.
    s.deploy("plain", "hello-c", json!({"routes": ["/plain"]})).await;
    assert_eq!(s.get("/plain").await.0, 200);
    let rec = last_record(&s, "plain").await;
    assert!(rec.get("services").is_none(), "{rec}");
}
