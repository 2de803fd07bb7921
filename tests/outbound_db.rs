//! End-to-end: outbound databases and brokers through Spin's interfaces, from the Spin SDK for Python 3.4.1 app
//! (`tests/guests/spin-py`), against the machine's real servers: PostgreSQL (`fermyon:spin/postgres@2.0.0`,
//! `spin:postgres@3.0.0`, `@4.0.0`), MariaDB (`fermyon:spin/mysql@2.0.0`), Redis (`fermyon:spin/redis@2.0.0`)
//! and Mosquitto (`fermyon:spin/mqtt@2.0.0`). Addresses outside the grant are refused (and noted in the
//! record); connections are pooled across invocations and reset between them.

mod common;

use common::{Server, pong_server, stderr};
use serde_json::{Value, json};
use std::time::Duration;

/// A suffix no other run of this test uses (tables, keys, topics, application names).
fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{}_{}", std::process::id(), nanos % 1_000_000_000)
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Deploys the Spin SDK app from its spin.toml.
async fn deploy_app(dir: &std::path::Path, s: &Server) {
    let (port, _) = pong_server().await;
    let app = dir.join("app");
    std::fs::create_dir_all(app.join("migrations")).unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests/spin-py");
    std::fs::copy(src.join("spin.toml"), app.join("spin.toml")).unwrap();
    std::fs::copy(common::guest("spin-py"), app.join("app.wasm")).unwrap();
    std::fs::copy(src.join("migrations/001_notes.sql"), app.join("migrations/001_notes.sql")).unwrap();
    let upstream = format!("upstream=http://127.0.0.1:{port}/ping");
    let out = s.cli(&["deploy", app.to_str().unwrap(), "--var", &upstream]);
    assert!(out.status.success(), "{}", stderr(&out));
}

async fn get_json(s: &Server, path: &str) -> (u16, Value) {
    let (status, body) = s.get(path).await;
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, v)
}

async fn ok_json(s: &Server, path: &str) -> Value {
    let (status, v) = get_json(s, path).await;
    assert_eq!(status, 200, "{path}: {v}");
    v
}

/// The last invocation record of the app's function, as text.
async fn last_record(s: &Server) -> String {
    s.logs("spin-py").await.last().unwrap().to_string()
}

async fn postgres() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect("host=127.0.0.1 user=postgres dbname=test", tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (user postgres, database test)");
    tokio::spawn(conn);
    client
}

