//! The embedded blob backend's own tests: round trips, names that look like paths, quotas, restarts.

use super::*;

fn limits() -> BlobLimits {
    BlobLimits { max_object_bytes: 1000, max_app_bytes: 2500 }
}

async fn put(b: &FsBlobs, scope: &str, name: &str, bytes: &[u8]) -> Result<ObjectInfo> {
    let mut up = b.upload().await?;
    up.write_all(bytes).await.map_err(BlobError::from_io)?;
    up.commit(scope, name).await
}

async fn get(b: &FsBlobs, scope: &str, name: &str) -> Option<Vec<u8>> {
    let mut d = b.download(scope, name, 0, None).await.unwrap()?;
    let mut out = Vec::new();
    d.reader.read_to_end(&mut out).await.unwrap();
    assert_eq!(out.len() as u64, d.len);
    Some(out)
}

/// Every file under `dir`, relative.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn round_trip_ranges_listing_and_containers() {
    let dir = tempfile::tempdir().unwrap();
    let b = FsBlobs::open(&dir.path().join("blobs"), limits()).unwrap();
    let a = "ns/app/shop/default/";
    assert_eq!(put(&b, a, "x", b"1").await.unwrap_err(), BlobError::NoContainer("default".into()));
    b.create_container(a).await.unwrap();
    let first = b.create_container(a).await.unwrap();
    assert_eq!(b.container(a).await.unwrap(), Some(first), "create is idempotent");
    put(&b, a, "a/b c", b"hello, blob").await.unwrap();
    assert_eq!(get(&b, a, "a/b c").await.unwrap(), b"hello, blob");
    let mut part = b.download(a, "a/b c", 7, Some(4)).await.unwrap().unwrap();
    let mut out = String::new();
    part.reader.read_to_string(&mut out).await.unwrap();
    assert_eq!(out, "blob");
    assert!(b.download(a, "a/b c", 12, None).await.unwrap_err().to_string().contains("past the end"));
    assert!(b.download(a, "missing", 0, None).await.unwrap().is_none());
    // Replacing: the old bytes stay readable through an open download.
    let mut held = b.download(a, "a/b c", 0, None).await.unwrap().unwrap();
    put(&b, a, "a/b c", b"replaced").await.unwrap();
    let mut old = Vec::new();
    held.reader.read_to_end(&mut old).await.unwrap();
    assert_eq!(old, b"hello, blob");
    assert_eq!(get(&b, a, "a/b c").await.unwrap(), b"replaced");
    for n in ["p/1", "p/2", "p/3", "q"] {
        put(&b, a, n, b"").await.unwrap();
    }
    let names = |v: Vec<ObjectInfo>| v.into_iter().map(|o| o.name).collect::<Vec<_>>();
    assert_eq!(names(b.list(a, "p/", None, 2).await.unwrap()), ["p/1", "p/2"]);
    assert_eq!(names(b.list(a, "p/", Some("p/2"), 2).await.unwrap()), ["p/3"]);
    assert_eq!(names(b.list(a, "", None, 10).await.unwrap()), ["a/b c", "p/1", "p/2", "p/3", "q"]);
    // Copy and rename within the app; a copy shares nothing visible with its source.
    b.copy((a, "q"), (a, "q2")).await.unwrap();
    b.rename((a, "a/b c"), (a, "moved")).await.unwrap();
    assert_eq!(get(&b, a, "moved").await.unwrap(), b"replaced");
    assert!(b.stat(a, "a/b c").await.unwrap().is_none());
    assert!(b.delete(a, "q").await.unwrap());
    assert!(!b.delete(a, "q").await.unwrap());
    assert_eq!(get(&b, a, "q2").await.unwrap(), b"");
    // Another container (or app) sees none of it.
    let other = "ns/app/other/default/";
    b.create_container(other).await.unwrap();
    assert!(b.list(other, "", None, 10).await.unwrap().is_empty());
    assert!(get(&b, other, "moved").await.is_none());
    b.clear(a).await.unwrap();
    assert!(b.list(a, "", None, 10).await.unwrap().is_empty());
    assert!(b.delete_container(a).await.unwrap());
    assert!(!b.delete_container(a).await.unwrap());
    assert_eq!(b.container(a).await.unwrap(), None);
}

