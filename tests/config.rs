//! End-to-end: configuration through wasi:config/store — a manifest's [variables] (defaults, required, given
//! with `--var`) resolved into function `config` templates at deploy, read by a Python guest.

mod common;

use common::{Server, stderr};

#[tokio::test(flavor = "multi_thread")]
async fn config_templates_resolve_from_variables_at_deploy() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    let manifest = format!(
        r#"
[app]
name = "cfg"

[variables]
greeting = {{ default = "hello" }}
name = {{ required = true }}

[[function]]
name = "conf"
source = "{}"
routes = ["/conf"]
config = {{ greeting = "{{{{ greeting }}}}", name = "{{{{ name }}}}", url = "https://{{{{name}}}}.example.com" }}
"#,
        common::guest("config-py").display()
    );
    std::fs::write(app.join("wisp.toml"), manifest).unwrap();
    let app_dir = app.to_str().unwrap();

    // A required variable without a value fails the deploy, naming it; nothing is deployed.
    let out = s.cli(&["deploy", app_dir]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("variable `name` is required: give it at deploy with --var name=VALUE"),
        "{}",
        stderr(&out)
    );
    assert_eq!(s.get("/conf/").await.0, 404);
    let out = s.cli(&["deploy", app_dir, "--var", "nmae=x"]);
    assert!(stderr(&out).contains("declares no variable `nmae`"), "{}", stderr(&out));

    let out = s.cli(&["deploy", app_dir, "--var", "name=wisp"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.get("/conf/").await, (200, "hello, wisp!\n".to_string()));
    assert_eq!(s.get("/conf/url").await, (200, "https://wisp.example.com".to_string()));
    assert_eq!(s.get("/conf/all").await.1, "greeting=hello\nname=wisp\nurl=https://wisp.example.com\n");
    assert_eq!(s.get("/conf/missing").await.0, 404);

    // Another value is another revision.
    let out = s.cli(&["deploy", app_dir, "--var", "name=there", "--var", "greeting=hi"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.get("/conf/").await, (200, "hi, there!\n".to_string()));
    assert_eq!(s.function("conf").await["generation"], 2);
}
