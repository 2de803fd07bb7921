//! A function's `files` on the deploying machine: the app directory as `wisp_core::files` resolves mounts
//! against it — every path resolved on disk, and anything that resolves outside the app directory (a link
//! out of it, a loop) refused naming the path — then each file read, checked against the limits, and
//! uploaded as a content-addressed artifact (`kind=file`) through the same upload the code takes.

use super::{human_bytes, upload};
use crate::client::Client;
use anyhow::{Context, bail};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use wisp_core::files::{AppTree, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_FILES_BYTES, EntryKind, FileMount};

/// Most directory entries one walk of the app directory looks at.
const MAX_WALKED: usize = 100_000;

/// The app directory on disk, canonicalised.
struct Disk {
    root: PathBuf,
}

impl Disk {
    /// `rel` resolved on disk: its canonical path, which must lie in the app directory; None if absent.
    fn resolve(&self, rel: &str) -> Result<Option<PathBuf>, String> {
        let p = self.root.join(rel);
        match std::fs::symlink_metadata(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", p.display())),
            Ok(_) => {}
        }
        let canon = p.canonicalize().map_err(|e| format!("{rel:?}: cannot resolve {}: {e}", p.display()))?;
        if !canon.starts_with(&self.root) {
            return Err(format!(
                "{rel:?} resolves to {}, outside the app directory {}; files come from the app directory only",
                canon.display(),
                self.root.display()
            ));
        }
        Ok(Some(canon))
    }
}

impl AppTree for Disk {
    fn kind(&self, rel: &str) -> Result<Option<EntryKind>, String> {
        let Some(canon) = self.resolve(rel)? else { return Ok(None) };
        let meta = std::fs::metadata(&canon).map_err(|e| format!("{}: {e}", canon.display()))?;
        match (meta.is_dir(), meta.is_file()) {
            (true, _) => Ok(Some(EntryKind::Dir)),
            (_, true) => Ok(Some(EntryKind::File)),
            _ => Err(format!("{rel:?} is neither a file nor a directory")),
        }
    }

    fn files_under(&self, rel: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut walked = 0;
        let mut stack = vec![rel.to_string()];
        while let Some(dir) = stack.pop() {
            let Some(canon) = self.resolve(&dir)? else { continue };
            // A link back up the tree would walk forever: each directory is walked once.
            if !seen.insert(canon.clone()) {
                continue;
            }
            let entries = std::fs::read_dir(&canon).map_err(|e| format!("reading {}: {e}", canon.display()))?;
            for e in entries {
                let e = e.map_err(|e| format!("reading {}: {e}", canon.display()))?;
                walked += 1;
                if walked > MAX_WALKED {
                    return Err(format!("{rel:?} holds more than {MAX_WALKED} entries; narrow the pattern"));
                }
                let name = e.file_name();
                let Some(name) = name.to_str() else {
                    return Err(format!("{}: file names of mounted files must be UTF-8", e.path().display()));
                };
                let child = if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") };
                match self.kind(&child)? {
                    Some(EntryKind::Dir) => stack.push(child),
                    Some(EntryKind::File) => out.push(child),
                    None => {}
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A function's files resolved on disk: guest path → the file to upload. Sizes are checked against the
/// limits here, before anything is uploaded.
pub(super) fn resolve(
    base: &Path,
    mounts: &[FileMount],
    exclude: &[String],
) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    if mounts.is_empty() {
        return Ok(BTreeMap::new());
    }
    // `wisp deploy spin.toml` in the app directory: the manifest's parent is the empty path.
    let base = if base.as_os_str().is_empty() { Path::new(".") } else { base };
    let root = base.canonicalize().with_context(|| format!("resolving the app directory {}", base.display()))?;
    let disk = Disk { root };
    let map = wisp_core::files::resolve(mounts, exclude, &disk).map_err(anyhow::Error::msg)?;
    let mut total = 0u64;
    let mut out = BTreeMap::new();
    for (guest, rel) in map {
        let path = disk.root.join(&rel);
        let size = std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?.len();
        if size > DEFAULT_MAX_FILE_BYTES {
            bail!(
                "files: {rel:?} is {size} bytes, over the limit of {DEFAULT_MAX_FILE_BYTES} bytes per file; leave it out with exclude_files"
            );
        }
        total += size;
        if total > DEFAULT_MAX_FILES_BYTES {
            bail!(
                "files: more than {DEFAULT_MAX_FILES_BYTES} bytes in all, over the limit per function; narrow the patterns or add exclude_files"
            );
        }
        out.insert(guest, path);
    }
    Ok(out)
}

/// Uploads each file (skipping those the server has) and returns the spec's `files` map.
pub(super) async fn upload_all(
    client: &Client,
    function: &str,
    files: &BTreeMap<String, PathBuf>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let (mut map, mut uploaded, mut bytes) = (BTreeMap::new(), 0, 0);
    for (guest, path) in files {
        let data = std::fs::read(path).with_context(|| format!("function `{function}`: reading {}", path.display()))?;
        if data.len() as u64 > DEFAULT_MAX_FILE_BYTES {
            bail!("function `{function}`: {} grew over the limit of a file while deploying", path.display());
        }
        let sha = wisp_core::spec::sha256_hex(&data);
        bytes += data.len();
        if upload(client, data, &sha, true)
            .await
            .with_context(|| format!("function `{function}`: file {guest:?} ({})", path.display()))?
        {
            uploaded += 1;
        }
        map.insert(guest.clone(), sha);
    }
    println!(
        "✓ {function}: {} files ({}), {uploaded} uploaded, {} already uploaded",
        map.len(),
        human_bytes(bytes),
        map.len() - uploaded
    );
    Ok(map)
}
