//! Files a function's instances see, read-only: Spin's `files` (a `spin.toml` component key, also a
//! `wisp.toml` function key) and what a deploy makes of it.
//!
//! ```toml
//! files = [
//!   "static/**/*",                                   # a glob, relative to the manifest: each file at the
//!                                                    #   same relative path under `/` (/static/...)
//!   "favicon.ico",                                   # a file (at /favicon.ico) or a directory (all of it)
//!   { source = "assets", destination = "/assets" },  # a directory mapped to a guest directory
//!   { source = "conf/prod.json", destination = "/etc/app.json" },  # a file mapped to a guest path
//! ]
//! exclude_files = ["static/**/*.map"]               # globs over paths relative to the manifest
//! ```
//!
//! Paths are data: a source is relative to the app directory (no absolute paths, no `..`, nothing that
//! resolves outside it — the CLI checks the resolved paths, see [`AppTree`]), a destination is an absolute
//! guest path without `.` or `..`. The deploy turns the mounts into a map (guest path → sha256 of an
//! uploaded artifact, sorted), which is part of the function spec and its revision id; the node
//! materialises it once as a directory tree and every instance sees that tree read-only at `/`.
//!
//! This module is pure: [`resolve`] asks an [`AppTree`] what the app directory holds.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Default cap on the files one function mounts.
pub const DEFAULT_MAX_FILES: usize = 1000;
/// Default cap on one mounted file's size.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Default cap on the size of all the files one function mounts.
pub const DEFAULT_MAX_FILES_BYTES: u64 = 256 * 1024 * 1024;
/// Longest guest path accepted.
pub const MAX_GUEST_PATH_BYTES: usize = 1024;

/// One entry of `files`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FileMount {
    /// A glob pattern, file or directory relative to the manifest, mounted at the same relative path.
    Pattern(String),
    /// A file or directory of the app mapped to a guest path.
    Placement {
        /// The file or directory, relative to the manifest.
        source: String,
        /// Where the guest sees it (absolute).
        destination: String,
    },
}

impl fmt::Display for FileMount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileMount::Pattern(p) => write!(f, "{p:?}"),
            FileMount::Placement { source, destination } => {
                write!(f, "{{ source = {source:?}, destination = {destination:?} }}")
            }
        }
    }
}

impl<'de> Deserialize<'de> for FileMount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FileMount;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path or glob relative to the manifest (\"static/**/*\"), or a table { source = \"dir\", destination = \"/path\" }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileMount, E> {
                Ok(FileMount::Pattern(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FileMount, A::Error> {
                let (mut source, mut destination) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "source" => source = Some(map.next_value::<String>()?),
                        "destination" => destination = Some(map.next_value::<String>()?),
                        other => return Err(de::Error::unknown_field(other, &["source", "destination"])),
                    }
                }
                Ok(FileMount::Placement {
                    source: source.ok_or_else(|| de::Error::missing_field("source"))?,
                    destination: destination.ok_or_else(|| de::Error::missing_field("destination"))?,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// What a path of the app directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (or a link to one inside the app directory).
    File,
    /// A directory.
    Dir,
}

/// The app directory as [`resolve`] sees it. Paths are relative to it, `/`-separated, normalised (no `.`,
/// `..` or empty segments); `""` is the app directory itself. The implementation refuses (with an error
/// naming the path) anything that resolves outside the app directory.
pub trait AppTree {
    /// What `rel` is, or `None` if it does not exist.
    fn kind(&self, rel: &str) -> Result<Option<EntryKind>, String>;
    /// Every file under the directory `rel`, recursively, as paths relative to the app directory.
    fn files_under(&self, rel: &str) -> Result<Vec<String>, String>;
}

/// How an included glob matches: `*`, `?` and `[...]` stay within one path segment, `**` spans any number
/// (as Spin's walk of the app directory does).
const INCLUDE: glob::MatchOptions =
    glob::MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: false };

/// A source path of the app directory, normalised: relative, `/`-separated, `.` segments dropped; an
/// absolute path, a `..`, a backslash or a URL is an error naming `what`.
fn app_relative(p: &str, what: &str) -> Result<String, String> {
    if p.contains("://") {
        return Err(format!(
            "{what}: {p:?} is a URL; wisp mounts files of the app directory only (download it into the app first)"
        ));
    }
    if p.trim().is_empty() {
        return Err(format!("{what}: the path is empty; give a path relative to the manifest"));
    }
    if p.starts_with('/') || p.starts_with('~') || p.as_bytes().get(1) == Some(&b':') {
        return Err(format!("{what}: {p:?} is absolute; give a path relative to the manifest"));
    }
    if p.contains('\\') || p.contains('\0') {
        return Err(format!("{what}: {p:?}: use `/` as the separator (no backslashes or NUL)"));
    }
    let mut out = Vec::new();
    for s in p.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "{what}: {p:?} has a `..` segment; files come from the app directory (the manifest's) and below"
                ));
            }
            s => out.push(s),
        }
    }
    Ok(out.join("/"))
}