/// Drops this run's tables from the shared `test` databases.
async fn drop_tables(pg: &tokio_postgres::Client, pg_tables: &[String], mysql_tables: &[String]) {
    for t in pg_tables {
        pg.batch_execute(&format!("DROP TABLE IF EXISTS {t}")).await.unwrap();
    }
    for t in mysql_tables {
        let out = std::process::Command::new("mysql")
            .args(["-h", "127.0.0.1", "-u", "root", "test", "-e", &format!("DROP TABLE IF EXISTS {t}")])
            .output()
            .expect("the mysql client");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Connections to PostgreSQL with this application name, now.
async fn backends(pg: &tokio_postgres::Client, app_name: &str) -> Vec<i32> {
    let rows = pg
        .query("SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid", &[&app_name])
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spin_sdk_app_uses_postgres_mysql_redis_and_mqtt() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    deploy_app(dir.path(), &s).await;
    let id = unique();

    // PostgreSQL through spin_sdk.postgres (fermyon:spin/postgres@2.0.0): a parameterised insert and select of
    // several types; SQL in a value is data.
    let v = ok_json(&s, &format!("/spin/pg?table=wisp_pg_{id}")).await;
    assert_eq!(
        v,
        json!({
            "changed": 1,
            "columns": [["name", "STR"], ["n", "INT64"], ["small", "INT16"], ["score", "FLOATING64"], ["ok", "BOOLEAN"],
                        ["data", "BINARY"], ["note", "STR"]],
            "rows": [[["Str", "o'hara; DROP TABLE x"], ["Int64", 1_099_511_627_776i64], ["Int16", -7], ["Floating64", 2.5],
                      ["Boolean", true], ["Binary", {"hex": "00ff77697370"}], ["DbNull", null]]],
        })
    );
    // spin:postgres@3.0.0: dates and times (a timestamp parameter is Unix seconds; values come back as UTC).
    let v = ok_json(&s, &format!("/spin/pg3?table=wisp_pg3_{id}")).await;
    assert_eq!(v["columns"], json!([["d", "DATE"], ["t", "TIME"], ["ts", "DATETIME"], ["tz", "DATETIME"]]));
    assert_eq!(
        v["rows"],
        json!([[
            ["Date", [2024, 2, 29]],
            ["Time", [23, 59, 58, 123_456_000]],
            ["Datetime", [1999, 12, 31, 23, 59, 59, 0]],
            ["Datetime", [1970, 1, 2, 0, 0, 0, 0]]
        ]])
    );
    // spin:postgres@4.0.0: the types v4 adds; a type without a mapping is `unsupported` with its raw bytes; a
    // failed query is the server's structured error.
    let v = ok_json(&s, &format!("/spin/pg4?table=wisp_pg4_{id}")).await;
    assert_eq!(
        v["columns"],
        json!([
            ["u", ["Uuid", null]],
            ["j", ["Jsonb", null]],
            ["dec", ["Decimal", null]],
            ["r", ["RangeInt32", null]],
            ["tags", ["ArrayStr", null]],
            ["ns", ["ArrayInt64", null]],
            ["iv", ["Interval", null]],
            ["at", ["Datetime", null]],
            ["addr", ["Other", "inet"]]
        ])
    );
    assert_eq!(
        v["rows"],
        json!([[["Uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"], ["Jsonb", {"hex": hex::encode(br#"{"a": [1, 2]}"#)}],
                ["Decimal", "12345678901234567890.1234"], ["RangeInt32", [[1, "INCLUSIVE"], [10, "EXCLUSIVE"]]],
                ["ArrayStr", ["a", null, "q\"uote"]], ["ArrayInt64", [1_099_511_627_776i64, null]],
                ["Interval", {"micros": 1_500_000, "days": 2, "months": 14}],
                ["Datetime", [2024, 1, 2, 3, 4, 5, 600_000_000]], ["Unsupported", {"hex": "022000040a000001"}]]])
    );
    assert_eq!(v["missing"]["error"], "Error_QueryFailed", "{v}");
    let db_error = &v["missing"]["value"]["value"];
    assert_eq!(db_error["code"], "42P01", "{v}");
    assert_eq!(db_error["message"], "relation \"wisp_no_such_table\" does not exist", "{v}");

    // MariaDB through spin_sdk.mysql: integers by width and signedness, binary by character set; DECIMAL and
    // DATETIME as text; a failed query says what the server said.
    let v = ok_json(&s, &format!("/spin/mysql?table=wisp_my_{id}")).await;
    assert_eq!(
        v["columns"],
        json!([
            ["id", "INT32"],
            ["name", "STR"],
            ["big", "UINT64"],
            ["score", "FLOATING64"],
            ["tiny", "INT8"],
            ["data", "BINARY"],
            ["price", "OTHER"],
            ["at", "OTHER"],
            ["note", "STR"]
        ])
    );
    assert_eq!(
        v["rows"],
        json!([[["Int32", 1], ["Str", "zoë's"], ["Uint64", 9_223_372_036_854_775_809u64], ["Floating64", -1.25], ["Int8", -3],
                ["Binary", {"hex": "0001"}], ["Str", "12.50"], ["Str", "2024-02-29 12:34:56"], ["DbNull", null]]])
    );
    assert_eq!(v["missing"]["error"], "Error_QueryFailed", "{v}");
    let said = v["missing"]["value"].as_str().unwrap();
    assert!(said.starts_with("ERROR 1146 (42S02):") && said.contains("wisp_no_such_table"), "{said}");

    // Redis through spin_sdk.redis; PUBLISH reaches a subscriber started here.
    let redis = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut sub = redis.get_async_pubsub().await.expect("Redis on 127.0.0.1:6379");
    let channel = format!("wisp-chan-{id}");
    sub.subscribe(&channel).await.unwrap();
    let v = ok_json(&s, &format!("/spin/redis?key=wisp:{id}&channel={channel}&message=hi%20there")).await;
    assert_eq!(
        v,
        json!({
            "got": {"hex": hex::encode(b"value \x00 bytes")}, "missing": null, "n": [1, 2, 3], "added": 2, "removed": 1,
            "members": ["a"], "wrong": {"error": "Error_TypeError", "value": null}, "appended": [["Int64", 3]],
            "listed": [["Binary", {"hex": "616263"}], ["Nil", null]], "deleted": 4,
        })
    );
    let msg = {
        use futures::StreamExt as _;
        let mut messages = sub.on_message();
        tokio::time::timeout(Duration::from_secs(30), messages.next()).await.expect("published").unwrap()
    };
    assert_eq!((msg.get_channel_name(), msg.get_payload_bytes()), (channel.as_str(), &b"hi there"[..]));
    // Every command is counted on the invocation's meter: 14 calls; bytes are values and payloads both ways
    // (integers 8), not key names — except `execute`'s arguments, which may be anything.
    let (log, missing) = (format!("wisp:{id}:log").len(), format!("wisp:{id}:missing").len());
    let bytes = 13 + 13 + 3 * 8 + (3 + 8) + (2 + 8) + 1 + (log + 3 + 8) + (log + missing + 3) + 8 + 8;
    let record: Value = s.logs("spin-py").await.last().unwrap().clone();
    assert_eq!(record["services"], json!({"databases": {"ops": 14, "bytes": bytes}}), "{record}");

    // MQTT through spin_sdk.mqtt, at each QoS; a subscriber started here receives every message.
    let topic = format!("wisp/test/{id}");
    let mut received = mqtt_subscriber(&topic, &id).await;
    for qos in 0..3 {
        let v = ok_json(&s, &format!("/spin/mqtt?topic={}&qos={qos}&message=m{qos}", enc(&topic))).await;
        assert_eq!(v, json!({"published": topic}));
        let got = tokio::time::timeout(Duration::from_secs(30), received.recv()).await.expect("delivered").unwrap();
        assert_eq!(got, format!("m{qos}").into_bytes());
    }
    let tables = ["pg", "pg3", "pg4"].map(|k| format!("wisp_{k}_{id}"));
    drop_tables(&postgres().await, &tables, &[format!("wisp_my_{id}")]).await;
}

/// Subscribes to `topic` on Mosquitto (127.0.0.1:1883) and returns once the broker confirmed; payloads arrive
/// on the receiver.
async fn mqtt_subscriber(topic: &str, id: &str) -> tokio::sync::mpsc::UnboundedReceiver<Vec<u8>> {
    use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
    let (client, mut events) = AsyncClient::new(MqttOptions::new(format!("wisp-test-sub-{id}"), "127.0.0.1", 1883), 16);
    client.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _client = client;
        let mut subscribed_tx = Some(subscribed_tx);
        loop {
            match events.poll().await.expect("Mosquitto on 127.0.0.1:1883") {
                Event::Incoming(Incoming::SubAck(_)) => {
                    if let Some(t) = subscribed_tx.take() {
                        let _ = t.send(());
                    }
                }
                Event::Incoming(Incoming::Publish(p)) => {
                    let _ = tx.send(p.payload.to_vec());
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), subscribed).await.expect("subscribed").unwrap();
    rx
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_are_pooled_across_invocations_and_reset_between_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    deploy_app(dir.path(), &s).await;
    let id = unique();
    let pg = postgres().await;
    let pid_of = |v: &Value| v["rows"][0][0][1].as_i64().unwrap();

    // Two invocations, one after the other: the same server process serves both.
    let app_name = format!("wisp-pool-{id}");
    let url = enc(&format!("postgres://postgres@127.0.0.1:5432/test?application_name={app_name}"));
    let first = pid_of(&ok_json(&s, &format!("/spin/pgpid?url={url}")).await);
    let second = pid_of(&ok_json(&s, &format!("/spin/pgpid?url={url}")).await);
    assert_eq!(first, second, "the second invocation reused the pooled connection");
    let record: Value = s.logs("spin-py").await.last().unwrap().clone();
    assert_eq!(record["services"], json!({"databases": {"ops": 1, "bytes": 8}}), "{record}");
    assert_eq!(backends(&pg, &app_name).await, vec![first as i32]);
    // Twenty more, sequential: still that one connection.
    for _ in 0..20 {
        assert_eq!(pid_of(&ok_json(&s, &format!("/spin/pgpid?url={url}")).await), first);
    }
    assert_eq!(backends(&pg, &app_name).await, vec![first as i32]);
    // Eight at once need up to eight; after them, sequential requests open no more.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (http, u) = (s.http.clone(), format!("{}/spin/pgpid?url={url}", s.url));
        tasks.push(tokio::spawn(async move { http.get(u).send().await.unwrap().status().as_u16() }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let open = backends(&pg, &app_name).await;
    assert!((1..=8).contains(&open.len()), "{open:?}");
    for _ in 0..10 {
        ok_json(&s, &format!("/spin/pgpid?url={url}")).await;
    }
    assert_eq!(backends(&pg, &app_name).await, open, "no connection was opened for sequential requests");
    // The node's status shows its pooled connections: at least these, idle between requests.
    let status = s.status().await;
    let n = |k: &str| status["outbound_connections"][k].as_u64().unwrap();
    assert!(n("open") >= open.len() as u64 && n("idle") >= open.len() as u64, "{status}");
    let out = s.cli(&["status"]);
    assert!(common::stdout(&out).contains("outbound connections (databases, brokers): "), "{}", common::stdout(&out));

    // What one invocation leaves on its connection — a session setting, a temporary table, an open
    // transaction with an insert — the next one on the same connection does not see.
    let app_name = format!("wisp-reset-{id}");
    let url = enc(&format!("postgres://postgres@127.0.0.1:5432/test?application_name={app_name}"));
    let table = format!("wisp_reset_{id}");
    let left = ok_json(&s, &format!("/spin/pgsession?step=leave&table={table}&url={url}")).await;
    let pid = pid_of(&left);
    assert_eq!(left["rows"][0], json!([["Int32", pid], ["Str", "leaked"], ["Boolean", true], ["Int64", 1]]));
    let next = ok_json(&s, &format!("/spin/pgsession?table={table}&url={url}")).await;
    assert_eq!(next["rows"][0], json!([["Int32", pid], ["Str", ""], ["Boolean", false], ["Int64", 0]]));
    assert_eq!(backends(&pg, &app_name).await, vec![pid as i32]);

    // MySQL the same way: a user variable, a temporary table, an open transaction.
    let table = format!("wisp_reset_{id}");
    let left = ok_json(&s, &format!("/spin/mysqlsession?step=leave&table={table}")).await;
    let conn = left["rows"][0][0].clone();
    assert_eq!(left["rows"][0], json!([conn, ["Str", "leaked"], ["Int64", 1]]), "{left}");
    assert_eq!(left["temp"], true);
    let next = ok_json(&s, &format!("/spin/mysqlsession?table={table}")).await;
    assert_eq!(next["rows"][0], json!([conn, ["Str", ""], ["Int64", 0]]), "the same connection, reset: {next}");
    assert_eq!(next["temp"], false);

    // Redis: a database selected by one invocation is not the next one's.
    let key = format!("wisp:reset:{id}");
    let left = ok_json(&s, &format!("/spin/redissession?step=leave&key={key}")).await;
    assert_eq!(left["value"], json!({"hex": hex::encode("in database 3")}), "{left}");
    let next = ok_json(&s, &format!("/spin/redissession?key={key}")).await;
    assert_eq!(next, json!({"client": left["client"], "value": null}), "the same connection, back on database 0");
    drop_tables(&pg, std::slice::from_ref(&table), std::slice::from_ref(&table)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn addresses_outside_the_grant_are_refused_with_the_interfaces_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    deploy_app(dir.path(), &s).await;

    let open = |kind: &str, url: &str| format!("/spin/dbopen?kind={kind}&url={}", enc(url));
    // A host the grant does not name (it names 127.0.0.1): connection-failed, saying what to add; the
    // denial is in the invocation's record.
    let (status, v) = get_json(&s, &open("pg", "postgres://postgres:secret@localhost:5432/test")).await;
    assert_eq!((status, v["error"].as_str()), (500, Some("Error_ConnectionFailed")), "{v}");
    let said = v["value"].as_str().unwrap();
    assert!(said.contains("not in the function's allowed_outbound_hosts"), "{said}");
    assert!(said.contains("add \"postgres://localhost:5432\""), "{said}");
    assert!(!said.contains("secret"), "the password is not repeated: {said}");
    let record = last_record(&s).await;
    assert!(
        record.contains("denied outbound postgres connection to postgres://postgres:***@localhost:5432/test"),
        "{record}"
    );
    // A port the grant does not allow.
    let (_, v) = get_json(&s, &open("mysql", "mysql://root@127.0.0.1:3307/test")).await;
    assert_eq!(v["error"], "Error_ConnectionFailed", "{v}");
    assert!(v["value"].as_str().unwrap().contains("add \"mysql://127.0.0.1:3307\""), "{v}");
    // Redis and MQTT, as under Spin: `invalid-address` (no message in the interface: the record has it) and
    // `connection-failed`.
    let (_, v) = get_json(&s, &open("redis", "redis://127.0.0.1:6380")).await;
    assert_eq!(v, json!({"error": "Error_InvalidAddress", "value": null}));
    let record = last_record(&s).await;
    assert!(record.contains("denied outbound redis connection to redis://127.0.0.1:6380"), "{record}");
    let (_, v) = get_json(&s, &open("mqtt", "mqtt://10.1.2.3:1883?client_id=x")).await;
    assert_eq!(v["error"], "Error_ConnectionFailed", "{v}");
    assert!(v["value"].as_str().unwrap().contains("add \"mqtt://10.1.2.3:1883\""), "{v}");
    // Allowed, but nothing listens there: the connection was refused, and the error says so.
    let (_, v) = get_json(&s, &open("pg4", "postgres://postgres@127.0.0.1:1/test")).await;
    assert_eq!(v["error"], "Error_ConnectionFailed", "{v}");
    assert!(v["value"].as_str().unwrap().contains("connection to 127.0.0.1:1 refused"), "{v}");
    // An address that does not parse; TLS, which this node does not do.
    let (_, v) = get_json(&s, &open("mqtt", "mqtt://127.0.0.1:1883")).await;
    assert_eq!(v, json!({"error": "Error_InvalidAddress", "value": null}));
    assert!(last_record(&s).await.contains("has no client_id"));
    let (_, v) = get_json(&s, &open("redis", "rediss://127.0.0.1:6379")).await;
    assert_eq!(v, json!({"error": "Error_InvalidAddress", "value": null}));
    assert!(last_record(&s).await.contains("rediss:// (Redis over TLS) is not supported"));
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_schemes_this_node_cannot_serve_and_bad_pool_settings_are_refused_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let bytes = std::fs::read(common::guest("hello-c")).unwrap();
    let (status, msg) = s
        .deploy_bytes("tls", bytes, json!({"routes": ["/tls"], "allowed_outbound_hosts": ["rediss://cache.internal"]}))
        .await
        .unwrap_err();
    assert_eq!(status, 400);
    assert!(
        msg.contains("`rediss://cache.internal`: rediss:// (Redis over TLS) is not supported yet: use redis://"),
        "{msg}"
    );

    let cfg = dir.path().join("node.toml");
    for (text, says) in [
        (
            "[outbound_db]\nmax_connections_per_app = 0\n",
            "outbound_db.max_connections_per_app = 0 is out of range: allowed 1..=100000",
        ),
        ("[outbound_db]\nmax_idle = 5\n", "unknown field `max_idle`"),
    ] {
        std::fs::write(&cfg, text).unwrap();
        let out = std::process::Command::new(common::wisp_bin())
            .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("other"))
            .arg("--config")
            .arg(&cfg)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("node.toml") && err.contains(says), "{err}");
    }
}
