//! End-to-end: app secrets — set from a file, sealed at rest (the value appears in no file of the data
//! directory), served to the granted function as a config key, replaced live, never answered by any API or
//! CLI output, and out of reach of another app even by name.

mod common;

use common::{Server, stderr, stdout};

const VALUE: &str = "s3cr3t-hunter2-value";

fn manifest(app: &str, route: &str) -> String {
    format!(
        "[app]\nname = \"{app}\"\n\n[[function]]\nname = \"{app}-conf\"\nsource = \"{}\"\nroutes = [\"{route}\"]\nconfig = {{ greeting = \"hi\" }}\nsecrets = [\"db_password\"]\n",
        common::guest("config-py").display()
    )
}

/// Every file under `dir` that contains `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
            found.push(path);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_sealed_served_to_granted_functions_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data);
    let app = dir.path().join("vault");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("wisp.toml"), manifest("vault", "/conf")).unwrap();
    let app_dir = app.to_str().unwrap();

    // Granting a secret the app does not have fails the deploy, saying how to set it.
    let out = s.cli(&["deploy", app_dir]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("set it first with `wisp secret set vault db_password`"), "{}", stderr(&out));

    let value_file = dir.path().join("value");
    std::fs::write(&value_file, VALUE).unwrap();
    let out = s.cli(&["secret", "set", "vault", "db_password", "--file", value_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_file(&value_file).unwrap();
    let out = s.cli(&["deploy", app_dir]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The granted function reads it by name, beside its config.
    assert_eq!(s.get("/conf/db_password").await, (200, VALUE.to_string()));
    assert_eq!(s.get("/conf/greeting").await, (200, "hi".to_string()));

    // Listing shows the name only; no API or CLI answer carries the value, and no file holds it.
    let out = s.cli(&["secret", "ls", "vault"]);
    assert!(stdout(&out).contains("db_password"), "{}", stdout(&out));
    let mut shown = stdout(&out);
    for args in [&["ls"][..], &["logs", "vault-conf"], &["status"], &["status", "vault-conf"]] {
        let out = s.cli(args);
        shown += &stdout(&out);
        shown += &stderr(&out);
    }
    shown += &s.function("vault-conf").await.to_string();
    shown += &s.logs("vault-conf").await.iter().map(|l| l.to_string()).collect::<String>();
    assert!(shown.contains("vault-conf"), "the outputs were read");
    assert!(!shown.contains(VALUE), "the value was shown: {shown}");
    assert_eq!(files_containing(&data, VALUE.as_bytes()), Vec::<std::path::PathBuf>::new(), "stored in the clear");

    // A new value reaches the function without a deploy.
    let value_file = dir.path().join("value2");
    std::fs::write(&value_file, "rotated").unwrap();
    let out = s.cli(&["secret", "set", "vault", "db_password", "--file", value_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.get("/conf/db_password").await, (200, "rotated".to_string()));

    // Another app naming the same secret gets nothing of vault's: its deploy is refused.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("wisp.toml"), manifest("other", "/other")).unwrap();
    let out = s.cli(&["deploy", other.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("which app `other` does not have"), "{}", stderr(&out));
    assert_eq!(s.get("/other/db_password").await.0, 404);

    // A granted secret cannot be removed from under its function.
    let out = s.cli(&["secret", "rm", "vault", "db_password"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is granted to vault-conf"), "{}", stderr(&out));

    // The value survives a restart (sealed with the node's key file, 0600).
    drop(s);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("secrets.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let s = Server::start(&data);
    assert_eq!(s.get("/conf/db_password").await, (200, "rotated".to_string()));
}

/// A Spin app's `secret = true` variable is the app's wisp secret: templates naming it are resolved on the
/// node (never at deploy, never stored), and a new value reaches the function without a deploy.
#[tokio::test(flavor = "multi_thread")]
async fn secret_variables_of_a_spin_manifest_are_app_secrets_resolved_on_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data);
    let app = dir.path().join("keys");
    std::fs::create_dir(&app).unwrap();
    std::fs::copy(common::guest("config-py"), app.join("conf.wasm")).unwrap();
    std::fs::write(
        app.join("spin.toml"),
        "spin_manifest_version = 2\n[application]\nname = \"keys\"\n[variables]\napi_key = { required = true, secret = true }\n[[trigger.http]]\nroute = \"/keys/...\"\ncomponent = \"conf\"\n[component.conf]\nsource = \"conf.wasm\"\n[component.conf.variables]\ntoken = \"Bearer {{ api_key }}\"\napi_key = \"{{ api_key }}\"\n",
    )
    .unwrap();
    let app_dir = app.to_str().unwrap();

    // Not set yet: the deploy says how; a --var is refused (it would be stored in the revision).
    let out = s.cli(&["deploy", app_dir]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("set it first with `wisp secret set keys api_key`"), "{}", stderr(&out));
    let out = s.cli(&["deploy", app_dir, "--var", &format!("api_key={VALUE}")]);
    assert!(
        stderr(&out).contains("variable `api_key` is secret: set it with `wisp secret set APP api_key`"),
        "{}",
        stderr(&out)
    );

    let value_file = dir.path().join("value");
    std::fs::write(&value_file, VALUE).unwrap();
    let out = s.cli(&["secret", "set", "keys", "api_key", "--file", value_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_file(&value_file).unwrap();
    let out = s.cli(&["deploy", app_dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.get("/keys/token").await, (200, format!("Bearer {VALUE}")));
    assert_eq!(s.get("/keys/api_key").await, (200, VALUE.to_string()));

    // Nothing shows or stores the value.
    let f = s.function("conf").await;
    assert!(!f.to_string().contains(VALUE), "{f}");
    assert_eq!(files_containing(&data, VALUE.as_bytes()), Vec::<std::path::PathBuf>::new(), "stored in the clear");

    // Rotation reaches the template too.
    let value_file = dir.path().join("value2");
    std::fs::write(&value_file, "rotated").unwrap();
    let out = s.cli(&["secret", "set", "keys", "api_key", "--file", value_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.get("/keys/token").await, (200, "Bearer rotated".to_string()));
}