/// Checks a guest path of a mounted file: absolute, no empty, `.` or `..` segments, segments of at most
/// 255 bytes, at most [`MAX_GUEST_PATH_BYTES`] in all.
pub fn check_guest_path(p: &str) -> Result<(), String> {
    let Some(rest) = p.strip_prefix('/') else {
        return Err(format!("guest path {p:?} is not absolute; start it with `/`"));
    };
    if p.len() > MAX_GUEST_PATH_BYTES {
        return Err(format!("guest path {p:?} is longer than {MAX_GUEST_PATH_BYTES} bytes"));
    }
    if rest.is_empty() {
        return Err("guest path \"/\" names the root directory, not a file".into());
    }
    for s in rest.split('/') {
        if s.is_empty() || s == "." || s == ".." || s.contains('\0') || s.len() > 255 {
            return Err(format!(
                "guest path {p:?}: each segment must be 1-255 bytes, not `.` or `..`, without NUL (and no `//`)"
            ));
        }
    }
    Ok(())
}

/// A placement's destination, normalised: absolute, no trailing `/` (but for `/` itself).
fn destination(d: &str, what: &str) -> Result<String, String> {
    let trimmed = d.trim_end_matches('/');
    if trimmed.is_empty() && d.starts_with('/') {
        return Ok("/".into());
    }
    check_guest_path(trimmed).map_err(|e| format!("{what}: destination: {e}"))?;
    Ok(trimmed.to_string())
}

fn compile_glob(p: &str, what: &str) -> Result<glob::Pattern, String> {
    glob::Pattern::new(p).map_err(|e| format!("{what}: {p:?} is not a valid glob pattern: {}", e.msg))
}

/// Checks `files` and `exclude_files` as written (what can be checked without the app directory).
pub fn check_mounts(mounts: &[FileMount], exclude: &[String]) -> Result<(), String> {
    for m in mounts {
        let what = format!("files entry {m}");
        match m {
            FileMount::Pattern(p) => {
                let rel = app_relative(p, &what)?;
                if rel.is_empty() || p.ends_with("/.") || p == "." {
                    return Err(format!(
                        "{what}: a pattern cannot name the app directory itself; use \"**/*\" or {{ source = \".\", destination = \"/\" }}"
                    ));
                }
                compile_glob(&rel, &what)?;
            }
            FileMount::Placement { source, destination: d } => {
                app_relative(source, &what)?;
                destination(d, &what)?;
            }
        }
    }
    for x in exclude {
        let what = format!("exclude_files entry {x:?}");
        app_relative(x, &what)?;
        compile_glob(x, &what)?;
    }
    Ok(())
}

