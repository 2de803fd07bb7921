//! End-to-end: admission control — bounded queues (429, 503), cancellation, and reserved concurrency.

mod common;

use common::{Server, get, held, until};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_answers_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("echo", "echo-c", json!({"routes": ["/echo"], "scaling": {"max_instances": 1, "max_queue_depth": 1}}))
        .await;
    let (a, a_body) = held(&s, "/echo");
    a_body.send(b"first ".to_vec()).await.unwrap();
    until(&s, "echo", |f| f["in_flight"] == 1).await;
    let b = get(&s, "/echo");
    until(&s, "echo", |f| f["queued"] == 1).await;
    let c = s.http.get(format!("{}/echo", s.url)).send().await.unwrap();
    assert_eq!(c.status(), 429);
    assert_eq!(c.headers()["retry-after"], "1");
    assert!(c.text().await.unwrap().contains("the function's queue is full (1 waiting)"));
    // Finish the first request: it completes, then the queued one runs.
    a_body.send(b"done".to_vec()).await.unwrap();
    drop(a_body);
    assert_eq!(a.await.unwrap(), (200, "first done".to_string()));
    assert_eq!(b.await.unwrap(), 200);
    let statuses: Vec<u64> = s.logs("echo").await.iter().map(|l| l["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|&&x| x == 429).count(), 1, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_past_the_queue_timeout_answers_503() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("echo", "echo-c", json!({"routes": ["/echo"], "scaling": {"max_instances": 1, "queue_timeout_ms": 200}}))
        .await;
    let (a, a_body) = held(&s, "/echo");
    until(&s, "echo", |f| f["in_flight"] == 1).await;
    let b = s.http.get(format!("{}/echo", s.url)).send().await.unwrap();
    assert_eq!(b.status(), 503);
    assert!(b.text().await.unwrap().contains("queue timeout of 200 ms"));
    assert_eq!(s.function("echo").await["queued"], 0);
    let logs = s.logs("echo").await;
    let timed_out = logs.iter().find(|l| l["status"] == 503).expect("the 503 is recorded");
    assert!(timed_out["queue_us"].as_u64().unwrap() > 0, "its wait in the queue is recorded: {timed_out}");
    drop(a_body);
    assert_eq!(a.await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_request_leaves_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("echo", "echo-c", json!({"routes": ["/echo"], "scaling": {"max_instances": 1, "max_queue_depth": 1}}))
        .await;
    let (a, a_body) = held(&s, "/echo");
    until(&s, "echo", |f| f["in_flight"] == 1).await;
    let b = get(&s, "/echo");
    until(&s, "echo", |f| f["queued"] == 1).await;
    b.abort(); // the client goes away
    until(&s, "echo", |f| f["queued"] == 0).await;
    // Its place is free: another request can queue instead of getting 429.
    let c = get(&s, "/echo");
    until(&s, "echo", |f| f["queued"] == 1).await;
    drop(a_body);
    assert_eq!(a.await.unwrap().0, 200);
    assert_eq!(c.await.unwrap(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hot_function_cannot_starve_a_reserved_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), &["--max-concurrency", "2"]);
    s.deploy("vip", "hello-c", json!({"routes": ["/vip"], "scaling": {"reserved_concurrency": 1}})).await;
    s.deploy("hot", "echo-c", json!({"routes": ["/hot"]})).await;
    // The hot function takes everything it can: the one shared slot (the other is vip's).
    let hot: Vec<_> = (0..3).map(|_| held(&s, "/hot")).collect();
    until(&s, "hot", |f| f["in_flight"] == 1 && f["queued"] == 2).await;
    assert_eq!(s.get("/vip").await, (200, "Hello from C!\n".to_string()), "vip is served from its reservation");
    assert_eq!(s.function("hot").await["in_flight"], 1);
    // Reservations cannot exceed the node.
    let e = s
        .deploy_bytes(
            "greedy",
            std::fs::read(common::guest("hello-c")).unwrap(),
            json!({"scaling": {"reserved_concurrency": 5}}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.0, 400);
    assert!(e.1.contains("scaling.reserved_concurrency = 5 is out of range: allowed 0..=1"), "{}", e.1);
    // Release every held body first: which of the three is running and which are queued is not known.
    let (tasks, bodies): (Vec<_>, Vec<_>) = hot.into_iter().unzip();
    drop(bodies);
    for task in tasks {
        assert_eq!(task.await.unwrap().0, 200);
    }
}
