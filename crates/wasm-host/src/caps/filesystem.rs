//! The filesystem of every wasi:http instance: one empty, read-only root (`/`), and every open denied and
//! noted in the invocation's captured output.
//!
//! A guest with no preopened directory fails its opens inside its own libc, before the host sees them, so
//! nothing could say what it tried. So each instance is given one directory, `/`: a handle to a directory
//! that was created empty and removed at once (nothing can ever appear in it; it has no path on the host),
//! shared by every instance of the node — handing it to an instance costs a reference count, not a
//! syscall. `open-at` on it (or on anything under it) is refused with `access` and noted; the other
//! path operations find nothing. WAGI modules (preview1) keep no directories at all.

use std::sync::Arc;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::filesystem::{Descriptor, Dir, FsPerms, OpenMode};
use wasmtime_wasi::p2::bindings::filesystem::types::{DescriptorFlags, ErrorCode, OpenFlags, PathFlags};

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

/// Shadows `get-directories` (answers the empty root as `/`) and `[method]descriptor.open-at` (denies and
/// notes) in a linker that already has wasmtime-wasi's p2 interfaces. `note` writes a line to the
/// instance's captured output.
pub(crate) fn link<T: WasiView + 'static>(
    linker: &mut Linker<T>,
    root: EmptyRoot,
    note: fn(&mut T, &str),
) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    let root = Arc::new(root);
    linker.instance(PREOPENS)?.func_wrap(
        "get-directories",
        move |mut store, (): ()| -> wasmtime::Result<(Preopens,)> {
            let fd = store.data_mut().ctx().table.push(Descriptor::Dir(root.0.clone()))?;
            Ok((vec![(fd, "/".to_string())],))
        },
    )?;
    linker.instance(TYPES)?.func_wrap(
        "[method]descriptor.open-at",
        move |mut store,
              (_dir, _pflags, path, _oflags, _flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )|
              -> wasmtime::Result<(Result<Resource<Descriptor>, ErrorCode>,)> {
            let shown: String = path.chars().take(256).flat_map(char::escape_debug).collect();
            note(
                store.data_mut(),
                &format!("denied wasi:filesystem open-at \"{shown}\": this node grants functions no filesystem"),
            );
            Ok((Err(ErrorCode::Access),))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
