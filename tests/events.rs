//! End-to-end: asynchronous invocations — accepted once durable, delivered as CloudEvents, retried,
//! dead-lettered, redriven, sent to destinations — and no accepted event lost across `kill -9`.

mod common;

use common::{Server, held, stdout};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const FNS: &str = "/_wisp/v1/namespaces/default/functions";

/// POSTs an event to `name`'s invocation API; returns the status and the JSON answer.
async fn post(s: &Server, name: &str, content_type: Option<&str>, body: &str) -> (u16, Value) {
    let mut r = s.api(Method::POST, &format!("{FNS}/{name}/invocations")).body(body.to_string());
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn accept(s: &Server, name: &str, content_type: Option<&str>, body: &str) -> String {
    let (status, v) = post(s, name, content_type, body).await;
    assert_eq!(status, 202, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn invocation(s: &Server, id: &str) -> Value {
    s.api(Method::GET, &format!("/_wisp/v1/invocations/{id}")).send().await.unwrap().json().await.unwrap()
}

/// Waits (bounded) until invocation `id` is in `state`; returns it.
async fn settled(s: &Server, id: &str, state: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let v = invocation(s, id).await;
        if v["state"] == state {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "invocation {id} never became {state}: {v}");
        assert!(
            !matches!(v["state"].as_str(), Some("succeeded" | "failed" | "dead_lettered")),
            "invocation {id} settled as {} instead of {state}: {v}",
            v["state"]
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits (bounded) until a record of `name` has `needle` in its captured output.
async fn logged(s: &Server, name: &str, needle: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !s.logs(name).await.iter().any(|r| r["logs"].as_str().unwrap_or("").contains(needle)) {
        assert!(std::time::Instant::now() < deadline, "no record of {name} logged {needle:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What the event-py handler answered: its JSON summary of the delivery.
fn summary(v: &Value) -> Value {
    serde_json::from_str(v["result"].as_str().unwrap()).unwrap_or_else(|e| panic!("{e}: {v}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn events_arrive_as_cloudevents_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("ev", "event-py", json!({"routes": ["/ev"], "events": {"max_event_bytes": 4096}})).await;

    // Plain data: a new event around it.
    let id = accept(&s, "ev", Some("text/plain"), "hello").await;
    let v = settled(&s, &id, "succeeded").await;
    assert_eq!((v["attempts"].as_u64(), v["status"].as_u64()), (Some(1), Some(200)), "{v}");
    let got = summary(&v);
    assert_eq!(got["data"], "hello");
    assert_eq!(got["event"]["type"], "dev.wisp.invoke");
    assert_eq!(got["event"]["source"], "/_wisp/v1/namespaces/default/functions/ev");
    assert_eq!(got["event"]["specversion"], "1.0");
    assert_eq!(got["event"]["wispattempt"], "1");
    let record = s.logs("ev").await.into_iter().find(|r| r["id"] == id.as_str()).expect("an invocation record");
    assert_eq!(record["trigger"], "event");
    assert!(record["logs"].as_str().unwrap().contains("type dev.wisp.invoke attempt 1"), "{record}");

    // Structured mode; attribute values reach the handler percent-encoded, as the HTTP binding says.
    let structured = r#"{"specversion":"1.0","id":"o-1","source":"/orders","type":"com.example.order","subject":"ü x","data":{"n":1},"traceparent":"00-ab"}"#;
    let (status, first) = post(&s, "ev", Some("application/cloudevents+json"), structured).await;
    assert_eq!((status, &first["duplicate"]), (202, &json!(false)), "{first}");
    let got = summary(&settled(&s, first["id"].as_str().unwrap(), "succeeded").await);
    assert_eq!(got["event"]["id"], "o-1");
    assert_eq!(got["event"]["subject"], "%C3%BC%20x");
    assert_eq!(got["event"]["traceparent"], "00-ab");
    assert_eq!(got["data"], r#"{"n":1}"#);
    // The same source + id again: a duplicate, not queued again.
    let (status, again) = post(&s, "ev", Some("application/cloudevents+json"), structured).await;
    assert_eq!((status, &again["duplicate"], &again["id"]), (202, &json!(true), &first["id"]), "{again}");

    // Binary mode, on the function's own route with X-Wisp-Invocation-Type: Event.
    let r = reqwest::Client::new()
        .post(format!("{}/ev", s.url))
        .header("x-wisp-invocation-type", "Event")
        .header("ce-specversion", "1.0")
        .header("ce-id", "b-1")
        .header("ce-source", "/test")
        .header("ce-type", "com.example.binary")
        .header("content-type", "text/plain")
        .body("binary data")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let id = r.headers()["x-wisp-invocation-id"].to_str().unwrap().to_string();
    let got = summary(&settled(&s, &id, "succeeded").await);
    assert_eq!(
        (got["event"]["type"].as_str(), got["data"].as_str()),
        (Some("com.example.binary"), Some("binary data"))
    );

    // Batch mode: one invocation per event.
    let batch = r#"[{"specversion":"1.0","id":"1","source":"/b","type":"t"},{"specversion":"1.0","id":"2","source":"/b","type":"t"}]"#;
    let (status, v) = post(&s, "ev", Some("application/cloudevents-batch+json"), batch).await;
    assert_eq!(status, 202, "{v}");
    for inv in v["invocations"].as_array().unwrap() {
        settled(&s, inv["id"].as_str().unwrap(), "succeeded").await;
    }

    // Refusals: an unknown function is 404 (never 202), too large is 413, a bad CloudEvent is 400.
    let (status, v) = post(&s, "nope", None, "x").await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = post(&s, "ev", None, &"x".repeat(5000)).await;
    assert_eq!(status, 413, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("events.max_event_bytes"), "{v}");
    let (status, v) = post(&s, "ev", Some("application/cloudevents+json"), r#"{"specversion":"1.0","id":"1"}"#).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("missing `source`"), "{v}");

    // The CLI: --async prints the id; `wisp invocation` shows it.
    let out = s.cli(&["invoke", "ev", "--async", "-d", "from the cli"]);
    assert!(out.status.success(), "{out:?}");
    let id = stdout(&out).trim().to_string();
    settled(&s, &id, "succeeded").await;
    let out = s.cli(&["invocation", &id]);
    assert!(stdout(&out).contains("state       succeeded"), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_retried_dead_lettered_and_redriven() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let events = json!({"retry_attempts": 2, "backoff_delay_ms": 1, "backoff_max_ms": 5, "on_failure": "sink", "on_success": "sink"});
    s.deploy("sink", "event-py", json!({"routes": ["/sink"]})).await;
    // A handler that traps: retried, then dead-lettered.
    s.deploy("h", "trap-c", json!({"routes": ["/h"], "events": events})).await;
    let id = accept(&s, "h", None, "payload").await;
    let v = settled(&s, &id, "dead_lettered").await;
    assert_eq!((v["attempts"].as_u64(), v["error_code"].as_str()), (Some(3), Some("RetriesExhausted")), "{v}");
    let records = s.logs("h").await;
    assert_eq!(records.iter().filter(|r| r["id"] == id.as_str()).count(), 3, "{records:?}");

    let out = s.cli(&["dlq", "ls", "h"]);
    assert!(stdout(&out).contains(&id) && stdout(&out).contains("RetriesExhausted"), "{}", stdout(&out));
    let out = s.cli(&["dlq", "show", "h", &id]);
    assert!(stdout(&out).contains("state       dead_lettered") && stdout(&out).contains("payload"), "{}", stdout(&out));

    // The failure record reached the destination, as an event of its own.
    logged(&s, "sink", "type dev.wisp.invocation.failure").await;

    // A fixed redeploy, then a redrive: it succeeds with fresh attempts, and the success record follows.
    s.deploy("h", "event-py", json!({"routes": ["/h"], "events": events})).await;
    let out = s.cli(&["dlq", "redrive", "h"]);
    assert!(stdout(&out).contains("queued 1 dead letter"), "{out:?}");
    let v = settled(&s, &id, "succeeded").await;
    assert_eq!(v["attempts"].as_u64(), Some(1), "{v}");
    assert_eq!(summary(&v)["data"], "payload");
    logged(&s, "sink", "type dev.wisp.invocation.success").await;

    // A 4xx answer is not retried.
    let id = accept(&s, "h", None, "status:404").await;
    let v = settled(&s, &id, "dead_lettered").await;
    assert_eq!(
        (v["attempts"].as_u64(), v["status"].as_u64(), v["error_code"].as_str()),
        (Some(1), Some(404), Some("HandlerRejected")),
        "{v}"
    );
    // A 503 is.
    let id = accept(&s, "h", None, "status:503").await;
    let v = settled(&s, &id, "dead_lettered").await;
    assert_eq!((v["attempts"].as_u64(), v["status"].as_u64()), (Some(3), Some(503)), "{v}");

    // Purge empties the queue of dead letters.
    let out = s.cli(&["dlq", "purge", "h"]);
    assert!(stdout(&out).contains("deleted 2 dead letter"), "{out:?}");
    let left: Vec<Value> =
        s.api(Method::GET, &format!("{FNS}/h/dead-letters")).send().await.unwrap().json().await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_by_the_node_spends_no_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    // One invocation at a time and no queue: while a held HTTP request runs, admission refuses the event.
    s.deploy(
        "one",
        "echo-c",
        json!({"routes": ["/one"], "scaling": {"max_instances": 1, "max_queue_depth": 0}, "events": {"retry_attempts": 0}}),
    )
    .await;
    let (request, body) = held(&s, "/one");
    common::until(&s, "one", |f| f["in_flight"] == 1).await;
    let id = accept(&s, "one", None, "event").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let v = invocation(&s, &id).await;
        assert_eq!(v["attempts"], 0, "a throttled delivery spent an attempt: {v}");
        if v["throttled"].as_u64() >= Some(1) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the event was never throttled: {v}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(body);
    assert_eq!(request.await.unwrap().0, 200);
    // With no retries allowed, it still gets its one attempt, and it succeeds.
    let v = settled(&s, &id, "succeeded").await;
    assert_eq!(v["attempts"].as_u64(), Some(1), "{v}");
    assert_eq!(v["result"], "event");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_accepted_event_is_lost_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut accepted: Vec<String> = Vec::new();
    for round in 0..5 {
        let mut s = Server::start(&data);
        if round == 0 {
            s.deploy("sink", "hello-c", json!({"routes": ["/sink"]})).await;
        }
        // Senders keep posting; the process is killed once this round has 40 more 202s.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let mut senders = Vec::new();
        for _ in 0..4 {
            let (http, url, token, tx) =
                (reqwest::Client::new(), s.api_base().to_string(), s.token.clone(), tx.clone());
            senders.push(tokio::spawn(async move {
                loop {
                    let r =
                        http.post(format!("{url}{FNS}/sink/invocations")).bearer_auth(&token).body("e").send().await;
                    match r {
                        Ok(r) if r.status().as_u16() == 202 => {
                            let v: Value = match r.json().await {
                                Ok(v) => v,
                                Err(_) => return, // the answer was cut off: not counted as accepted
                            };
                            if tx.send(v["id"].as_str().unwrap().to_string()).is_err() {
                                return;
                            }
                        }
                        Ok(r) => panic!("unexpected answer {}", r.status()),
                        Err(_) => return, // the server is gone
                    }
                }
            }));
        }
        drop(tx);
        let mut this_round = 0;
        while this_round < 40 {
            accepted.push(rx.recv().await.expect("senders stopped early"));
            this_round += 1;
        }
        s.kill();
        for t in senders {
            t.await.unwrap();
        }
        // 202s that arrived before the kill took effect count too.
        while let Ok(id) = rx.try_recv() {
            accepted.push(id);
        }
    }
    let s = Server::start(&data);
    let mut redelivered = 0;
    for id in &accepted {
        let v = settled(&s, id, "succeeded").await;
        if v["attempts"].as_u64() > Some(1) || v["throttled"].as_u64() > Some(0) {
            redelivered += 1;
        }
    }
    println!("{} accepted events over 5 kills: 0 missing, {redelivered} delivered more than once", accepted.len());
}
