//! Functions' files on this node: each `files` map (guest path → artifact sha256) is materialised once
//! from the artifacts as a directory tree under `<data-dir>/files/<tree id>/` (the id is the map's content
//! address, so revisions and functions mounting the same files share one tree), written in a temporary
//! directory, fsynced and renamed into place — a tree that exists is complete and never changes. It is
//! opened once (one descriptor per tree, shared by every instance) and reused after restarts; like the
//! compiled cache it is derived data, rebuilt from the artifacts when missing.

use crate::{ARTIFACTS, DeployError};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use wisp_core::files::{DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_FILES_BYTES};
use wisp_store::BlobStore;
use wisp_wasm_host::FilesRoot;

/// Prefix of trees being written (removed at start-up if a crash left one).
const TMP_PREFIX: &str = ".tmp-";

pub(crate) struct Files {
    dir: PathBuf,
    /// Trees opened on this node, by id.
    open: std::sync::Mutex<HashMap<String, FilesRoot>>,
}

impl Files {
    pub(crate) fn new(dir: PathBuf) -> Files {
        Files { dir, open: Default::default() }
    }

    /// Removes what an interrupted materialisation left behind.
    pub(crate) fn clean(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(TMP_PREFIX)
                && let Err(err) = std::fs::remove_dir_all(e.path())
            {
                tracing::warn!(path = %e.path().display(), error = %err, "cannot remove an unfinished files tree");
            }
        }
    }

    /// The opened tree of `files`, materialised from the artifacts first if this node has not got it.
    pub(crate) async fn root(
        &self,
        blobs: &dyn BlobStore,
        files: &BTreeMap<String, String>,
    ) -> Result<FilesRoot, DeployError> {
        let id = wisp_core::files::tree_id(files);
        if let Some(root) = self.open.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return Ok(root.clone());
        }
        let path = self.dir.join(&id);
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            self.materialise(blobs, files, &id, &path).await?;
        }
        let p = path.clone();
        let root = tokio::task::spawn_blocking(move || FilesRoot::open(&p)).await.map_err(anyhow::Error::from)??;
        self.open.lock().unwrap_or_else(|p| p.into_inner()).insert(id, root.clone());
        Ok(root)
    }

    async fn materialise(
        &self,
        blobs: &dyn BlobStore,
        files: &BTreeMap<String, String>,
        id: &str,
        path: &Path,
    ) -> Result<(), DeployError> {
        let tmp = self.dir.join(format!("{TMP_PREFIX}{id}-{:016x}", rand_suffix()));
        let result = async {
            let t = tmp.clone();
            blocking(move || std::fs::create_dir_all(&t)).await?;
            let mut total: u64 = 0;
            for (guest, sha) in files {
                let bytes = blobs
                    .get(ARTIFACTS, sha)
                    .await?
                    .ok_or_else(|| DeployError::UnknownFile { path: guest.clone(), sha: sha.clone() })?;
                let size = bytes.len() as u64;
                total += size;
                if size > DEFAULT_MAX_FILE_BYTES {
                    return Err(DeployError::FilesTooLarge(format!(
                        "file {guest:?} is {size} bytes, over the limit of {DEFAULT_MAX_FILE_BYTES} bytes per file"
                    )));
                }
                if total > DEFAULT_MAX_FILES_BYTES {
                    return Err(DeployError::FilesTooLarge(format!(
                        "the files are over the limit of {DEFAULT_MAX_FILES_BYTES} bytes per function in all"
                    )));
                }
                let (dest, sha, guest) = (tmp.join(&guest[1..]), sha.clone(), guest.clone());
                blocking(move || {
                    if wisp_core::spec::sha256_hex(&bytes) != sha {
                        return Err(std::io::Error::other(format!("artifact {sha} (for {guest:?}) is corrupt")));
                    }
                    write_read_only(&dest, &bytes)
                })
                .await?;
            }
            let (t, p, dir) = (tmp.clone(), path.to_path_buf(), self.dir.clone());
            blocking(move || {
                sync_dirs(&t)?;
                match std::fs::rename(&t, &p) {
                    Ok(()) => std::fs::File::open(&dir)?.sync_all(),
                    // Another deploy of the same files got there first: its tree is the same.
                    Err(_) if p.is_dir() => std::fs::remove_dir_all(&t),
                    Err(e) => Err(e),
                }
            })
            .await
        }
        .await;
        if result.is_err() {
            let t = tmp.clone();
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(t)).await;
        }
        if result.is_ok() {
            tracing::info!(tree = %wisp_core::spec::short_id(id), files = files.len(), "materialised a files tree");
        }
        result
    }
}

/// Runs blocking filesystem work off the async threads.
async fn blocking(f: impl FnOnce() -> std::io::Result<()> + Send + 'static) -> Result<(), DeployError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(anyhow::Error::from)?
        .map_err(|e| DeployError::Internal(anyhow::anyhow!("writing a files tree: {e}")))
}

/// Writes `bytes` at `path` (parents created), read-only, fsynced.
fn write_read_only(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir_all(path.parent().expect("under the tree"))?;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o444).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Fsyncs every directory of the tree at `dir`, so that its entries survive a crash once it is renamed in.
fn sync_dirs(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            sync_dirs(&e.path())?;
        }
    }
    std::fs::File::open(dir)?.sync_all()
}

fn rand_suffix() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    (nanos as u64) ^ (u64::from(std::process::id()) << 32)
}
