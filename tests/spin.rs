//! End-to-end: a Spin app built with the Spin SDK for Python 3.4.1 (componentize-py 0.17.2), deployed from its
//! own `spin.toml` unchanged: key-value (`fermyon:spin/key-value`), variables (`fermyon:spin/variables`, a
//! required one given with `--var`), SQLite (`spin:sqlite@3.0.0` and `fermyon:spin/sqlite@2.0.0`, with the
//! app's `migrations/` applied at deploy), outbound HTTP and Spin's `spin-*` request headers; an interface
//! wisp does not serve (`fermyon:spin/llm`) is linked to trap with a message naming it, not a failed deploy.

mod common;

use common::{Server, pong_server, stderr, stdout};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn a_spin_sdk_app_deploys_from_its_spin_toml_and_answers_as_under_spin() {
    let (port, _) = pong_server().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests/spin-py");
    std::fs::copy(src.join("spin.toml"), app.join("spin.toml")).unwrap();
    std::fs::copy(common::guest("spin-py"), app.join("app.wasm")).unwrap();
    std::fs::create_dir(app.join("migrations")).unwrap();
    std::fs::copy(src.join("migrations/001_notes.sql"), app.join("migrations/001_notes.sql")).unwrap();
    let app_dir = app.to_str().unwrap();

    // The app's required variable: named when missing, nothing deployed.
    let out = s.cli(&["deploy", app_dir]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("variable `upstream` is required"), "{}", stderr(&out));
    assert_eq!(s.get("/spin/var").await.0, 404);

    let upstream = format!("upstream=http://127.0.0.1:{port}/ping");
    let out = s.cli(&["deploy", app_dir, "--var", &upstream]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("database `default`: applied 001_notes.sql"), "{}", stderr(&out));
    let f = s.function("spin-py").await;
    assert_eq!(f["app"], "spin-py");

    // Variables: the component's template, resolved from the app's default.
    assert_eq!(s.get("/spin/var").await, (200, "hello from spin variables".to_string()));

    // Key-value through the SDK's key_value module, in the app's default store.
    let http = reqwest::Client::new();
    let posted = http.post(format!("{}/spin/kv", s.url)).body("first note").send().await.unwrap();
    assert_eq!(posted.status(), 200);
    let kv: Value = serde_json::from_str(&posted.text().await.unwrap()).unwrap();
    assert_eq!(kv, serde_json::json!({"hits": 1, "note": "first note", "keys": ["hits", "note"]}));
    let (status, body) = s.get("/spin/kv").await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["hits"], 2);
    // The same store the CLI shows for the app.
    let out = s.cli(&["kv", "get", "--app", "spin-py", "hits"]);
    assert_eq!(stdout(&out).trim(), "2", "{}", stderr(&out));

    // wasi:keyvalue@0.2.0-draft2 (what Spin SDKs import) on the same store: 32 concurrent atomic increments
    // hand out every value once; 32 concurrent compare-and-swap read-modify-writes (each retrying on
    // conflict) lose no update either.
    for path in ["/spin/incr", "/spin/casincr"] {
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (http, url) = (http.clone(), format!("{}{path}", s.url));
            tasks.push(tokio::spawn(async move { http.get(url).send().await.unwrap().text().await.unwrap() }));
        }
        let mut got = Vec::new();
        for t in tasks {
            let body = t.await.unwrap();
            got.push(body.parse::<u64>().unwrap_or_else(|_| panic!("{path}: {body}")));
        }
        got.sort();
        assert_eq!(got, (1..=32).collect::<Vec<u64>>(), "{path}: no lost update");
    }
    // A write between cas.new and swap: the swap answers cas-failed with a fresh handle at the winner's value.
    let (status, body) = s.get("/spin/casconflict").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        serde_json::json!({"seen": "start", "first": "CasError_CasFailed", "fresh": "other writer", "final": "mine"})
    );

    // Spin's request headers.
    let (status, body) = s.get("/spin/headers?x=1").await;
    assert_eq!(status, 200, "{body}");
    let h: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["spin-path-info"], "/headers");
    assert_eq!(h["spin-matched-route"], "/spin/...");
    assert_eq!(h["spin-raw-component-route"], "/spin/...");
    assert_eq!(h["spin-component-route"], "/spin");
    assert_eq!(h["spin-base-path"], "/");
    assert!(h["spin-full-url"].as_str().unwrap().ends_with("/spin/headers?x=1"), "{h}");
    assert!(h["spin-client-addr"].as_str().unwrap().starts_with("127.0.0.1:"), "{h}");

    // Outbound HTTP through the SDK's send(), to the address the grant allows.
    assert_eq!(s.get("/spin/fetch").await, (200, "pong".to_string()));

    // SQLite through spin:sqlite@3.0.0, on the table the migration made; values are bound parameters, so
    // SQL in a value is data.
    let sql = |body: &'static str| http.post(format!("{}/spin/sql", s.url)).body(body).send();
    let first: Value = serde_json::from_str(&sql("first").await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(first, serde_json::json!({"rowid": 1, "changes": 1, "columns": ["id", "body"], "rows": [[1, "first"]]}));
    let sneaky = "x'); DROP TABLE notes; --";
    let second: Value = serde_json::from_str(&sql(sneaky).await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(second["rowid"], 2);
    let (status, body) = s.get("/spin/sql?after=1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["rows"], serde_json::json!([[2, sneaky]]));
    // fermyon:spin/sqlite@2.0.0 reads the same database, and so does `wisp sql`.
    let (_, body) = s.get("/spin/sql2").await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["rows"].as_array().unwrap().len(), 2, "{body}");
    let out = s.cli(&["sql", "spin-py", "SELECT id, body FROM notes WHERE id = ?", "--param", "1"]);
    assert_eq!(stdout(&out), "id  body\n1   first\n", "{}", stderr(&out));
    // Only the granted label opens; another is access-denied, as under Spin.
    assert_eq!(s.get("/spin/sqlopen?db=default").await, (200, "opened".to_string()));
    assert_eq!(s.get("/spin/sqlopen?db=other").await, (403, "Error_AccessDenied".to_string()));

    // fermyon:spin/llm is imported (componentize-py imports the whole Spin world) but not served: deploying
    // worked, and a call traps with a message naming the interface, in the invocation's record.
    let (status, _) = s.get("/spin/llm").await;
    assert_eq!(status, 500);
    let logs = s.logs("spin-py").await;
    let last = logs.last().unwrap().to_string();
    assert!(last.contains("of `fermyon:spin/llm@2.0.0`, which this wisp node does not serve yet"), "{last}");
    // The instance that trapped is gone; the next request is served.
    assert_eq!(s.get("/spin/var").await.0, 200);

    // A failed migration fails the deploy before any function changes, and changes nothing in the database:
    // the revision that served before still serves.
    std::fs::write(app.join("migrations/002_tags.sql"), "CREATE TABLE tags (x);\nINSERT INTO nowhere VALUES (1);\n")
        .unwrap();
    let out = s.cli(&["deploy", app_dir, "--var", &upstream, "--var", "greeting=changed"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("migration 002_tags.sql failed") && err.contains("nowhere"), "{err}");
    assert!(err.contains("nothing was deployed"), "{err}");
    assert_eq!(s.get("/spin/var").await, (200, "hello from spin variables".to_string()));
    let out = s.cli(&["sql", "spin-py", "SELECT name FROM sqlite_schema WHERE name = 'tags'", "--json"]);
    assert_eq!(serde_json::from_str::<Value>(&stdout(&out)).unwrap()["rows"], serde_json::json!([]));
    assert_eq!(stdout(&s.cli(&["sql", "spin-py", "--migrations"])), "001_notes.sql\n");
    // Fixed, it applies (only the new file) and the new revision serves.
    std::fs::write(app.join("migrations/002_tags.sql"), "CREATE TABLE tags (x);\n").unwrap();
    let out = s.cli(&["deploy", app_dir, "--var", &upstream, "--var", "greeting=changed"]);
    assert!(stderr(&out).contains("database `default`: applied 002_tags.sql"), "{}", stderr(&out));
    assert_eq!(s.get("/spin/var").await, (200, "changed".to_string()));
    assert_eq!(stdout(&s.cli(&["sql", "spin-py", "--migrations"])), "001_notes.sql\n002_tags.sql\n");

    // Another app deployed from the same code has databases of its own: it sees none of spin-py's rows.
    let other = dir.path().join("other");
    std::fs::create_dir_all(other.join("migrations")).unwrap();
    let manifest = std::fs::read_to_string(app.join("spin.toml")).unwrap();
    let manifest = manifest.replace("name = \"spin-py\"", "name = \"other-app\"").replace("/spin/...", "/other/...");
    std::fs::write(other.join("spin.toml"), manifest).unwrap();
    std::fs::copy(app.join("app.wasm"), other.join("app.wasm")).unwrap();
    std::fs::copy(app.join("migrations/001_notes.sql"), other.join("migrations/001_notes.sql")).unwrap();
    let out = s.cli(&["deploy", other.to_str().unwrap(), "--var", &upstream]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, body) = s.get("/other/sql").await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["rows"], serde_json::json!([]), "{body}");
    let out = s.cli(&["sql", "other-app", "SELECT count(*) AS n FROM notes"]);
    assert_eq!(stdout(&out), "n\n0\n", "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn spin_manifest_keys_wisp_cannot_honour_are_errors_that_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let manifest = dir.path().join("spin.toml");
    let write = |extra: &str| {
        std::fs::write(
            &manifest,
            format!(
                "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/x/...\"\ncomponent = \"x\"\n[component.x]\nsource = \"x.wasm\"\n{extra}"
            ),
        )
        .unwrap()
    };
    // `files` are mounted (tests/files.rs), but only from the app directory: a URL is an error.
    write("files = [{ source = \"https://example.com/site.tar\", destination = \"/site\" }]\n");
    let out = s.cli(&["deploy", manifest.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("[component.x]: files entry { source = \"https://example.com/site.tar\", destination = \"/site\" }: \"https://example.com/site.tar\" is a URL; wisp mounts files of the app directory only"),
        "{}",
        stderr(&out)
    );
    write("sqlite_databases = [\"Main DB\"]\n");
    let out = s.cli(&["deploy", manifest.to_str().unwrap()]);
    assert!(stderr(&out).contains("sqlite_databases entry \"Main DB\" is not a label"), "{}", stderr(&out));
    std::fs::write(&manifest, "spin_manifest_version = 1\nname = \"x\"\n[application]\nname = \"x\"\n").unwrap();
    let out = s.cli(&["deploy", manifest.to_str().unwrap()]);
    assert!(stderr(&out).contains("wisp reads version 2 manifests"), "{}", stderr(&out));
    assert_eq!(s.functions().await.as_array().unwrap().len(), 0, "nothing deployed");
}
