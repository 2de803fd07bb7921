//! End-to-end: the KPA autoscaler drives the warm pool — instances made ahead of load, dropped to zero after
//! the grace period — and its decisions are visible.

mod common;

use common::{Server, held, stderr, stdout, until};
use serde_json::json;

/// Three requests held in flight at a target of 1 × 70 %: the autoscaler wants ⌈3 / 0.7⌉ = 5 instances, so
/// the pool makes 2 warm ones besides the 3 busy. Once the load is gone for the grace period, the warm
/// instances are dropped (idle_timeout_seconds, 300 s by default, has nothing to do with it) and the next
/// request is served by a new instance.
#[tokio::test(flavor = "multi_thread")]
async fn the_autoscaler_warms_instances_ahead_of_load_then_scales_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), &["--autoscale-tick-ms", "100"]);
    let scaling = json!({"instance_mode": "reuse", "stable_window_seconds": 6, "scale_to_zero_grace_seconds": 1});
    s.deploy("echo", "echo-c", json!({"routes": ["/echo"], "scaling": scaling})).await;

    let requests: Vec<_> = (0..3).map(|_| held(&s, "/echo")).collect();
    for (_, body) in &requests {
        body.send(b"x".to_vec()).await.unwrap();
    }
    until(&s, "echo", |f| f["in_flight"] == 3).await;
    until(&s, "echo", |f| f["autoscaler"]["desired"] == 5 && f["idle_instances"] == 2).await;
    let out = s.cli(&["status", "echo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("autoscaler:  desired 5"), "{}", stdout(&out));

    for (task, body) in requests {
        drop(body);
        assert_eq!(task.await.unwrap(), (200, "x".to_string()));
    }
    until(&s, "echo", |f| f["autoscaler"]["desired"] == 0 && f["idle_instances"] == 0).await;

    assert_eq!(s.get("/echo").await.0, 200);
    let newest = s.logs("echo").await.last().cloned().unwrap();
    assert_eq!(newest["cold"], true, "scaled to zero: the next request starts an instance: {newest}");
}

/// `min_instances` is a floor the autoscaler keeps through scale-to-zero: after two held requests grew the
/// pool, a zero grace period trims it straight back to the one provisioned instance, which serves next.
#[tokio::test(flavor = "multi_thread")]
async fn scale_to_zero_keeps_the_provisioned_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), &["--autoscale-tick-ms", "100"]);
    let scaling = json!({"instance_mode": "reuse", "min_instances": 1, "stable_window_seconds": 6,
                         "scale_to_zero_grace_seconds": 0});
    s.deploy("echo", "echo-c", json!({"routes": ["/echo"], "scaling": scaling})).await;
    let requests: Vec<_> = (0..2).map(|_| held(&s, "/echo")).collect();
    for (_, body) in &requests {
        body.send(b"y".to_vec()).await.unwrap();
    }
    until(&s, "echo", |f| f["in_flight"] == 2).await;
    for (task, body) in requests {
        drop(body);
        assert_eq!(task.await.unwrap(), (200, "y".to_string()));
    }
    until(&s, "echo", |f| f["autoscaler"]["desired"] == 1 && f["idle_instances"] == 1).await;
    assert_eq!(s.get("/echo").await.0, 200);
    let newest = s.logs("echo").await.last().cloned().unwrap();
    assert_eq!(newest["cold"], false, "the provisioned instance served it: {newest}");
}

/// Scaling settings outside their range are refused with the key, the value and the allowed range.
#[tokio::test(flavor = "multi_thread")]
async fn autoscaling_settings_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("hello", "hello-c", json!({"routes": ["/hello"]})).await;
    for (flag, value, want) in [
        ("--stable-window-seconds", "5", "scaling.stable_window_seconds = 5 is out of range: allowed 6..=3600"),
        (
            "--target-utilization-percent",
            "0",
            "scaling.target_utilization_percent = 0 is out of range: allowed 1..=100",
        ),
        ("--concurrency-per-instance", "4", "scaling.concurrency_per_instance = 4 is out of range: allowed 1..=1"),
        (
            "--target-concurrency",
            "2",
            "scaling.target_concurrency = 2 is out of range: allowed 1..=concurrency_per_instance (1)",
        ),
    ] {
        let out = s.cli(&["scale", "hello", flag, value]);
        assert!(!out.status.success(), "{flag} {value} accepted");
        assert!(stderr(&out).contains(want), "{flag} {value}: {}", stderr(&out));
    }
    let out = s.cli(&["scale", "hello", "--scale-to-zero-grace-seconds", "5", "--panic-window-percent", "20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let f = s.function("hello").await;
    assert_eq!(f["scaling"]["scale_to_zero_grace_seconds"], 5);
    assert_eq!(f["scaling"]["panic_window_percent"], 20);
}