fn has_glob_chars(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Resolves `files` (excluding `exclude_files`) against the app directory: guest path → source path
/// (relative to the app directory), sorted. A pattern that names an existing file or directory mounts it;
/// otherwise it is a glob over the app's files (matching none is not an error, as in Spin). Exclusions
/// apply to what directories and globs bring in, matched against paths relative to the app directory. Two
/// sources for one guest path, a file where another needs a directory, or more than [`DEFAULT_MAX_FILES`]
/// files are errors.
pub fn resolve(
    mounts: &[FileMount],
    exclude: &[String],
    tree: &dyn AppTree,
) -> Result<BTreeMap<String, String>, String> {
    check_mounts(mounts, exclude)?;
    let excludes: Vec<glob::Pattern> = exclude
        .iter()
        .map(|x| compile_glob(&app_relative(x, "exclude_files")?, "exclude_files"))
        .collect::<Result<_, _>>()?;
    let excluded = |rel: &str| excludes.iter().any(|x| x.matches(rel));
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for m in mounts {
        let what = format!("files entry {m}");
        match m {
            FileMount::Pattern(p) => {
                let rel = app_relative(p, &what)?;
                match tree.kind(&rel).map_err(|e| format!("{what}: {e}"))? {
                    Some(EntryKind::File) => add(&mut out, format!("/{rel}"), rel.clone(), &what)?,
                    Some(EntryKind::Dir) => {
                        for f in tree.files_under(&rel).map_err(|e| format!("{what}: {e}"))? {
                            if !excluded(&f) {
                                add(&mut out, format!("/{f}"), f, &what)?;
                            }
                        }
                    }
                    None if has_glob_chars(&rel) => {
                        let pattern = compile_glob(&rel, &what)?;
                        // Walk only below the pattern's literal leading directories.
                        let literal: Vec<&str> = rel.split('/').take_while(|s| !has_glob_chars(s)).collect();
                        let base = literal.join("/");
                        let found = match tree.kind(&base).map_err(|e| format!("{what}: {e}"))? {
                            Some(EntryKind::Dir) => tree.files_under(&base).map_err(|e| format!("{what}: {e}"))?,
                            _ => Vec::new(),
                        };
                        for f in found {
                            if pattern.matches_with(&f, INCLUDE) && !excluded(&f) {
                                add(&mut out, format!("/{f}"), f, &what)?;
                            }
                        }
                    }
                    None => {
                        return Err(format!(
                            "{what}: {rel:?} does not exist in the app directory and is not a glob pattern"
                        ));
                    }
                }
            }
            FileMount::Placement { source, destination: d } => {
                let src = app_relative(source, &what)?;
                let dest = destination(d, &what)?;
                match tree.kind(&src).map_err(|e| format!("{what}: {e}"))? {
                    Some(EntryKind::File) => add(&mut out, dest, src, &what)?,
                    Some(EntryKind::Dir) => {
                        let base = dest.trim_end_matches('/');
                        for f in tree.files_under(&src).map_err(|e| format!("{what}: {e}"))? {
                            if excluded(&f) {
                                continue;
                            }
                            let below = if src.is_empty() { f.as_str() } else { &f[src.len() + 1..] };
                            add(&mut out, format!("{base}/{below}"), f.clone(), &what)?;
                        }
                    }
                    None => {
                        return Err(format!("{what}: source {src:?} does not exist in the app directory"));
                    }
                }
            }
        }
        if out.len() > DEFAULT_MAX_FILES {
            return Err(too_many(out.len()));
        }
    }
    check_nesting(out.keys())?;
    Ok(out)
}

/// Adds one mount to `out`; a second source for a guest path is an error.
fn add(out: &mut BTreeMap<String, String>, guest: String, source: String, what: &str) -> Result<(), String> {
    check_guest_path(&guest).map_err(|e| format!("{what}: {e}"))?;
    match out.get(&guest) {
        Some(other) if *other != source => {
            Err(format!("{what}: guest path {guest:?} is mounted from both {other:?} and {source:?}"))
        }
        _ => {
            out.insert(guest, source);
            Ok(())
        }
    }
}

fn too_many(n: usize) -> String {
    format!(
        "files: {n} files to mount, over the limit of {DEFAULT_MAX_FILES} per function; narrow the patterns or add exclude_files"
    )
}

/// Refuses a guest path that is a file where another needs a directory (`/a` and `/a/b`). `paths` sorted.
fn check_nesting<'a>(paths: impl Iterator<Item = &'a String>) -> Result<(), String> {
    let paths: Vec<&String> = paths.collect();
    for (i, p) in paths.iter().enumerate() {
        // The paths starting with `p` follow it, together: those under `p/` and the likes of `p-x`, `p.x`.
        let dir = format!("{p}/");
        let mut with_prefix = paths[i + 1..].iter().take_while(|q| q.starts_with(p.as_str()));
        if let Some(under) = with_prefix.find(|q| q.starts_with(&dir)) {
            return Err(format!("files: {p:?} is a file, but {under:?} needs it to be a directory"));
        }
    }
    Ok(())
}

/// Checks a spec's `files` map (guest path → sha256 of an uploaded artifact): guest paths as
/// [`check_guest_path`] says, digests, at most [`DEFAULT_MAX_FILES`], no file where a directory is needed.
pub fn check_map(files: &BTreeMap<String, String>) -> Result<(), String> {
    if files.len() > DEFAULT_MAX_FILES {
        return Err(too_many(files.len()));
    }
    for (path, sha) in files {
        check_guest_path(path).map_err(|e| format!("files: {e}"))?;
        if !crate::spec::is_sha256_hex(sha) {
            return Err(format!("files: {path:?}: `{sha}` is not a sha256 digest (64 lowercase hex characters)"));
        }
    }
    check_nesting(files.keys())
}

