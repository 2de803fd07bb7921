//! End-to-end: the messaging capability (wasi:messaging@0.2.0-draft) from a Python guest. A message an http
//! function sends reaches the topic's subscribers — a `kind = "messaging"` function (its incoming-handler
//! export) and an http one (as a CloudEvent) — with its content type and metadata; topics outside the grant
//! are refused (a function without the grant may import the producer, and every send is refused); a handler's
//! error is retried and dead-lettered; the publish is counted in the sender's usage.

mod common;

use common::{Server, stderr, stdout};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Polls `path` until it answers 200 (bounded); returns the body.
async fn until_ok(s: &Server, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = s.get(path).await;
        if status == 200 {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} never answered 200 (last: {status} {body})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const APP: &str = r#"
[app]
name = "shop"

[[function]]
name = "orders-api"
source = "messaging-py.wasm"
routes = ["/orders"]
publish_topics = ["orders", "audit/log"]
key_value_stores = ["default"]

[[function]]
name = "orders-handler"
kind = "messaging"
source = "messaging-py.wasm"
key_value_stores = ["default"]
events = { retry_attempts = 1, backoff_delay_ms = 1, backoff_max_ms = 5 }

[[function.trigger]]
type = "topic"
topic = "orders"

[[function]]
name = "orders-log"
source = "event-py.wasm"

[[function.trigger]]
type = "topic"
topic = "orders"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_guests_message_reaches_the_topics_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("wisp.toml"), APP).unwrap();
    std::fs::copy(common::guest("messaging-py"), app.join("messaging-py.wasm")).unwrap();
    std::fs::copy(common::guest("event-py"), app.join("event-py.wasm")).unwrap();
    let out = s.cli(&["deploy", app.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.function("orders-handler").await["kind"], "messaging");

    // The http function sends; 202 once every subscriber's invocation is durable.
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/orders/orders", s.url))
        .header("content-type", "text/plain")
        .header("x-meta-trace", "abc")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.text().await.unwrap(), "sent to orders\n");

    // The messaging function got it as a message: topic, data, content type, the event's attributes and the
    // sender's metadata; the id is the sending invocation's, numbered.
    let got: Value = serde_json::from_str(&until_ok(&s, "/orders/last/orders").await).unwrap();
    assert_eq!(got["data"], "hello");
    assert_eq!(got["content_type"], "text/plain");
    assert_eq!(got["count"], 1);
    let meta = &got["metadata"];
    assert_eq!(meta["trace"], "abc", "{got}");
    assert_eq!(meta["type"], "dev.wisp.topic.message");
    assert_eq!(meta["source"], "/_wisp/v1/namespaces/default/functions/orders-api");
    assert_eq!(meta["wispattempt"], "1");
    let sender = s.logs("orders-api").await.into_iter().find(|r| r["status"] == 202).unwrap();
    assert_eq!(meta["id"], format!("{}-1", sender["id"].as_str().unwrap()), "{got}");
    // The send is counted in the sender's usage: one message, five bytes.
    assert_eq!(sender["services"]["messaging"], json!({"ops": 1, "bytes": 5}), "{sender}");

    // The http subscriber got the same message as a CloudEvents POST.
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let logs = s.logs("orders-log").await;
        if let Some(rec) = logs.iter().find(|r| r["status"] == 200) {
            break rec.clone();
        }
        assert!(Instant::now() < deadline, "orders-log never got the message: {logs:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let line = seen["logs"].as_str().unwrap();
    let id = meta["id"].as_str().unwrap();
    assert!(line.contains(&format!("event {id} type dev.wisp.topic.message attempt 1")), "{line}");

    // A topic the grant does not name is refused, and nothing is published.
    let r = http.post(format!("{}/orders/refunds", s.url)).body("x").send().await.unwrap();
    assert_eq!(r.status(), 403);
    let text = r.text().await.unwrap();
    assert!(text.contains("PermissionDenied") && text.contains("publish_topics"), "{text}");

    // A handler's error is retried (retry_attempts = 1), then dead-lettered with the handler's answer.
    let r = http.post(format!("{}/orders/orders", s.url)).body("fail").send().await.unwrap();
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(60);
    let dead = loop {
        let path = "/_wisp/v1/namespaces/default/functions/orders-handler/dead-letters";
        let list: Vec<Value> = s.api(reqwest::Method::GET, path).send().await.unwrap().json().await.unwrap();
        if let Some(d) = list.first() {
            break d.clone();
        }
        assert!(Instant::now() < deadline, "never dead-lettered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(dead["attempts"], 2, "{dead}");
    assert!(dead.to_string().contains("asked to fail"), "{dead}");
    let out = s.cli(&["dlq", "ls", "orders-handler"]);
    assert!(stdout(&out).contains("the handler answered 500 (after 2 attempts"), "{}", stdout(&out));

    // A messaging function takes no HTTP requests, and has no routes.
    let out = s.cli(&["invoke", "orders-handler"]);
    assert!(!out.status.success());
    let bytes = std::fs::read(common::guest("messaging-py")).unwrap();
    let spec = json!({"kind": "messaging", "routes": ["/h"], "key_value_stores": ["default"]});
    let err = s.deploy_bytes("routed", bytes.clone(), spec).await.unwrap_err();
    assert!(err.1.contains("a messaging function has no routes"), "{err:?}");
    // A component without the handler export cannot be a messaging function.
    let kv = std::fs::read(common::guest("kv-py")).unwrap();
    let spec = json!({"kind": "messaging", "key_value_stores": ["default"]});
    let err = s.deploy_bytes("nohandler", kv, spec).await.unwrap_err();
    assert!(err.1.contains("does not export `wasi:messaging/incoming-handler@0.2.0-draft`"), "{err:?}");
    // Without a grant a component importing the producer deploys (the handler above has none), and every send
    // is refused.
    s.deploy_bytes("nogrant", bytes, json!({"routes": ["/n"], "key_value_stores": ["default"]})).await.unwrap();
    let r = http.post(format!("{}/n/orders", s.url)).body("x").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("add it to `publish_topics` (now [])"));
}
