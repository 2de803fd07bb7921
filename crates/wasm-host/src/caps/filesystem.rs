//! The filesystem of every wasi:http instance: the function's files, read-only, at `/` — or, for a function
//! that mounts none, one empty, read-only root where every open is denied and noted in the invocation's
//! captured output.
//!
//! A guest with no preopened directory fails its opens inside its own libc, before the host sees them, so
//! nothing could say what it tried. So each instance is given one directory, `/`. Without files that is a
//! handle to a directory that was created empty and removed at once (nothing can ever appear in it; it has
//! no path on the host), shared by every instance of the node — handing it to an instance costs a
//! reference count, not a syscall. `open-at` on it (or on anything under it) is refused with `access` and
//! noted; the other path operations find nothing.
//!
//! A function with `files` gets its [`FilesRoot`] instead: the tree the node materialised once from the
//! revision's artifacts (see the registry), opened once per revision and shared by its instances the same
//! way. Opens go through wasmtime-wasi's own implementation over cap-std's sandboxed path resolution, so
//! `..`, absolute paths and symlinks cannot leave the tree; an open that would write, create or truncate
//! is refused with `read-only` and noted, and every other change (create-directory-at, unlink-file-at,
//! rename-at, symlink-at, set-times, write on a descriptor) is refused by wasmtime-wasi's read-only
//! permissions. WAGI modules (preview1) get the same tree preopened at `/` (or no directory at all).
//!
//! Metering (service `files`): an op is a file or directory of the tree opened, bytes are what the guest
//! read from it (`read`, and the streams of `read-via-stream`, counted as they are read).

