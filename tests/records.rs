//! End-to-end: persisted invocation records and usage. A known workload leaves exactly one record per
//! invocation, found by the filters and pages of `wisp invocations`, surviving a restart; usage sums the
//! records (GB-s by Lambda's rule, CPU-ms) and prices them; retention keeps what it should and the bill keeps
//! counting; `wisp logs -f` streams a new invocation's output with control characters escaped.

mod common;

use common::Server;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn page(s: &Server, args: &[&str]) -> Value {
    let mut all = vec!["invocations", "--json"];
    all.extend_from_slice(args);
    let out = s.cli(&all);
    assert!(out.status.success(), "wisp {all:?}: {}", common::stderr(&out));
    serde_json::from_str(&common::stdout(&out)).unwrap()
}

/// Every record `args` selects, following `next` through the pages.
fn all_records(s: &Server, args: &[&str]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut a: Vec<&str> = args.to_vec();
        if let Some(b) = &before {
            a.extend(["--before", b.as_str()]);
        }
        let p = page(s, &a);
        out.extend(p["invocations"].as_array().unwrap().iter().cloned());
        match p["next"].as_i64() {
            Some(n) => before = Some(n.to_string()),
            None => return out,
        }
    }
}

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_invocation_is_recorded_once_and_usage_is_their_sum() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        "[pricing]\ncurrency = \"EUR\"\nper_million_requests = 200000\nper_gb_second = 16\nper_million_cpu_ms = 30000\n\
         [pricing.free]\nrequests = 10\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    s.deploy("hello", "hello-c", json!({"routes": ["/hello"], "limits": {"memory_mb": 128}})).await;
    s.deploy("sleeper", "sleep-c", json!({"routes": ["/sleep"], "limits": {"memory_mb": 32}})).await;
    s.deploy("spinner", "loop-c", json!({"routes": ["/spin"], "limits": {"timeout_ms": 20, "memory_mb": 64}})).await;
    const N: usize = 23;
    for _ in 0..N {
        assert_eq!(s.get("/hello").await.0, 200);
    }
    for _ in 0..3 {
        assert_eq!(s.get("/sleep").await.0, 200);
    }
    assert_eq!(s.get("/spin").await.0, 504);
    let out = s.cli(&["invoke", "hello"]);
    assert!(out.status.success(), "{}", common::stderr(&out));

    // Exactly one record per invocation, each id once, across pages of 5.
    let hello = all_records(&s, &["hello", "--limit", "5"]);
    assert_eq!(hello.len(), N + 1, "{hello:?}");
    let ids: HashSet<&str> = hello.iter().map(|l| l["record"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), N + 1);
    assert!(hello.iter().all(|l| l["function"] == "hello" && l["namespace"] == "default"));
    let seqs: Vec<i64> = hello.iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first: {seqs:?}");
    // Filters: status, trigger, id, time.
    let errors = all_records(&s, &["--status", "error"]);
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0]["function"].as_str(), n(&errors[0]["record"], "status")), (Some("spinner"), 504));
    assert_eq!(all_records(&s, &["--status", "504"]).len(), 1);
    assert_eq!(all_records(&s, &["--status", "ok"]).len(), N + 1 + 3);
    let api = all_records(&s, &["--trigger", "api"]);
    assert_eq!(api.len(), 1);
    assert_eq!(api[0]["function"], "hello");
    assert_eq!(all_records(&s, &["hello", "--trigger", "http"]).len(), N);
    let id = hello[3]["record"]["id"].as_str().unwrap();
    let one = all_records(&s, &["--id", id]);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["record"]["id"], id);
    assert_eq!(all_records(&s, &["--since", "1h"]).len(), N + 1 + 3 + 1);
    assert_eq!(all_records(&s, &["--until", "1h"]).len(), 0);
    // Bad filters say what to write.
    let bad = s.cli(&["invocations", "--status", "broken"]);
    assert!(
        !bad.status.success() && common::stderr(&bad).contains("write `error`, `ok` or an HTTP status"),
        "{}",
        common::stderr(&bad)
    );
    let bad = s.cli(&["invocations", "--trigger", "carrier-pigeon"]);
    assert!(common::stderr(&bad).contains("write one of http, api, event, cron"), "{}", common::stderr(&bad));
    let bad = s.cli(&["invocations", "--since", "yesterday-ish"]);
    assert!(common::stderr(&bad).contains("give a duration back from now"), "{}", common::stderr(&bad));

    // Usage = the sum of the records, by the billing rules.
    let records = all_records(&s, &[]);
    let usage: Value = s.get_json("/_wisp/v1/usage?by=function").await;
    assert_eq!(usage["currency"], "EUR");
    for f in ["hello", "sleeper", "spinner"] {
        let mine: Vec<&Value> = records.iter().filter(|l| l["function"] == f).map(|l| &l["record"]).collect();
        let row = usage["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["function"] == f)
            .unwrap_or_else(|| panic!("{f}: {usage}"));
        assert_eq!(n(row, "requests"), mine.len() as u64, "{f}");
        assert_eq!(n(row, "errors"), mine.iter().filter(|r| r["error"].is_string()).count() as u64, "{f}");
        assert_eq!(n(row, "cold_starts"), mine.iter().filter(|r| r["cold"] == true).count() as u64, "{f}");
        // GB-s: memory limit (GiB) × wall time rounded up to whole milliseconds, summed.
        let mib_ms: u64 =
            mine.iter().map(|r| (n(r, "memory_limit_bytes") >> 20) * n(r, "wall_us").div_ceil(1000)).sum();
        let gb_s = row["gb_seconds"].as_f64().unwrap();
        assert!((gb_s - mib_ms as f64 / 1024.0 / 1000.0).abs() < 1e-9, "{f}: {gb_s} vs {mib_ms} MiB·ms");
        let cpu_us: u64 = mine.iter().map(|r| n(r, "cpu_us")).sum();
        assert!((row["cpu_ms"].as_f64().unwrap() - cpu_us as f64 / 1000.0).abs() < 1e-9, "{f}");
        let bytes_out: u64 = mine.iter().map(|r| n(r, "bytes_out")).sum();
        assert_eq!(n(row, "bytes_out"), bytes_out, "{f}");
        let cost = mine.len() as f64 * 0.2 + gb_s * 16.0 + cpu_us as f64 / 1000.0 * 0.03;
        assert!((row["cost"].as_f64().unwrap() - cost).abs() < 1e-6, "{f}: {row} vs {cost}");
    }
    assert_eq!(n(&usage["total"], "requests"), records.len() as u64);
    // The free tier (10 requests) is credited once per namespace.
    let bill = &usage["bills"][0];
    assert_eq!(bill["namespace"], "default");
    let credit = bill["credit"].as_f64().unwrap();
    assert!((credit - 10.0 * 0.2).abs() < 1e-9, "{bill}");
    // Hourly rows add up to the same; CSV and the table carry the same numbers.
    let hourly: Value = s.get_json("/_wisp/v1/usage/hourly?function=hello").await;
    let hourly_requests: u64 = hourly["hours"].as_array().unwrap().iter().map(|h| n(h, "requests")).sum();
    assert_eq!(hourly_requests, (N + 1) as u64);
    let csv = common::stdout(&s.cli(&["usage", "--format", "csv"]));
    let line = csv.lines().find(|l| l.starts_with("default,hello,")).unwrap_or_else(|| panic!("{csv}"));
    assert_eq!(line.split(',').nth(2), Some((N + 1).to_string().as_str()), "{csv}");
    let table = common::stdout(&s.cli(&["usage", "--by", "namespace"]));
    assert!(table.contains("FREE TIER") && table.contains("EUR"), "{table}");
    let series: Value = s.get_json("/_wisp/v1/namespaces/default/functions/hello/series?step_ms=3600000").await;
    let points = series["points"].as_array().unwrap();
    assert_eq!(points.iter().map(|p| n(p, "requests")).sum::<u64>(), (N + 1) as u64, "{series}");
    let status: Value = s.status().await;
    assert_eq!((n(&status["records"], "written"), n(&status["records"], "dropped")), (records.len() as u64, 0));

    // Records survive a restart.
    s.stop();
    let s = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    assert_eq!(all_records(&s, &["hello"]).len(), N + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_keeps_the_newest_records_and_the_bill_keeps_counting() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[records]\nmax_records = 4\n").unwrap();
    let s = Server::start_with(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    s.deploy("hello", "hello-c", json!({"routes": ["/hello"]})).await;
    let mut ids = Vec::new();
    for _ in 0..9 {
        let r = s.http.get(format!("{}/hello", s.url)).send().await.unwrap();
        ids.push(r.headers()["x-wisp-invocation-id"].to_str().unwrap().to_string());
        r.bytes().await.unwrap();
    }
    let kept: Vec<String> =
        all_records(&s, &[]).iter().map(|l| l["record"]["id"].as_str().unwrap().to_string()).collect();
    let newest: Vec<String> = ids.iter().rev().take(4).cloned().collect();
    assert_eq!(kept, newest, "the four newest, newest first");
    let usage: Value = s.get_json("/_wisp/v1/usage").await;
    assert_eq!(n(&usage["total"], "requests"), 9, "aggregates are not subject to retention: {usage}");
    // A bad [records] value is refused at start, naming the key.
    std::fs::write(&config, "[records]\nmax_records = 0\n").unwrap();
    let out = Command::new(common::wisp_bin())
        .args(["up", "--listen", "127.0.0.1:0", "--config", config.to_str().unwrap(), "--data-dir"])
        .arg(dir.path().join("other"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(common::stderr(&out).contains("records.max_records = 0 is out of range"), "{}", common::stderr(&out));
    std::fs::write(&config, "[pricing]\nper_gb_second = -1\n").unwrap();
    let out = Command::new(common::wisp_bin())
        .args(["up", "--listen", "127.0.0.1:0", "--config", config.to_str().unwrap(), "--data-dir"])
        .arg(dir.path().join("other"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(common::stderr(&out).contains("pricing.per_gb_second = -1"), "{}", common::stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_follow_streams_new_invocations_with_control_characters_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("talk", "logs-c", json!({"routes": ["/talk"], "env": {"SHOUT": "\u{1b}[2Jcleared?\u{7}"}})).await;
    let mut child = Command::new(common::wisp_bin())
        .args(["logs", "talk", "-f", "--limit", "0"])
        .env("WISP_URL", s.api_base())
        .env("WISP_DATA_DIR", &s.data)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Subscribed once it says so; then an invocation made afterwards must show up. Lines are read on threads
    // so that a stream that never delivers fails the test instead of hanging it.
    let lines = |r: Box<dyn std::io::Read + Send>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(r).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        rx
    };
    let wait = std::time::Duration::from_secs(60);
    let err = lines(Box::new(child.stderr.take().unwrap()));
    let line = err.recv_timeout(wait).expect("wisp logs -f says it is following");
    assert!(line.starts_with("following talk"), "{line}");
    let r = s.http.get(format!("{}/talk", s.url)).send().await.unwrap();
    let id = r.headers()["x-wisp-invocation-id"].to_str().unwrap().to_string();
    r.bytes().await.unwrap();
    let out = lines(Box::new(child.stdout.take().unwrap()));
    let mut seen = Vec::new();
    loop {
        let l = out.recv_timeout(wait).unwrap_or_else(|e| panic!("no more output ({e}): {seen:?}"));
        let done = l.contains("\\u{7}");
        seen.push(l + "\n");
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = seen.concat();
    assert!(text.contains(&id) && text.contains("| stdout line from guest"), "{text}");
    assert!(text.contains("| \\u{1b}[2Jcleared?\\u{7}"), "escaped: {text}");
    assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "no raw control characters: {text:?}");
    // The same invocation by id, from the ring and from the persisted records.
    let one = common::stdout(&s.cli(&["logs", "talk", "--id", &id]));
    assert!(one.contains(&id) && one.lines().filter(|l| l.contains(" status=")).count() == 1, "{one}");
    let persisted = common::stdout(&s.cli(&["invocations", "--id", &id]));
    assert!(persisted.contains("function default/talk") && persisted.contains("\\u{1b}[2J"), "{persisted}");
}
