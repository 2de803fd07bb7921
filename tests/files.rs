//! End-to-end: a function's `files` (Spin's key, in a spin.toml and in a wisp.toml), deployed with the real
//! binary: the guest (tests/guests/files-c) reads what its manifest mounts, read-only, and nothing else — a
//! write, a create, `..` and absolute paths are refused (noted in its record); a function without files keeps
//! the empty root; the files are revision content; the tree survives restarts and is rebuilt from the
//! artifacts when the node lost it; what the manifest may name is checked before anything is uploaded.

mod common;

use common::{Server, stderr, stdout};
use serde_json::{Value, json};
use std::path::Path;

async fn last(s: &Server, name: &str) -> Value {
    s.logs(name).await.last().cloned().unwrap_or_else(|| panic!("{name} has no invocation record"))
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// An app directory with the files-c guest, some files and `manifest` (spin.toml or wisp.toml).
fn app(dir: &Path, manifest_name: &str, manifest: &str) -> std::path::PathBuf {
    let app = dir.join("app");
    write(&app.join("static/index.html"), "hello from a mounted file\n");
    write(&app.join("static/old.bak"), "excluded\n");
    write(&app.join("static/sub/deep.txt"), "deep\n");
    write(&app.join("assets/a.txt"), "asset a\n");
    write(&app.join("conf/prod.json"), "{\"env\": \"prod\"}\n");
    write(&app.join("secret.txt"), "not mounted\n");
    write(&dir.join("outside.txt"), "outside the app\n");
    std::fs::copy(common::guest("files-c"), app.join("files.wasm")).unwrap();
    write(&app.join(manifest_name), manifest);
    app
}

const SPIN_TOML: &str = r#"spin_manifest_version = 2
[application]
name = "site"
[[trigger.http]]
route = "/f/..."
component = "files"
[component.files]
source = "files.wasm"
files = ["static/**/*", { source = "assets", destination = "/assets" }, { source = "conf/prod.json", destination = "/etc/app.json" }]
exclude_files = ["static/*.bak"]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_spin_app_reads_its_files_read_only_and_reaches_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start(&data);
    let app = app(dir.path(), "spin.toml", SPIN_TOML);
    let app_dir = app.to_str().unwrap();
    let out = s.cli(&["deploy", app_dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("✓ files: 4 files ("), "{}", stdout(&out));
    assert!(stdout(&out).contains("4 uploaded, 0 already uploaded"), "{}", stdout(&out));

    // What the manifest mounts, at its paths under the one root.
    assert_eq!(s.get("/f/dirs").await, (200, "directories: 1 /\n".into()));
    for (path, want) in [
        ("static/index.html", "hello from a mounted file\n"),
        ("static/sub/deep.txt", "deep\n"),
        ("assets/a.txt", "asset a\n"),
        ("etc/app.json", "{\"env\": \"prod\"}\n"),
    ] {
        assert_eq!(s.get(&format!("/f/read?{path}")).await, (200, want.into()), "{path}");
    }
    // Metered: the last read opened one file and read its 16 bytes.
    assert_eq!(last(&s, "files").await["services"], json!({"files": {"ops": 1, "bytes": 16}}));
    assert_eq!(s.get("/f/stream?static/index.html").await, (200, "hello from a mounted file\n".into()));
    assert_eq!(last(&s, "files").await["services"], json!({"files": {"ops": 1, "bytes": 26}}));
    let (_, names) = s.get("/f/ls?static").await;
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["index.html", "sub"], "the excluded file is not there");
    let (_, root) = s.get("/f/ls?.").await;
    let mut root: Vec<&str> = root.lines().collect();
    root.sort();
    assert_eq!(root, ["assets", "etc", "static"]);

    // Nothing else: what it does not mount is not there, and nothing outside the tree is reachable.
    for path in ["static/old.bak", "secret.txt", "files.wasm", "spin.toml"] {
        assert_eq!(
            s.get(&format!("/f/read?{path}")).await,
            (200, "open-at refused: error 20 (no-entry)\n".into()),
            "{path}"
        );
    }
    for path in [
        "../secret.txt",
        "static/../../secret.txt",
        "../../outside.txt",
        "../../../../../../etc/passwd",
        "/../data/api-token",
    ] {
        assert_eq!(
            s.get(&format!("/f/read?{path}")).await,
            (200, "open-at refused: error 31 (not-permitted)\n".into()),
            "{path}"
        );
    }

    // Read-only: an open that writes, creates or truncates is refused and noted; other changes are refused.
    for path in ["static/index.html", "new.txt"] {
        assert_eq!(s.get(&format!("/f/write?{path}")).await, (200, "open-at refused: error 33 (read-only)\n".into()));
        let logs = last(&s, "files").await["logs"].as_str().unwrap().to_string();
        assert!(
            logs.contains(&format!(
                "wisp: denied wasi:filesystem open-at \"{path}\" for writing: the function's files are read-only"
            )),
            "{path}: {logs}"
        );
    }
    assert_eq!(
        s.get("/f/mkdir?static/new").await,
        (200, "create-directory-at refused: error 31 (not-permitted)\n".into())
    );
    assert_eq!(s.get("/f/read?static/index.html").await.1, "hello from a mounted file\n");
    assert_eq!(s.get("/f/read?new.txt").await.1, "open-at refused: error 20 (no-entry)\n");

    // The files are revision content: the same deploy changes nothing, a changed file is a new revision
    // (only that file is uploaded again).
    let first = s.function("files").await["revision"].clone();
    let out = s.cli(&["deploy", app_dir]);
    assert!(stdout(&out).contains("unchanged"), "{}", stdout(&out));
    assert!(stdout(&out).contains("0 uploaded, 4 already uploaded"), "{}", stdout(&out));
    write(&app.join("static/index.html"), "changed\n");
    let out = s.cli(&["deploy", app_dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 uploaded, 3 already uploaded"), "{}", stdout(&out));
    assert_ne!(s.function("files").await["revision"], first);
    assert_eq!(s.get("/f/read?static/index.html").await, (200, "changed\n".into()));

    // After a restart the tree is reused; a node that lost it rebuilds it from the artifacts.
    s.stop();
    let s = Server::start(&data);
    assert_eq!(s.get("/f/read?static/index.html").await, (200, "changed\n".into()));
    drop(s);
    std::fs::remove_dir_all(data.join("files")).unwrap();
    let s = Server::start(&data);
    assert_eq!(s.get("/f/read?etc/app.json").await, (200, "{\"env\": \"prod\"}\n".into()));
    assert_eq!(s.get("/f/write?etc/app.json").await.1, "open-at refused: error 33 (read-only)\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wisp_toml_function_mounts_files_and_one_without_keeps_the_empty_root() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let manifest = r#"[app]
name = "site"

[[function]]
name = "with-files"
source = "files.wasm"
routes = ["/w"]
files = [{ source = "static", destination = "/www" }, "assets/a.txt"]
exclude_files = ["static/sub/**"]

[[function]]
name = "without"
source = "files.wasm"
routes = ["/n"]

[[function]]
name = "cgi"
kind = "wagi"
source = "files-wagi.wasm"
routes = ["/cgi"]
files = ["static/index.html"]
"#;
    let app = app(dir.path(), "wisp.toml", manifest);
    std::fs::copy(common::guest("files-wagi"), app.join("files-wagi.wasm")).unwrap();
    // Deployed from inside the app directory (the manifest's directory is then the empty path).
    let out = std::process::Command::new(common::wisp_bin())
        .current_dir(&app)
        .args(["deploy", "wisp.toml"])
        .env("WISP_URL", s.api_base())
        .env("WISP_DATA_DIR", &s.data)
        .env_remove("WISP_TOKEN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.get("/w/read?www/index.html").await, (200, "hello from a mounted file\n".into()));
    assert_eq!(s.get("/w/read?assets/a.txt").await, (200, "asset a\n".into()));
    assert_eq!(s.get("/w/read?www/sub/deep.txt").await.1, "open-at refused: error 20 (no-entry)\n");
    // The revision lists what it mounts (guest path → artifact).
    let shown: Value = s.get_json("/_wisp/v1/namespaces/default/functions/with-files").await;
    let files = shown["revisions"][0]["files"].as_object().unwrap();
    assert_eq!(files.keys().collect::<Vec<_>>(), ["/assets/a.txt", "/www/index.html", "/www/old.bak"], "{shown}");

    // A WAGI module gets the same tree preopened at `/`, read-only.
    assert_eq!(s.get("/cgi?/static/index.html").await, (200, "hello from a mounted file\n".into()));
    assert_eq!(s.get("/cgi?/assets/a.txt").await.1, "fopen refused: No such file or directory\n");
    assert_eq!(s.get("/cgi?/../secret.txt").await.1, "fopen refused: Operation not permitted\n");
    assert_eq!(s.get("/cgi?write=/static/index.html").await.1, "fopen for writing refused: Operation not permitted\n");

    // No files: today's empty root, every open denied and noted.
    assert_eq!(s.get("/n/dirs").await, (200, "directories: 1 /\n".into()));
    assert_eq!(s.get("/n/read?www/index.html").await, (200, "open-at refused: error 0 (access)\n".into()));
    let logs = last(&s, "without").await["logs"].as_str().unwrap().to_string();
    assert!(
        logs.contains(
            "wisp: denied wasi:filesystem open-at \"www/index.html\": this node grants functions no filesystem"
        ),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_manifest_may_mount_is_checked_before_anything_is_uploaded() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let app = app(dir.path(), "spin.toml", SPIN_TOML);
    let deploy_with = |files: &str| {
        write(&app.join("spin.toml"), &SPIN_TOML.replace("files = [\"static/**/*\"", &format!("files = [{files}")));
        s.cli(&["deploy", app.to_str().unwrap()])
    };
    // A link out of the app directory, `..`, an absolute path, a URL: refused, naming the entry.
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), app.join("static/link.txt")).unwrap();
    let out = deploy_with("\"static/**/*\"");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("files entry \"static/**/*\": \"static/link.txt\" resolves to")
            && stderr(&out).contains("outside the app directory"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(app.join("static/link.txt")).unwrap();
    for (files, want) in [
        ("\"../outside.txt\"", "files entry \"../outside.txt\": \"../outside.txt\" has a `..` segment"),
        ("\"/etc/passwd\"", "files entry \"/etc/passwd\": \"/etc/passwd\" is absolute"),
        (
            "{ source = \"https://example.com/site.tar\", destination = \"/site\" }",
            "is a URL; wisp mounts files of the app directory only",
        ),
        ("\"nope.txt\"", "\"nope.txt\" does not exist in the app directory and is not a glob pattern"),
    ] {
        let out = deploy_with(files);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(want), "{files}: {}", stderr(&out));
    }
    // Limits: bytes per file and in all (sparse files: nothing is written), files per function.
    let sparse = |name: &str, len: u64| {
        std::fs::File::create(app.join(name)).unwrap().set_len(len).unwrap();
    };
    sparse("big.bin", wisp_core::files::DEFAULT_MAX_FILE_BYTES + 1);
    let out = deploy_with("\"big.bin\"");
    assert!(
        stderr(&out).contains("files: \"big.bin\" is 67108865 bytes, over the limit of 67108864 bytes per file"),
        "{}",
        stderr(&out)
    );
    std::fs::create_dir(app.join("large")).unwrap();
    for i in 0..5 {
        sparse(&format!("large/{i}.bin"), 60 << 20);
    }
    let out = deploy_with("\"large\"");
    assert!(
        stderr(&out).contains("files: more than 268435456 bytes in all, over the limit per function"),
        "{}",
        stderr(&out)
    );
    for i in 0..=wisp_core::files::DEFAULT_MAX_FILES {
        write(&app.join(format!("many/{i}.txt")), "x");
    }
    let out = deploy_with("\"many/*\"");
    assert!(
        stderr(&out).contains("files: 1001 files to mount, over the limit of 1000 per function"),
        "{}",
        stderr(&out)
    );
    assert_eq!(s.functions().await.as_array().unwrap().len(), 0, "nothing deployed");

    // The API checks every file a spec names was uploaded, and stores files as they are (kind=file).
    let wasm = std::fs::read(common::guest("files-c")).unwrap();
    let missing = "d".repeat(64);
    let err =
        s.deploy_bytes("f", wasm.clone(), json!({"routes": ["/f"], "files": {"/a.txt": missing}})).await.unwrap_err();
    assert_eq!(err.0, 404);
    assert_eq!(
        err.1,
        format!(
            "file \"/a.txt\": artifact {missing} has not been uploaded; upload it first (POST /_wisp/v1/artifacts?kind=file)"
        )
    );
    assert!(s.upload(b"plain text".to_vec()).await.unwrap_err().1.contains("not WebAssembly"));
    let r = s.api(reqwest::Method::POST, "/_wisp/v1/artifacts?kind=file").body("plain text").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["kind"], "file");
    let sha = v["sha256"].as_str().unwrap().to_string();
    let err = s.deploy_bytes("f", wasm.clone(), json!({"routes": ["/f"], "files": {"a.txt": sha}})).await.unwrap_err();
    assert_eq!(err, (400, "files: guest path \"a.txt\" is not absolute; start it with `/`".into()));
    s.deploy_bytes("f", wasm, json!({"routes": ["/f"], "files": {"/a.txt": sha}})).await.unwrap();
    assert_eq!(s.get("/f/read?a.txt").await, (200, "plain text".into()));
}