use crate::meter::Current;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::filesystem::{Descriptor, Dir, FsPerms, OpenMode, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    DescriptorFlags, ErrorCode, Filesize, Host as _, HostDescriptor as _, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{DynInputStream, InputStream, Pollable, StreamResult};
use wisp_core::usage::Service;

/// The WIT interfaces this module shadows in wasmtime-wasi's linker (the versions wasmtime-wasi 48 defines;
/// guests importing any 0.2.x are served by them).
const PREOPENS: &str = "wasi:filesystem/preopens@0.2.12";
const TYPES: &str = "wasi:filesystem/types@0.2.12";

/// What `get-directories` returns: descriptors and the paths the guest sees them at.
type Preopens = Vec<(Resource<Descriptor>, String)>;

/// The node's empty root directory.
#[derive(Clone)]
pub(crate) struct EmptyRoot(Dir);

impl EmptyRoot {
    /// Creates an empty directory in the system temp dir, opens it and removes it: the handle stays valid
    /// and empty for the life of the process.
    pub(crate) fn new() -> anyhow::Result<EmptyRoot> {
        use anyhow::Context as _;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let path = std::env::temp_dir().join(format!("wisp-empty-root-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).with_context(|| format!("creating the guests' empty root {}", path.display()))?;
        let dir = std::fs::File::open(&path);
        let removed = std::fs::remove_dir(&path);
        let dir = dir.with_context(|| format!("opening the guests' empty root {}", path.display()))?;
        removed.with_context(|| format!("removing the guests' empty root {}", path.display()))?;
        Ok(EmptyRoot(Dir::new(dir, FsPerms::ReadOnly, OpenMode::READ, false)))
    }
}

/// A function's files: a materialised directory tree, opened read-only once and shared (cheap to clone).
#[derive(Clone)]
pub struct FilesRoot(Arc<(Dir, PathBuf)>);

impl std::fmt::Debug for FilesRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FilesRoot").field(&self.0.1).finish()
    }
}

impl FilesRoot {
    /// Opens the directory at `path` (written by the node, never changed after) for guests to read.
    pub fn open(path: &Path) -> anyhow::Result<FilesRoot> {
        use anyhow::Context as _;
        let dir =
            std::fs::File::open(path).with_context(|| format!("opening the files directory {}", path.display()))?;
        anyhow::ensure!(
            dir.metadata().with_context(|| format!("reading {}", path.display()))?.is_dir(),
            "{} is not a directory",
            path.display()
        );
        Ok(FilesRoot(Arc::new((Dir::new(dir, FsPerms::ReadOnly, OpenMode::READ, false), path.to_path_buf()))))
    }

    /// Where the tree is on the host.
    pub fn path(&self) -> &Path {
        &self.0.1
    }

    fn dir(&self) -> Dir {
        self.0.0.clone()
    }
}

/// Whether an open asks to change something: create, truncate or write (what wasmtime-wasi's read-only
/// permission refuses, checked here first so that the refusal is noted).
fn writes(oflags: OpenFlags, flags: DescriptorFlags) -> bool {
    oflags.intersects(OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::EXCLUSIVE)
        || flags.contains(DescriptorFlags::WRITE)
}

/// Shadows `get-directories` (answers the instance's files, or the empty root, as `/`) and
/// `[method]descriptor.open-at` (without files: denies and notes; with files: refuses writes, noted, and
/// opens the rest through wasmtime-wasi) in a linker that already has wasmtime-wasi's p2 interfaces.
/// `note` writes a line to the instance's captured output; `files` is the instance's files, if any;
/// `current` the invocation it serves (whose meter counts what is opened and read of the files).
pub(crate) fn link<T: WasiView + 'static>(
    linker: &mut Linker<T>,
    root: EmptyRoot,
    note: fn(&mut T, &str),
    files: fn(&T) -> Option<&FilesRoot>,
    current: fn(&T) -> &Arc<Current>,
) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    let root = Arc::new(root);
    linker.instance(PREOPENS)?.func_wrap(
        "get-directories",
        move |mut store, (): ()| -> wasmtime::Result<(Preopens,)> {
            let dir = files(store.data()).map_or_else(|| root.0.clone(), FilesRoot::dir);
            let fd = store.data_mut().ctx().table.push(Descriptor::Dir(dir))?;
            Ok((vec![(fd, "/".to_string())],))
        },
    )?;
    linker.instance(TYPES)?.func_wrap_async(
        "[method]descriptor.open-at",
        move |mut store,
              (dir, pflags, path, oflags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                let shown = || -> String { path.chars().take(256).flat_map(char::escape_debug).collect() };
                if files(store.data()).is_none() {
                    let line = format!(
                        "denied wasi:filesystem open-at \"{}\": this node grants functions no filesystem",
                        shown()
                    );
                    note(store.data_mut(), &line);
                    return Ok((Err(ErrorCode::Access),));
                }
                if writes(oflags, flags) {
                    let line = format!(
                        "denied wasi:filesystem open-at \"{}\" for writing: the function's files are read-only",
                        shown()
                    );
                    note(store.data_mut(), &line);
                    return Ok((Err(ErrorCode::ReadOnly),));
                }
                let mut view = store.data_mut().filesystem();
                let opened = view.open_at(dir, pflags, path, oflags, flags).await;
                let opened = match opened {
                    Ok(fd) => Ok(fd),
                    Err(e) => Err(view.convert_error_code(e)?),
                };
                if opened.is_ok() {
                    current(store.data()).meter.count(Service::Files, 1, 0);
                }
                Ok((opened,))
            })
        },
    )?;
    linker.instance(TYPES)?.func_wrap_async(
        "[method]descriptor.read",
        move |mut store, (fd, len, offset): (Resource<Descriptor>, Filesize, Filesize)| {
            Box::new(async move {
                let mut view = store.data_mut().filesystem();
                let read = match view.read(fd, len, offset).await {
                    Ok(r) => Ok(r),
                    Err(e) => Err(view.convert_error_code(e)?),
                };
                if let Ok((bytes, _)) = &read
                    && files(store.data()).is_some()
                {
                    current(store.data()).meter.count(Service::Files, 0, bytes.len() as u64);
                }
                Ok((read,))
            })
        },
    )?;
    linker.instance(TYPES)?.func_wrap(
        "[method]descriptor.read-via-stream",
        move |mut store,
              (fd, offset): (Resource<Descriptor>, Filesize)|
              -> wasmtime::Result<(Result<Resource<DynInputStream>, ErrorCode>,)> {
            let mut view = store.data_mut().filesystem();
            let stream = match view.read_via_stream(fd, offset) {
                Ok(s) => s,
                Err(e) => return Ok((Err(view.convert_error_code(e)?),)),
            };
            if files(store.data()).is_none() {
                return Ok((Ok(stream),));
            }
            // Counted as the guest reads it: the stream is swapped for a counting one (before anything can
            // have subscribed to it).
            let current = current(store.data()).clone();
            let table = &mut store.data_mut().ctx().table;
            let inner = table.delete(stream)?;
            let counted: DynInputStream = Box::new(Counted { inner, current });
            Ok((Ok(table.push(counted)?),))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A file's input stream whose reads are counted on the meter of the invocation that opened it.
struct Counted {
    inner: DynInputStream,
    current: Arc<Current>,
}

impl Counted {
    fn count(&self, read: StreamResult<bytes::Bytes>) -> StreamResult<bytes::Bytes> {
        if let Ok(b) = &read {
            self.current.meter.count(Service::Files, 0, b.len() as u64);
        }
        read
    }
}

#[async_trait::async_trait]
impl Pollable for Counted {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[async_trait::async_trait]
impl InputStream for Counted {
    fn read(&mut self, size: usize) -> StreamResult<bytes::Bytes> {
        let read = self.inner.read(size);
        self.count(read)
    }

    async fn blocking_read(&mut self, size: usize) -> StreamResult<bytes::Bytes> {
        let read = self.inner.blocking_read(size).await;
        self.count(read)
    }

    fn skip(&mut self, n: usize) -> StreamResult<usize> {
        self.inner.skip(n)
    }

    async fn blocking_skip(&mut self, n: usize) -> StreamResult<usize> {
        self.inner.blocking_skip(n).await
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::component::ResourceTable;
    use wasmtime_wasi::filesystem::{WasiFilesystemCtx, WasiFilesystemCtxView};

    /// What the guest gets for opening `path` (read-only) under the root, through wasmtime-wasi's own
    /// implementation: the escape checks are cap-std's, on the real filesystem.
    async fn open(root: &FilesRoot, path: &str, oflags: OpenFlags, flags: DescriptorFlags) -> Result<(), ErrorCode> {
        let mut table = ResourceTable::new();
        let mut ctx = WasiFilesystemCtx::default();
        let mut view = WasiFilesystemCtxView { ctx: &mut ctx, table: &mut table };
        let fd = view.table.push(Descriptor::Dir(root.dir())).unwrap();
        match view.open_at(fd, PathFlags::SYMLINK_FOLLOW, path.into(), oflags, flags).await {
            Ok(_) => Ok(()),
            Err(e) => Err(view.convert_error_code(e).unwrap()),
        }
    }

    #[tokio::test]
    async fn the_tree_is_readable_and_nothing_outside_it_is() {
        let base = std::env::temp_dir().join(format!("wisp-files-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let tree = base.join("tree");
        std::fs::create_dir_all(tree.join("static")).unwrap();
        std::fs::write(tree.join("static/a.txt"), "a").unwrap();
        std::fs::write(base.join("secret.txt"), "outside").unwrap();
        // Links out of the tree (none are ever materialised; cap-std refuses them anyway).
        std::os::unix::fs::symlink(base.join("secret.txt"), tree.join("abs-link")).unwrap();
        std::os::unix::fs::symlink("../secret.txt", tree.join("rel-link")).unwrap();
        std::os::unix::fs::symlink("../../secret.txt", tree.join("static/up-link")).unwrap();
        let root = FilesRoot::open(&tree).unwrap();
        let read = DescriptorFlags::READ;
        assert_eq!(open(&root, "static/a.txt", OpenFlags::empty(), read).await, Ok(()));
        assert_eq!(open(&root, "static", OpenFlags::DIRECTORY, read).await, Ok(()));
        for escape in
            ["../secret.txt", "static/../../secret.txt", "/etc/passwd", "abs-link", "rel-link", "static/up-link"]
        {
            let got = open(&root, escape, OpenFlags::empty(), read).await;
            assert!(matches!(got, Err(ErrorCode::NotPermitted | ErrorCode::Access)), "{escape}: {got:?}");
        }
        // wasmtime-wasi's read-only permission refuses writes too (the linked open-at refuses them first).
        assert_eq!(
            open(&root, "static/a.txt", OpenFlags::empty(), DescriptorFlags::WRITE).await,
            Err(ErrorCode::NotPermitted)
        );
        assert_eq!(open(&root, "new.txt", OpenFlags::CREATE, read).await, Err(ErrorCode::NotPermitted));
        assert!(writes(OpenFlags::TRUNCATE, read) && writes(OpenFlags::empty(), DescriptorFlags::WRITE));
        assert!(!writes(OpenFlags::DIRECTORY, read | DescriptorFlags::MUTATE_DIRECTORY));
        assert_eq!(std::fs::read_to_string(tree.join("static/a.txt")).unwrap(), "a");
        assert!(FilesRoot::open(&tree.join("static/a.txt")).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