/// The content address of a `files` map: names the directory a node materialises it in, shared by every
/// revision (of any function) that mounts the same files.
pub fn tree_id(files: &BTreeMap<String, String>) -> String {
    crate::spec::sha256_hex(&serde_json::to_vec(files).expect("a map of strings serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// An app directory in memory: its files (directories are implied).
    struct Tree(BTreeSet<&'static str>);

    impl AppTree for Tree {
        fn kind(&self, rel: &str) -> Result<Option<EntryKind>, String> {
            if rel.is_empty() || self.0.iter().any(|f| f.starts_with(&format!("{rel}/"))) {
                Ok(Some(EntryKind::Dir))
            } else if self.0.contains(rel) {
                Ok(Some(EntryKind::File))
            } else {
                Ok(None)
            }
        }
        fn files_under(&self, rel: &str) -> Result<Vec<String>, String> {
            let prefix = if rel.is_empty() { String::new() } else { format!("{rel}/") };
            Ok(self.0.iter().filter(|f| f.starts_with(&prefix)).map(|f| f.to_string()).collect())
        }
    }

    fn tree() -> Tree {
        Tree(BTreeSet::from([
            "spin.toml",
            "app.wasm",
            "favicon.ico",
            "static/index.html",
            "static/app.js",
            "static/app.js.map",
            "static/img/logo.png",
            "assets/a.txt",
            "assets/deep/b.txt",
            "conf/prod.json",
        ]))
    }

    fn mounts(toml_files: &str) -> Vec<FileMount> {
        #[derive(Deserialize)]
        struct T {
            files: Vec<FileMount>,
        }
        toml::from_str::<T>(&format!("files = {toml_files}")).unwrap().files
    }

    fn resolved(files: &str, exclude: &[&str]) -> Result<Vec<(String, String)>, String> {
        let exclude: Vec<String> = exclude.iter().map(|s| s.to_string()).collect();
        resolve(&mounts(files), &exclude, &tree()).map(|m| m.into_iter().collect())
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn globs_files_directories_and_placements_resolve_as_in_spin() {
        // A glob: `*` stays in its segment, `**` spans directories; each file at its own relative path.
        assert_eq!(
            resolved(r#"["static/*"]"#, &[]).unwrap(),
            pairs(&[
                ("/static/app.js", "static/app.js"),
                ("/static/app.js.map", "static/app.js.map"),
                ("/static/index.html", "static/index.html"),
            ])
        );
        assert_eq!(
            resolved(r#"["static/**/*.png"]"#, &[]).unwrap(),
            pairs(&[("/static/img/logo.png", "static/img/logo.png")])
        );
        assert_eq!(resolved(r#"["static/**/*"]"#, &["static/**/*.map"]).unwrap().len(), 3);
        // A file, and a directory (all of it, exclusions applied).
        assert_eq!(resolved(r#"["./favicon.ico"]"#, &[]).unwrap(), pairs(&[("/favicon.ico", "favicon.ico")]));
        assert_eq!(resolved(r#"["assets"]"#, &["assets/deep/*"]).unwrap(), pairs(&[("/assets/a.txt", "assets/a.txt")]));
        // Placements: a directory under a guest directory, a file at a guest path, a directory at `/`.
        assert_eq!(
            resolved(
                r#"[{ source = "assets", destination = "/data/" }, { source = "conf/prod.json", destination = "/etc/app.json" }]"#,
                &[]
            )
            .unwrap(),
            pairs(&[
                ("/data/a.txt", "assets/a.txt"),
                ("/data/deep/b.txt", "assets/deep/b.txt"),
                ("/etc/app.json", "conf/prod.json"),
            ])
        );
        assert_eq!(
            resolved(r#"[{ source = "assets/deep", destination = "/" }]"#, &[]).unwrap(),
            pairs(&[("/b.txt", "assets/deep/b.txt")])
        );
        // A glob matching nothing mounts nothing (as in Spin); the same file twice is one mount.
        assert_eq!(resolved(r#"["nothing/**/*"]"#, &[]).unwrap(), pairs(&[]));
        assert_eq!(resolved(r#"["favicon.ico", "*.ico"]"#, &[]).unwrap().len(), 1);
    }

    #[test]
    fn paths_are_data_and_errors_name_the_entry() {
        let table: &[(&str, &str)] = &[
            (
                r#"["/etc/passwd"]"#,
                "files entry \"/etc/passwd\": \"/etc/passwd\" is absolute; give a path relative to the manifest",
            ),
            (
                r#"["../secrets/*"]"#,
                "files entry \"../secrets/*\": \"../secrets/*\" has a `..` segment; files come from the app directory (the manifest's) and below",
            ),
            (r#"["static/../../x"]"#, "has a `..` segment"),
            (
                r#"[{ source = "..", destination = "/up" }]"#,
                "files entry { source = \"..\", destination = \"/up\" }: \"..\" has a `..` segment",
            ),
            (
                r#"[{ source = "assets", destination = "data" }]"#,
                "destination: guest path \"data\" is not absolute; start it with `/`",
            ),
            (
                r#"[{ source = "assets", destination = "/a/../b" }]"#,
                "each segment must be 1-255 bytes, not `.` or `..`",
            ),
            (r#"["https://example.com/x.txt"]"#, "is a URL; wisp mounts files of the app directory only"),
            (r#"["."]"#, "a pattern cannot name the app directory itself"),
            (r#"["static/[x"]"#, "\"static/[x\" is not a valid glob pattern"),
            (
                r#"["missing.txt"]"#,
                "files entry \"missing.txt\": \"missing.txt\" does not exist in the app directory and is not a glob pattern",
            ),
            (r#"[{ source = "gone", destination = "/x" }]"#, "source \"gone\" does not exist in the app directory"),
            (
                r#"["favicon.ico", { source = "conf/prod.json", destination = "/favicon.ico" }]"#,
                "guest path \"/favicon.ico\" is mounted from both \"favicon.ico\" and \"conf/prod.json\"",
            ),
            (
                r#"[{ source = "favicon.ico", destination = "/assets" }, "assets"]"#,
                "files: \"/assets\" is a file, but \"/assets/a.txt\" needs it to be a directory",
            ),
        ];
        for (files, want) in table {
            let got = resolved(files, &[]).unwrap_err();
            assert!(got.contains(want), "{files}: got {got:?}, want {want:?}");
        }
        let e = resolve(&mounts(r#"["static/*"]"#), &["/abs/*".into()], &tree()).unwrap_err();
        assert_eq!(e, "exclude_files entry \"/abs/*\": \"/abs/*\" is absolute; give a path relative to the manifest");
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct T {
            files: Vec<FileMount>,
        }
        let e = toml::from_str::<T>("files = [{ source = \"a\", dest = \"/a\" }]").unwrap_err().to_string();
        assert!(e.contains("unknown field `dest`, expected `source` or `destination`"), "{e}");
        let e = toml::from_str::<T>("files = [3]").unwrap_err().to_string();
        assert!(e.contains("expected a path or glob relative to the manifest"), "{e}");
    }

    #[test]
    fn the_map_is_checked_and_content_addressed() {
        let sha = "a".repeat(64);
        let map = |paths: &[&str]| -> BTreeMap<String, String> {
            paths.iter().map(|p| (p.to_string(), sha.clone())).collect()
        };
        assert!(check_map(&map(&["/a", "/a-b/c", "/a.b", "/static/x"])).is_ok());
        assert_eq!(
            check_map(&map(&["/a", "/a-b", "/a/b"])).unwrap_err(),
            "files: \"/a\" is a file, but \"/a/b\" needs it to be a directory"
        );
        for bad in ["a", "/", "/a//b", "/a/./b", "/../x", "/a/"] {
            assert!(check_map(&map(&[bad])).is_err(), "{bad}");
        }
        let mut m = map(&["/x"]);
        m.insert("/y".into(), "XYZ".into());
        assert_eq!(
            check_map(&m).unwrap_err(),
            "files: \"/y\": `XYZ` is not a sha256 digest (64 lowercase hex characters)"
        );
        let many: BTreeMap<String, String> = (0..=DEFAULT_MAX_FILES).map(|i| (format!("/f{i}"), sha.clone())).collect();
        assert!(check_map(&many).unwrap_err().contains("over the limit of 1000 per function"));
        // The tree's id follows its content.
        assert_eq!(tree_id(&map(&["/a"])), tree_id(&map(&["/a"])));
        assert_ne!(tree_id(&map(&["/a"])), tree_id(&map(&["/b"])));
    }
}
