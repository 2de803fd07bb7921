use super::*;
use crate::prices::{FreeTier, Prices};

fn rec(id: &str, at_ms: u64, status: u16, wall_us: u64, cpu_us: u64, mem_mb: u64) -> Arc<InvocationRecord> {
    let mut r: InvocationRecord = serde_json::from_value(serde_json::json!({
        "id": id, "at_ms": at_ms, "revision": "r", "status": status, "error": null,
        "instantiate_us": 0, "duration_us": wall_us, "logs": "", "logs_truncated": false,
    }))
    .unwrap();
    r.trigger = "http".into();
    r.wall_us = wall_us;
    r.cpu_us = cpu_us;
    r.memory_limit_bytes = mem_mb << 20;
    r.egress_bytes = 1000;
    if status >= 500 {
        r.error = Some("guest failed".into());
    }
    Arc::new(r)
}

#[tokio::test]
async fn records_are_written_queried_paged_and_summed() {
    let dir = tempfile::tempdir().unwrap();
    let m = Metering::open(&dir.path().join("records.sqlite3"), Config::default()).unwrap();
    let now = wisp_core_now_ms();
    let hour = now - now % 3_600_000;
    for i in 0..10u64 {
        // 128 MiB for 1.5 ms (billed 2 ms), 0.5 ms of CPU; every fourth fails.
        let status = if i % 4 == 3 { 500 } else { 200 };
        m.record("ns", if i < 6 { "a" } else { "b" }, rec(&format!("id{i}"), hour + i, status, 1_500, 500, 128));
    }
    m.record("other", "a", rec("x", hour, 200, 1_000, 100, 64));
    let all = m.query(Filter { namespace: Some("ns".into()), limit: 50, ..Default::default() }).await.unwrap();
    assert_eq!(all.invocations.len(), 10);
    assert_eq!(all.invocations[0].record.id, "id9", "newest first");
    assert_eq!(all.invocations[0].function, "b");
    // Filters and paging.
    let errors = m
        .query(Filter {
            namespace: Some("ns".into()),
            status: Some(StatusFilter::Error),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(errors.invocations.iter().map(|l| l.record.id.as_str()).collect::<Vec<_>>(), ["id7", "id3"]);
    let page1 = m
        .query(Filter { namespace: Some("ns".into()), function: Some("a".into()), limit: 4, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(page1.invocations.len(), 4);
    let page2 = m
        .query(Filter {
            namespace: Some("ns".into()),
            function: Some("a".into()),
            limit: 4,
            before: page1.next,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page2.invocations.iter().map(|l| l.record.id.as_str()).collect::<Vec<_>>(), ["id1", "id0"]);
    assert_eq!(page2.next, None);
    // The aggregates equal the sums of the records.
    let usage = m.usage(Some("ns".into()), hour, hour + 3_600_000, UsageBy::Function).await.unwrap();
    assert_eq!(usage.len(), 2);
    let a = &usage[0];
    assert_eq!((a.function.as_deref(), a.requests, a.errors), (Some("a"), 6, 1));
    assert_eq!(a.gb_seconds, 6.0 * 0.125 * 0.002, "GB-s: 128 MiB × 2 ms billed, six times");
    assert_eq!(a.cpu_ms, 3.0);
    assert_eq!(a.egress_bytes, 6000);
    let by_ns = m.usage(None, hour, hour + 3_600_000, UsageBy::Namespace).await.unwrap();
    assert_eq!(
        by_ns.iter().map(|u| (u.namespace.as_str(), u.requests)).collect::<Vec<_>>(),
        [("ns", 10), ("other", 1)]
    );
    // Prices and the free tier.
    let prices = Prices {
        currency: "USD".into(),
        per_million_requests: 0.2,
        per_gb_second: 0.0000166667,
        per_million_cpu_ms: 0.02,
        per_gb_egress: 0.09,
        free: FreeTier { requests: 4, ..Default::default() },
    };
    let bills = prices.bills(&usage);
    assert_eq!(bills.len(), 1);
    let b = &bills[0];
    let gross = 10.0 / 1e6 * 0.2 + 10.0 * 0.00025 * 0.0000166667 + 5.0 / 1e6 * 0.02 + 10_000.0 / 1e9 * 0.09;
    assert!((b.gross - gross).abs() < 1e-15, "{} vs {gross}", b.gross);
    assert!((b.credit - 4.0 / 1e6 * 0.2).abs() < 1e-15);
    assert!((b.due - (gross - 4.0 / 1e6 * 0.2)).abs() < 1e-15);
    assert_eq!(m.dropped(), 0);
    assert_eq!(m.written(), 11);
}

#[tokio::test]
async fn retention_keeps_the_newest_records_within_age_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { max_records: 5, retention_ms: 3_600_000, ..Config::default() };
    let m = Metering::open(&dir.path().join("records.sqlite3"), config).unwrap();
    let now = wisp_core_now_ms();
    // Two records older than the retention, then eight recent ones: the old two go by age, the oldest three
    // recent ones by count.
    m.record("ns", "f", rec("old1", now - 7_200_000, 200, 10, 1, 128));
    m.record("ns", "f", rec("old2", now - 7_200_000, 200, 10, 1, 128));
    for i in 0..8 {
        m.record("ns", "f", rec(&format!("new{i}"), now + i, 200, 10, 1, 128));
    }
    let page = m.query(Filter { limit: 50, ..Default::default() }).await.unwrap();
    let ids: Vec<_> = page.invocations.iter().map(|l| l.record.id.clone()).collect();
    assert_eq!(ids, ["new7", "new6", "new5", "new4", "new3"]);
    // The aggregates keep counting what was deleted: they are the bill.
    let usage = m.usage(None, now - 7_200_000, now + 3_600_000, UsageBy::Namespace).await.unwrap();
    assert_eq!(usage[0].requests, 10);
}

#[tokio::test]
async fn a_full_channel_counts_what_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.sqlite3");
    // The writer is not started yet: the channel (capacity 2) fills and stays full.
    let (m, rx) = Metering::unstarted(&path, Config { channel_capacity: 2, ..Config::default() }).unwrap();
    let now = wisp_core_now_ms();
    for i in 0..5 {
        m.record("ns", "f", rec(&format!("r{i}"), now, 200, 10, 1, 128));
    }
    assert_eq!(m.dropped(), 3);
    m.start(&path, rx).unwrap();
    let page = m.query(Filter { limit: 50, ..Default::default() }).await.unwrap();
    assert_eq!(page.invocations.len(), 2, "what was queued is written");
    assert_eq!((m.written(), m.dropped()), (2, 3));
}

#[test]
fn status_filters_parse_or_say_what_to_write() {
    let f: Filter = serde_json::from_value(serde_json::json!({"status": "503"})).unwrap();
    assert_eq!(f.status, Some(StatusFilter::Code(503)));
    let e = serde_json::from_value::<Filter>(serde_json::json!({"status": "bad"})).unwrap_err().to_string();
    assert!(e.contains("write `error`, `ok` or an HTTP status"), "{e}");
    assert!(
        Prices { per_gb_second: -1.0, ..Default::default() }.validate().unwrap_err().contains("pricing.per_gb_second")
    );
}

#[tokio::test]
async fn series_buckets_counts_and_percentiles_and_hours_split_usage() {
    let dir = tempfile::tempdir().unwrap();
    let m = Metering::open(&dir.path().join("records.sqlite3"), Config::default()).unwrap();
    let now = wisp_core_now_ms();
    let t0 = now - now % 60_000 - 120_000;
    // Minute 0: durations 1..=100 ms (one cold, one failed); minute 2: one at 7 ms; another function's ignored.
    for i in 1..=100u64 {
        let mut r = (*rec(&format!("a{i}"), t0 + i, if i == 100 { 500 } else { 200 }, 10, 1, 128)).clone();
        r.duration_us = i * 1000;
        r.cold = i == 1;
        m.record("ns", "f", Arc::new(r));
    }
    let mut r = (*rec("b", t0 + 120_000, 200, 10, 1, 128)).clone();
    r.duration_us = 7000;
    m.record("ns", "f", Arc::new(r));
    m.record("ns", "g", rec("c", t0 + 5, 200, 10, 1, 128));
    let (step, points) = m.series("ns", "f", t0, t0 + 180_000, 60_000).await.unwrap();
    assert_eq!(step, 60_000);
    assert_eq!(points.len(), 2, "{points:?}");
    let p = &points[0];
    assert_eq!((p.t_ms, p.requests, p.errors, p.cold_starts), (t0, 100, 1, 1));
    assert_eq!((p.p50_ms, p.p90_ms, p.p99_ms), (51.0, 90.0, 99.0));
    assert_eq!((points[1].t_ms, points[1].requests, points[1].p99_ms), (t0 + 120_000, 1, 7.0));
    // A range too long for its step gets a coarser step.
    let (step, _) = m.series("ns", "f", 0, MAX_POINTS * 1000 * 10, 1).await.unwrap();
    assert_eq!(step, 10_000);
    let hours = m.hourly(Some("ns".into()), None, t0, now + 1).await.unwrap();
    let total: u64 = hours.iter().map(|h| h.usage.requests).sum();
    assert_eq!(total, 102);
    assert!(hours.iter().all(|h| h.hour_ms % 3_600_000 == 0 && h.usage.function.is_some()));
}