#[tokio::test]
async fn names_are_data_never_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("blobs");
    let b = FsBlobs::open(&root, limits()).unwrap();
    let a = "ns/app/shop/default/";
    b.create_container(a).await.unwrap();
    let long = "y".repeat(1024);
    let names = ["../../x", "/etc/passwd", "..", ".", "a/../../b", "C:\\x", "x\u{202e}y", &long];
    for (i, n) in names.iter().enumerate() {
        put(&b, a, n, format!("{i}").as_bytes()).await.unwrap();
    }
    for (i, n) in names.iter().enumerate() {
        assert_eq!(get(&b, a, n).await.unwrap(), format!("{i}").as_bytes(), "{n}");
    }
    // Refused with a clear error, nothing written.
    for (bad, why) in [("a\0b", "NUL"), ("", "empty"), (&"z".repeat(1025)[..], "at most 1024 bytes")] {
        let err = put(&b, a, bad, b"x").await.unwrap_err();
        assert!(err.to_string().contains(why), "{bad:?}: {err}");
    }
    // On disk: the index, and one file per object named by 32 hex digits; nothing else anywhere.
    let on_disk = files(dir.path());
    let objects: Vec<&String> = on_disk.iter().filter(|f| f.starts_with("blobs/objects/")).collect();
    assert_eq!(objects.len(), names.len(), "{on_disk:?}");
    for f in &objects {
        let id = f.rsplit('/').next().unwrap();
        assert!(is_id(id) && f.as_str() == format!("blobs/objects/{}/{id}", &id[..2]), "{f}");
    }
    assert!(on_disk.iter().all(|f| f.starts_with("blobs/")), "{on_disk:?}");
    assert!(files(&root.join("tmp")).is_empty());
}

#[tokio::test]
async fn quotas_per_object_and_per_app() {
    let dir = tempfile::tempdir().unwrap();
    let b = FsBlobs::open(&dir.path().join("blobs"), limits()).unwrap();
    let (a, a2) = ("ns/app/shop/default/", "ns/app/shop/other/");
    b.create_container(a).await.unwrap();
    b.create_container(a2).await.unwrap();
    let err = put(&b, a, "big", &[0; 1001]).await.unwrap_err();
    assert_eq!(err, limits().object_too_large());
    put(&b, a, "one", &[1; 1000]).await.unwrap();
    put(&b, a2, "two", &[2; 1000]).await.unwrap();
    let err = put(&b, a, "three", &[3; 600]).await.unwrap_err();
    assert!(err.to_string().contains("per app (blobstore.max_app_mb)"), "{err}");
    assert!(b.stat(a, "three").await.unwrap().is_none(), "refused, not stored");
    // Replacing counts the difference; deleting gives room back; another app has its own quota.
    put(&b, a, "one", &[1; 500]).await.unwrap();
    put(&b, a, "three", &[3; 1000]).await.unwrap();
    assert!(b.copy((a, "three"), (a2, "copy")).await.unwrap_err().to_string().contains("per app"));
    b.delete(a, "three").await.unwrap();
    b.copy((a, "one"), (a2, "copy")).await.unwrap();
    let other = "ns/app/other/default/";
    b.create_container(other).await.unwrap();
    put(&b, other, "x", &[0; 1000]).await.unwrap();
    b.delete_container(a2).await.unwrap();
    put(&b, a, "four", &[4; 1000]).await.unwrap();
}

#[tokio::test]
async fn data_survives_reopening_and_leftovers_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("blobs");
    let a = "ns/fn/f/default/";
    {
        let b = FsBlobs::open(&root, limits()).unwrap();
        b.create_container(a).await.unwrap();
        put(&b, a, "kept", b"durable").await.unwrap();
        let mut abandoned = b.upload().await.unwrap();
        abandoned.write_all(b"never committed").await.unwrap();
        std::mem::forget(abandoned); // as if the process died mid-write
    }
    std::fs::create_dir_all(root.join("objects/ab")).unwrap();
    std::fs::write(root.join("objects/ab").join("ab".repeat(16)), b"orphan").unwrap();
    let b = FsBlobs::open(&root, limits()).unwrap();
    assert_eq!(get(&b, a, "kept").await.unwrap(), b"durable");
    assert!(files(&root.join("tmp")).is_empty());
    assert_eq!(files(&root.join("objects")).len(), 1);
}
