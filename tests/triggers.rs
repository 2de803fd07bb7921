//! End-to-end: triggers. Cron ticks (and the missed-tick policy across a restart), internal topics, webhooks
//! in every CloudEvents mode with the handshake and signatures, and Redis, MQTT and NATS messages from real
//! clients — each against a broker the test starts on a free loopback port, kills with SIGKILL and restarts,
//! after which every message published arrives.

mod common;

use common::{Server, stderr, stdout};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FNS: &str = "/_wisp/v1/namespaces/default/functions";
const WAIT: Duration = Duration::from_secs(60);

/// What event-py answered for each invocation of `name` that succeeded: `{event: {ce attributes}, data}`.
async fn handled(s: &Server, name: &str) -> Vec<Value> {
    let path = format!("{FNS}/{name}/dead-letters?state=succeeded&limit=10000");
    let list: Vec<Value> = s.api(Method::GET, &path).send().await.unwrap().json().await.unwrap();
    list.iter().map(|v| serde_json::from_str(v["result"].as_str().unwrap_or("null")).unwrap_or(Value::Null)).collect()
}

/// Waits (bounded) until what `name` handled satisfies `pred`; returns it.
async fn until_handled(s: &Server, name: &str, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = handled(s, name).await;
        if pred(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "{name} never handled {what}; it handled: {got:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn datas(got: &[Value]) -> Vec<String> {
    let mut d: Vec<String> = got.iter().map(|v| v["data"].as_str().unwrap_or("").to_string()).collect();
    d.sort();
    d
}

/// The status of `name`'s one trigger.
async fn trigger(s: &Server, name: &str) -> Value {
    let v = s.status().await;
    v["triggers"].as_array().unwrap().iter().find(|t| t["function"] == name).cloned().unwrap_or(Value::Null)
}

/// Waits (bounded) until `name`'s trigger is connected for the `connects`-th time.
async fn connected(s: &Server, name: &str, connects: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let t = trigger(s, name).await;
        if t["state"] == "connected" && t["connects"].as_u64().unwrap_or(0) >= connects {
            return;
        }
        assert!(Instant::now() < deadline, "{name}'s trigger never connected ({connects}): {t}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A broker process the test owns: started on a free loopback port, killed with SIGKILL on request or drop.
struct Broker {
    child: Option<Child>,
    command: Vec<String>,
    port: u16,
}

impl Broker {
    fn start(port: u16, command: &[String]) -> Broker {
        let mut b = Broker { child: None, command: command.to_vec(), port };
        b.restart();
        b
    }

    fn restart(&mut self) {
        let child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.command[0]));
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "{} never listened on {}", self.command[0], self.port);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn cron_ticks_every_second_and_catches_up_once_after_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start(&data);
    let every_second =
        |missed: &str| json!({"triggers": [{"type": "cron", "schedule": "* * * * * *", "missed": missed}]});
    s.deploy("tick", "event-py", every_second("latest")).await;
    s.deploy("tick-skip", "event-py", every_second("skip")).await;
    let ticks = |got: &[Value]| -> Vec<u64> {
        let mut t: Vec<u64> = got
            .iter()
            .map(|v| {
                let data: Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
                wisp_ms(data["tick"].as_str().unwrap())
            })
            .collect();
        t.sort();
        t
    };
    let got = until_handled(&s, "tick", "two ticks", |g| g.len() >= 2).await;
    let first = &got[0]["event"];
    assert_eq!(first["type"], "dev.wisp.cron.tick");
    assert!(first["source"].as_str().unwrap().starts_with("/_wisp/cron/default/tick/"), "{first}");
    // Binary mode percent-encodes spaces in attribute headers (CloudEvents HTTP binding §3.1.3.2).
    assert_eq!(first["subject"], "*%20*%20*%20*%20*%20*");
    let t = ticks(&got);
    assert!(t.windows(2).all(|w| (w[1] - w[0]) % 1000 == 0 && w[1] > w[0]), "ticks are whole seconds apart: {t:?}");
    // The tick time is the event id: RFC 3339 of the tick.
    assert!(got.iter().all(|v| v["event"]["id"].as_str().unwrap().ends_with('Z')), "{got:#?}");
    until_handled(&s, "tick-skip", "a tick", |g| !g.is_empty()).await;

    // Down for at least three ticks.
    s.stop();
    let down_at = now_ms();
    while now_ms() < down_at + 3500 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before_latest = fired_offline(&data, "tick");
    let before_skip = fired_offline(&data, "tick-skip");
    let s = Server::start(&data);
    let up_at = now_ms();
    let last_before = *before_latest.last().unwrap();
    // `latest`: one catch-up tick, carrying how many were missed; then the schedule goes on.
    let got = until_handled(&s, "tick", "the catch-up tick and a regular one after it", |g| {
        ticks(g).iter().any(|&t| t > up_at)
    })
    .await;
    let missed: Vec<&Value> = got
        .iter()
        .filter(|v| {
            let d: Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
            d["missed_ticks"].as_u64().unwrap() > 0
        })
        .collect();
    assert_eq!(missed.len(), 1, "exactly one catch-up tick: {got:#?}");
    let d: Value = serde_json::from_str(missed[0]["data"].as_str().unwrap()).unwrap();
    assert!(d["missed_ticks"].as_u64().unwrap() >= 3, "{d}");
    let in_gap = ticks(&got).into_iter().filter(|&t| t > last_before && t <= up_at).count();
    assert_eq!(in_gap, 1, "one tick for the downtime, not one per missed tick");
    // `skip`: nothing for the downtime.
    let last_skip = *before_skip.last().unwrap();
    let got = until_handled(&s, "tick-skip", "a tick after the restart", |g| ticks(g).iter().any(|&t| t > up_at)).await;
    let gap: Vec<u64> = ticks(&got).into_iter().filter(|&t| t > last_skip && t < up_at - 1000).collect();
    assert!(gap.is_empty(), "skip fires none of the missed ticks: {gap:?}");
}

/// The tick times of every event `name`'s cron trigger fired (in any state), read from the queue database
/// while the server is down: the last one is where the downtime starts.
fn fired_offline(data: &Path, name: &str) -> Vec<u64> {
    let db = rusqlite::Connection::open(data.join("store").join("queue.sqlite3")).unwrap();
    let mut stmt = db
        .prepare("SELECT event_id FROM invocations WHERE function = ?1")
        .unwrap_or_else(|e| panic!("the queue schema changed? {e}"));
    let mut t: Vec<u64> = stmt
        .query_map([format!("default/{name}")], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|r| wisp_ms(&r.unwrap()))
        .collect();
    t.sort();
    t
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Unix ms of an RFC 3339 UTC time as wisp writes it (`2026-01-01T00:00:00.000Z`).
fn wisp_ms(s: &str) -> u64 {
    let d = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let (y, m, day, h, mi, sec) = (d(0, 4), d(5, 7), d(8, 10), d(11, 13), d(14, 16), d(17, 19));
    let ms = if s.len() > 20 && &s[19..20] == "." { d(20, 23) } else { 0 };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (((days * 24 + h) * 60 + mi) * 60 + sec) as u64 * 1000 + ms as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_fan_out_to_each_subscriber_from_when_it_subscribed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let on = |topic: &str| json!({"triggers": [{"type": "topic", "topic": topic}]});
    s.deploy("billing", "event-py", on("orders")).await;
    s.deploy("shipping", "event-py", on("orders")).await;
    s.deploy("audit", "event-py", on("refunds")).await;

    let out = s.cli(&["publish", "orders", "-d", "order-1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = stdout(&out);
    assert!(lines.contains("billing\t") && lines.contains("shipping\t") && !lines.contains("audit"), "{lines}");
    for f in ["billing", "shipping"] {
        let got = until_handled(&s, f, "order-1", |g| g.len() == 1).await;
        assert_eq!(got[0]["data"], "order-1");
        assert_eq!(got[0]["event"]["type"], "dev.wisp.topic.message");
        assert_eq!(got[0]["event"]["subject"], "orders");
    }
    // A subscriber added later sees what is published from then on.
    s.deploy("late", "event-py", on("orders")).await;
    let r = s.api(Method::POST, "/_wisp/v1/namespaces/default/topics/orders").body("order-2").send().await.unwrap();
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    let mut to: Vec<&str> =
        v["deliveries"].as_array().unwrap().iter().map(|d| d["function"].as_str().unwrap()).collect();
    to.sort();
    assert_eq!(to, ["billing", "late", "shipping"], "{v}");
    let got = until_handled(&s, "late", "order-2", |g| !g.is_empty()).await;
    assert_eq!(datas(&got), ["order-2"]);
    until_handled(&s, "billing", "both orders", |g| datas(g) == ["order-1", "order-2"]).await;

    // Nobody subscribed: accepted, nothing kept, and the CLI says so.
    let out = s.cli(&["publish", "nobody-listens", "-d", "x"]);
    assert!(out.status.success() && stderr(&out).contains("no function subscribes to topic `nobody-listens`"));
    // Bad topic names are refused with the rule.
    let r = s.api(Method::POST, "/_wisp/v1/namespaces/default/topics/a%20b").body("x").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("use 1-255 characters"));
    // A destination can be a topic: the record of each outcome goes to every subscriber.
    s.deploy("checkout", "event-py", json!({"events": {"on_success": "topic:outcomes"}})).await;
    s.deploy("watcher", "event-py", on("outcomes")).await;
    let r = s.api(Method::POST, &format!("{FNS}/checkout/invocations")).body("paid").send().await.unwrap();
    assert_eq!(r.status(), 202);
    let got = until_handled(&s, "watcher", "the success record", |g| !g.is_empty()).await;
    assert_eq!(got[0]["event"]["type"], "dev.wisp.invocation.success");
    let record: Value = serde_json::from_str(got[0]["data"].as_str().unwrap()).unwrap();
    assert_eq!((record["condition"].as_str(), record["function"].as_str()), (Some("Success"), Some("checkout")));
    assert_eq!(record["request"]["data"], "paid");
    let err = s
        .deploy_bytes(
            "bad-dest",
            std::fs::read(common::guest("event-py")).unwrap(),
            json!({"events": {"on_failure": "topic:a b"}}),
        )
        .await
        .unwrap_err();
    assert!(err.0 == 400 && err.1.contains("events.on_failure"), "{err:?}");

    // Unsubscribing (a redeploy without the trigger) stops the deliveries.
    s.deploy("late", "event-py", json!({"scaling": {}})).await;
    let r = s.api(Method::POST, "/_wisp/v1/namespaces/default/topics/orders").body("order-3").send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["deliveries"].as_array().unwrap().len(), 2, "{v}");
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    // HMAC-SHA256 by its definition (RFC 2104), so the test does not share the server's code.
    use sha2::{Digest, Sha256};
    let mut key = secret.as_bytes().to_vec();
    key.resize(64, 0);
    let ipad: Vec<u8> = key.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = key.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&ipad).chain_update(body).finalize();
    hex::encode(Sha256::new().chain_update(&opad).chain_update(inner).finalize())
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_take_every_cloudevents_mode_with_handshake_and_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy(
        "hook",
        "event-py",
        json!({"routes": ["/hook-fn"], "triggers": [
            {"type": "webhook", "route": "/hooks/open", "allowed_origins": ["sender.example.com"]},
            {"type": "webhook", "route": "/hooks/signed", "secret": "s3cret", "signature_header": "x-hub-signature-256"}
        ]}),
    )
    .await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", s.url);

    // Binary mode.
    let r = http
        .post(url("/hooks/open"))
        .header("ce-specversion", "1.0")
        .header("ce-id", "b-1")
        .header("ce-source", "/sender")
        .header("ce-type", "com.example.binary")
        .header("content-type", "text/plain")
        .body("binary")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // Structured mode.
    let structured = json!({"specversion": "1.0", "id": "s-1", "source": "/sender", "type": "com.example.structured", "data": "structured"});
    let r = http
        .post(url("/hooks/open"))
        .header("content-type", "application/cloudevents+json")
        .body(structured.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // Batch mode: one invocation per event.
    let batch = json!([
        {"specversion": "1.0", "id": "m-1", "source": "/sender", "type": "com.example.batch", "data": "batch-1"},
        {"specversion": "1.0", "id": "m-2", "source": "/sender", "type": "com.example.batch", "data": "batch-2"}
    ]);
    let r = http
        .post(url("/hooks/open"))
        .header("content-type", "application/cloudevents-batch+json")
        .body(batch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["invocations"].as_array().unwrap().len(), 2, "{v}");
    let got = until_handled(&s, "hook", "four events", |g| g.len() == 4).await;
    assert_eq!(datas(&got), ["batch-1", "batch-2", "binary", "structured"]);
    let types: std::collections::BTreeSet<&str> = got.iter().map(|v| v["event"]["type"].as_str().unwrap()).collect();
    assert!(types.contains("com.example.binary") && types.contains("com.example.structured"), "{types:?}");

    // The abuse-protection handshake.
    let r = http
        .request(Method::OPTIONS, url("/hooks/open"))
        .header("webhook-request-origin", "sender.example.com")
        .header("webhook-request-rate", "120")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["webhook-allowed-origin"], "sender.example.com");
    assert_eq!(r.headers()["webhook-allowed-rate"], "*");
    assert!(r.headers()["allow"].to_str().unwrap().contains("POST"));
    let r = http
        .request(Method::OPTIONS, url("/hooks/open"))
        .header("webhook-request-origin", "evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(http.get(url("/hooks/open")).send().await.unwrap().status(), 405);

    // Signed: a plain JSON body (as GitHub sends) with its delivery id, checked by HMAC-SHA256.
    let body = br#"{"action":"opened"}"#;
    let sig = format!("sha256={}", hmac_hex("s3cret", body));
    let send = |sig: Option<String>, body: &'static [u8]| {
        let mut r = http
            .post(url("/hooks/signed"))
            .header("content-type", "application/json")
            .header("x-github-delivery", "d-42")
            .body(body);
        if let Some(sig) = sig {
            r = r.header("x-hub-signature-256", sig);
        }
        r.send()
    };
    let r = send(None, body).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("missing x-hub-signature-256"));
    let r = send(Some(sig.clone()), br#"{"action":"closed"}"#).await.unwrap();
    assert_eq!(r.status(), 401, "a signature of another body");
    let r = send(Some(sig.clone()), body).await.unwrap();
    assert_eq!(r.status(), 202);
    let first: Value = r.json().await.unwrap();
    let again: Value = send(Some(sig), body).await.unwrap().json().await.unwrap();
    assert_eq!(
        (again["id"].clone(), again["duplicate"].clone()),
        (first["id"].clone(), json!(true)),
        "the delivery id dedupes"
    );
    let got = until_handled(&s, "hook", "the signed delivery", |g| g.len() == 5).await;
    let signed = got.iter().find(|v| v["event"]["id"] == "d-42").expect("delivery id is the event id");
    assert_eq!(signed["event"]["type"], "dev.wisp.webhook");
    assert_eq!(signed["event"]["source"], "/hooks/signed");
    assert_eq!(signed["data"], r#"{"action":"opened"}"#);
    let t = trigger(&s, "hook").await;
    assert_eq!(t["kind"], "webhook");
    // The function's status lists its triggers without the secret.
    let shown = stdout(&s.cli(&["status", "hook"]));
    assert!(shown.contains("webhook /hooks/signed (signed)") && !shown.contains("s3cret"), "{shown}");
    let raw = s.api(Method::GET, &format!("{FNS}/hook")).send().await.unwrap().text().await.unwrap();
    assert!(!raw.contains("s3cret"), "the API never shows a webhook secret: {raw}");

    // The function's own route still runs it synchronously; a webhook route another function has is refused.
    let (status, _) = s.get("/hook-fn").await;
    assert_eq!(status, 200);
    let err = s
        .deploy_bytes("other", std::fs::read(common::guest("event-py")).unwrap(), json!({"routes": ["/hooks/open"]}))
        .await
        .unwrap_err();
    assert_eq!(err.0, 409, "{err:?}");
    assert!(err.1.contains("/hooks/open"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_triggers_are_refused_with_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let bytes = std::fs::read(common::guest("event-py")).unwrap();
    let table = [
        (
            json!([{"type": "cron", "schedule": "61 * * * *"}]),
            "trigger 1 (cron): schedule \"61 * * * *\" does not parse",
        ),
        (json!([{"type": "cron", "schedule": "* * * * *", "timezone": "Mars/Olympus"}]), "not an IANA time zone"),
        (json!([{"type": "redis", "url": "redis://h"}]), "give exactly one of `channel`"),
        (json!([{"type": "kafka"}]), "unknown variant `kafka`"),
    ];
    for (triggers, want) in table {
        let err = s.deploy_bytes("bad", bytes.clone(), json!({"triggers": triggers})).await.unwrap_err();
        assert_eq!(err.0, 400, "{err:?}");
        assert!(err.1.contains(want), "{triggers}: got {err:?}, want {want:?}");
    }
    let (status, _) = s.get("/_wisp/v1/namespaces/default/functions/bad").await;
    assert_ne!(status, 200, "nothing was deployed");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_pubsub_and_streams_deliver_and_survive_a_broker_restart() {
    let port = free_port();
    let cmd: Vec<String> =
        ["redis-server", "--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let mut redis = Broker::start(port, &cmd);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let url = format!("redis://127.0.0.1:{port}");
    s.deploy("on-channel", "event-py", json!({"triggers": [{"type": "redis", "url": url, "channel": "news"}]})).await;
    s.deploy("on-stream", "event-py", json!({"triggers": [{"type": "redis", "url": url, "stream": "orders"}]})).await;
    connected(&s, "on-channel", 1).await;
    connected(&s, "on-stream", 1).await;
    let port_arg = port.to_string();
    let cli = |args: &[&str]| {
        let mut all = vec!["-p", port_arg.as_str()];
        all.extend_from_slice(args);
        run("redis-cli", &all)
    };
    assert_eq!(cli(&["PUBLISH", "news", "hello"]).trim(), "1", "wisp is subscribed");
    cli(&["XADD", "orders", "*", "sku", "A-1", "qty", "2"]);
    let got = until_handled(&s, "on-channel", "the pub/sub message", |g| g.len() == 1).await;
    assert_eq!(got[0]["data"], "hello");
    assert_eq!(got[0]["event"]["type"], "dev.wisp.redis.message");
    assert_eq!(got[0]["event"]["subject"], "news");
    let got = until_handled(&s, "on-stream", "the stream entry", |g| g.len() == 1).await;
    let fields: Value = serde_json::from_str(got[0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(fields, json!({"sku": "A-1", "qty": "2"}));
    assert_eq!(got[0]["event"]["type"], "dev.wisp.redis.stream.entry");
    // Acked after the enqueue: nothing pending in the group.
    let pending = cli(&["XPENDING", "orders", "wisp-default-on-stream"]);
    assert!(pending.starts_with("0"), "{pending}");

    redis.kill();
    redis.restart();
    connected(&s, "on-channel", 2).await;
    connected(&s, "on-stream", 2).await;
    for i in 0..5 {
        cli(&["PUBLISH", "news", &format!("after-{i}")]);
        cli(&["XADD", "orders", "*", "n", &i.to_string()]);
    }
    let got = until_handled(&s, "on-channel", "five messages after the restart", |g| g.len() == 6).await;
    assert_eq!(datas(&got)[..5], ["after-0", "after-1", "after-2", "after-3", "after-4"]);
    until_handled(&s, "on-stream", "five entries after the restart", |g| g.len() == 6).await;
    let t = trigger(&s, "on-stream").await;
    assert_eq!(t["messages_in"], 6, "{t}");
    let out = s.cli(&["status"]);
    assert!(stdout(&out).contains("redis redis://127.0.0.1") && stdout(&out).contains("connected"), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn mqtt_qos1_delivers_and_survives_a_broker_restart() {
    let port = free_port();
    let cmd: Vec<String> = ["mosquitto", "-p", &port.to_string()].iter().map(|s| s.to_string()).collect();
    let mut broker = Broker::start(port, &cmd);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let url = format!("mqtt://127.0.0.1:{port}");
    s.deploy("sensor", "event-py", json!({"triggers": [{"type": "mqtt", "url": url, "topic": "sensors/+/temp"}]}))
        .await;
    connected(&s, "sensor", 1).await;
    let publish = |topic: &str, msg: &str| {
        run("mosquitto_pub", &["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", topic, "-m", msg]);
    };
    publish("sensors/kitchen/temp", "21.5");
    let got = until_handled(&s, "sensor", "the message", |g| g.len() == 1).await;
    assert_eq!(got[0]["data"], "21.5");
    assert_eq!(got[0]["event"]["type"], "dev.wisp.mqtt.message");
    assert_eq!(got[0]["event"]["subject"], "sensors/kitchen/temp");

    broker.kill();
    broker.restart();
    connected(&s, "sensor", 2).await;
    for i in 0..5 {
        publish("sensors/hall/temp", &format!("after-{i}"));
    }
    let got = until_handled(&s, "sensor", "five messages after the restart", |g| g.len() == 6).await;
    assert_eq!(datas(&got)[1..], ["after-0", "after-1", "after-2", "after-3", "after-4"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn nats_core_and_jetstream_deliver_and_survive_a_server_restart() {
    let port = free_port();
    let store = tempfile::tempdir().unwrap();
    let cmd: Vec<String> =
        ["nats-server", "-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd", store.path().to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let mut server = Broker::start(port, &cmd);
    let url = format!("nats://127.0.0.1:{port}");
    let client = async_nats::connect(&url).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: "ORDERS".into(),
        subjects: vec!["orders.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy("greeter", "event-py", json!({"triggers": [{"type": "nats", "url": url, "subject": "greet.*"}]})).await;
    s.deploy("orders", "event-py", json!({"triggers": [{"type": "nats", "url": url, "stream": "ORDERS"}]})).await;
    connected(&s, "greeter", 1).await;
    connected(&s, "orders", 1).await;
    client.publish("greet.alice", "hi".into()).await.unwrap();
    client.flush().await.unwrap();
    js.publish("orders.new", "order-1".into()).await.unwrap().await.unwrap();
    let got = until_handled(&s, "greeter", "the core message", |g| g.len() == 1).await;
    assert_eq!((got[0]["data"].as_str(), got[0]["event"]["subject"].as_str()), (Some("hi"), Some("greet.alice")));
    let got = until_handled(&s, "orders", "the JetStream message", |g| g.len() == 1).await;
    assert_eq!(got[0]["data"], "order-1");
    assert_eq!(got[0]["event"]["type"], "dev.wisp.jetstream.message");
    drop(client);

    server.kill();
    server.restart();
    connected(&s, "greeter", 2).await;
    connected(&s, "orders", 2).await;
    let client = async_nats::connect(&url).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    for i in 0..5 {
        client.publish("greet.bob", format!("after-{i}").into()).await.unwrap();
        js.publish("orders.new", format!("order-after-{i}").into()).await.unwrap().await.unwrap();
    }
    client.flush().await.unwrap();
    let got = until_handled(&s, "greeter", "five messages after the restart", |g| g.len() == 6).await;
    assert_eq!(datas(&got)[..5], ["after-0", "after-1", "after-2", "after-3", "after-4"]);
    let got = until_handled(&s, "orders", "five JetStream messages after the restart", |g| g.len() == 6).await;
    assert_eq!(datas(&got)[1..], ["order-after-0", "order-after-1", "order-after-2", "order-after-3", "order-after-4"]);
}
