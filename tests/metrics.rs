//! End-to-end: Prometheus metrics at `/_wisp/metrics`. A known workload shows up as exact counts (RED per
//! function, cold starts, CPU and GiB-seconds, phase histograms), a held request as a busy instance and a
//! queued one as queue depth, a full queue as a counted rejection; the exposition passes `promtool check
//! metrics`; the endpoint wants the token unless the node runs with `--metrics-public`.

mod common;

use common::{Server, get, held, until};
use serde_json::json;
use std::io::Write;
use std::process::{Command, Stdio};

/// The value of the sample `name` whose labels include every one of `labels`, if exactly one matches.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        if metric != name || !labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))) {
            continue;
        }
        assert!(found.is_none(), "more than one {name} sample with {labels:?}:\n{text}");
        found = Some(value.parse::<f64>().unwrap());
    }
    found
}

async fn scrape(s: &Server) -> String {
    let r = s.api(reqwest::Method::GET, "/_wisp/metrics").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    r.text().await.unwrap()
}

/// Scrapes until `done` holds of the exposition (a deadline, not a sleep, bounds it).
async fn scrape_until(s: &Server, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let text = scrape(s).await;
        if done(&text) {
            return text;
        }
        assert!(std::time::Instant::now() < deadline, "the metrics never got there:\n{text}");
        tokio::task::yield_now().await;
    }
}

/// `promtool check metrics` (Prometheus's own linter) accepts `text`.
fn promtool_accepts(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt prometheus; scripts/test.sh installs it)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_known_workload_is_counted_exactly_and_promtool_accepts_the_exposition() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("hello", "hello-c", json!({"routes": ["/hello"], "limits": {"memory_mb": 64}})).await;
    s.deploy("echo", "echo-c", json!({"routes": ["/echo"], "scaling": {"max_instances": 1, "max_queue_depth": 1}}))
        .await;

    // Without the token: refused like every other control endpoint.
    let r = s.http.get(format!("{}/_wisp/metrics", s.api_base())).send().await.unwrap();
    assert_eq!(r.status(), 401);

    const N: usize = 7;
    for _ in 0..N {
        let r = s.http.get(format!("{}/hello", s.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }

    // One request held in the guest, one queued behind it, one refused (the queue holds one).
    let (a, a_body) = held(&s, "/echo");
    a_body.send(b"x".to_vec()).await.unwrap();
    until(&s, "echo", |f| f["in_flight"] == 1).await;
    let b = get(&s, "/echo");
    until(&s, "echo", |f| f["queued"] == 1).await;
    let c = s.http.get(format!("{}/echo", s.url)).send().await.unwrap();
    assert_eq!(c.status(), 429);

    let text = scrape(&s).await;
    let echo = [("namespace", "default"), ("function", "echo")];
    assert_eq!(sample(&text, "wisp_instances", &[echo[0], echo[1], ("state", "busy")]), Some(1.0), "{text}");
    assert_eq!(sample(&text, "wisp_admission_queue_depth", &echo), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "wisp_admission_rejections_total", &[echo[0], echo[1], ("reason", "queue_full")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "wisp_invocations_total", &[echo[0], echo[1], ("trigger", "http"), ("status", "4xx")]),
        Some(1.0),
        "the refusal is an invocation that answered 429:\n{text}"
    );
    a_body.send(b"y".to_vec()).await.unwrap();
    drop(a_body);
    assert_eq!(a.await.unwrap().0, 200);
    assert_eq!(b.await.unwrap(), 200);

    // An invocation is counted when the guest is done, which may be just after its client has the response:
    // scrape until all N are there (and then exactly N).
    let hello = [("namespace", "default"), ("function", "hello")];
    let ok = [hello[0], hello[1], ("trigger", "http"), ("status", "2xx")];
    let text = scrape_until(&s, |t| sample(t, "wisp_invocations_total", &ok) == Some(N as f64)).await;
    let invoked = N;
    let all = [hello[0], hello[1], ("trigger", "http")];
    assert_eq!(sample(&text, "wisp_invocation_duration_seconds_count", &all), Some(invoked as f64), "{text}");
    let cold = sample(&text, "wisp_cold_starts_total", &hello).unwrap();
    assert!(cold >= 1.0, "hello-c runs fresh: every invocation starts an instance ({cold})");
    let phases_count = |phase: &str, start: &str| {
        sample(&text, "wisp_invocation_phase_seconds_count", &[hello[0], hello[1], ("phase", phase), ("start", start)])
            .unwrap_or(0.0)
    };
    assert_eq!(phases_count("instantiate", "cold"), cold, "one instantiation per cold start");
    assert_eq!(phases_count("handler", "cold") + phases_count("handler", "warm"), invoked as f64);
    assert_eq!(phases_count("instantiate", "warm"), 0.0, "a warm start has no instantiation");
    let cpu = sample(&text, "wisp_invocation_cpu_seconds_total", &hello).unwrap();
    assert!(cpu > 0.0, "CPU time is measured: {cpu}");
    // GiB-seconds follow Lambda's rule: 64 MiB × each invocation's wall time rounded up to 1 ms, so at
    // least 1/16 GiB × 1 ms per invocation.
    let gib_s = sample(&text, "wisp_invocation_gibibyte_seconds_total", &hello).unwrap();
    let floor = invoked as f64 * (64.0 / 1024.0) * 0.001;
    assert!(gib_s >= floor - 1e-9, "{gib_s} < {floor}");
    assert_eq!(sample(&text, "wisp_functions", &[]), Some(2.0));
    assert_eq!(sample(&text, "wisp_records_dropped_total", &[]), Some(0.0));
    assert!(sample(&text, "wisp_instance_slots", &[]).unwrap() >= 1.0);
    assert!(sample(&text, "wisp_instance_slots_used", &[]).is_some());
    assert!(!text.contains("invocation=") && !text.contains("id=\""), "no unbounded labels");

    // Records reach the store in batches; a query flushes the channel, and then the store's latency
    // histogram has seen the batches.
    let out = s.cli(&["invocations", "--limit", "1"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = scrape(&s).await;
    assert!(sample(&text, "wisp_records_write_seconds_count", &[]).unwrap() >= 1.0, "{text}");
    assert!(sample(&text, "wisp_records_written_total", &[]).unwrap() >= invoked as f64);
    promtool_accepts(&text);

    // Prometheus asks for OpenMetrics, and gets it: counter families without `_total`, then `# EOF`.
    let r = s
        .api(reqwest::Method::GET, "/_wisp/metrics")
        .header("accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let om = r.text().await.unwrap();
    assert!(om.contains("# TYPE wisp_invocations counter\n") && om.ends_with("# EOF\n"), "{om}");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_public_serves_the_exposition_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), &["--metrics-public"]);
    let r = s.http.get(format!("{}/_wisp/metrics", s.api_base())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert_eq!(sample(&text, "wisp_functions", &[]), Some(0.0), "{text}");
    // Only the metrics: the rest of the API still wants the token.
    let r = s.http.get(format!("{}/_wisp/v1/status", s.api_base())).send().await.unwrap();
    assert_eq!(r.status(), 401);
}
