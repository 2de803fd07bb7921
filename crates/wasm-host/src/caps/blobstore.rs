//! The blob capability: `wasi:blobstore/{blobstore,container,types}@0.2.0-draft` (the version wasmCloud
//! serves), over the node's blob backend (a [`BlobBackend`]; embedded: files under `<data-dir>/blobs` with a
//! SQLite index).
//!
//! A guest names containers; the function's grant (`blob_containers`) lists the ones it may create, open,
//! delete, copy from or to — any other name is "access denied", naming the grant. Each granted name maps to
//! a scope of the function's namespace and app ([`wisp_core::kv::scope`]), so no guess of a container or
//! object name reaches another app's objects. Object names are data ([`wisp_core::blob::check_name`]).
//!
//! Values stream both ways ([`values`]): `outgoing-value-write-body` hands out an output stream that writes
//! through to the backend's staging file with bounded buffering (backpressure through `check-write` and
//! its pollable), visible as the object only at `finish`; `incoming-value-consume-async` an input stream
//! that reads the object in chunks. `incoming-value-consume-sync` is capped at [`MAX_SYNC_BYTES`]. The
//! streams are `wasi:io@0.2.1`'s, linked to wasmtime-wasi's `wasi:io` (a 0.2.x import is served by it), so
//! they are the same streams every other WASI interface hands out.

mod values;

use super::Grant;
use crate::meter::Current;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wisp_core::usage::Service;
use wisp_store::guest_blob::{BlobBackend, BlobError};

pub use values::{IncomingValue, MAX_OPEN_VALUES, MAX_SYNC_BYTES, OutgoingValue};

mod bindings {
    wasmtime::component::bindgen!({
        path: ["../../wit/io-0.2.1", "../../wit/blobstore-0.2.0-draft"],
        world: "wasi:blobstore/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:blobstore/types.outgoing-value": super::OutgoingValue,
            "wasi:blobstore/types.incoming-value": super::IncomingValue,
            "wasi:blobstore/container.container": super::Container,
            "wasi:blobstore/container.stream-object-names": super::ObjectNames,
        },
    });
}

use bindings::wasi::blobstore::types::{ContainerMetadata, ObjectId, ObjectMetadata};
use bindings::wasi::blobstore::{blobstore, container, types};

/// The interfaces served, with version; importing one needs a `blob_containers` grant at deploy.
pub const INTERFACES: &[&str] = &[
    "wasi:blobstore/blobstore@0.2.0-draft",
    "wasi:blobstore/container@0.2.0-draft",
    "wasi:blobstore/types@0.2.0-draft",
];

/// An open container: the name the guest knows it by and its scope.
pub struct Container {
    label: String,
    scope: String,
}

/// A listing in progress: the last name answered.
pub struct ObjectNames {
    scope: String,
    after: Option<String>,
    done: bool,
}

/// An instance's slice of the capability.
pub(crate) struct Blobs {
    pub(crate) grant: Arc<Grant>,
    pub(crate) backend: Option<Arc<dyn BlobBackend>>,
    /// The invocation served now: its deadline bounds each backend call; calls and the object bytes the
    /// guest's streams move are counted on its meter.
    pub(crate) current: Arc<Current>,
    /// Values of this instance holding an object open (an upload or a download; at most
    /// [`MAX_OPEN_VALUES`]).
    pub(crate) open: values::OpenCount,
    /// The instance's captured output: where an error the WIT cannot carry is noted.
    pub(crate) logs: crate::logs::LogPipe,
}

/// What the generated host traits are implemented on: the instance's capability state and its table.
pub(crate) struct BlobView<'a> {
    blobs: &'a Blobs,
    table: &'a mut ResourceTable,
}

impl<'a> BlobView<'a> {
    /// The view of an instance's capability state and table.
    pub(crate) fn new(blobs: &'a Blobs, table: &'a mut ResourceTable) -> Self {
        BlobView { blobs, table }
    }
}

struct HasBlobs;

impl HasData for HasBlobs {
    type Data<'a> = BlobView<'a>;
}

/// Links the three interfaces; `view` projects an instance's state onto its [`BlobView`]. (`wasi:io` is
/// wasmtime-wasi's, linked with the WASI base.)
pub(crate) fn link<T: Send + 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> BlobView<'_>) -> anyhow::Result<()> {
    types::add_to_linker::<T, HasBlobs>(linker, view)?;
    container::add_to_linker::<T, HasBlobs>(linker, view)?;
    blobstore::add_to_linker::<T, HasBlobs>(linker, view)?;
    Ok(())
}

/// A guest-facing error (`wasi:blobstore`'s `error` is a string).
type Error = String;

fn failed(e: BlobError) -> Error {
    if matches!(e, BlobError::Backend(_)) {
        tracing::warn!(error = %e, "blob backend error");
    }
    e.to_string()
}

/// Seconds since the epoch (the WIT's timestamps) of unix milliseconds.
fn seconds(ms: u64) -> u64 {
    ms / 1000
}

/// The operations that need no table, on [`Blobs`] (a host call's future holds them across awaits, and the
/// view's table is not `Sync`).
impl Blobs {
    fn backend(&self) -> Result<Arc<dyn BlobBackend>, Error> {
        self.backend.clone().ok_or_else(|| "this node has no blob backend".to_string())
    }

    /// The scope of container `name`, if the grant lists it.
    fn scope(&self, name: &str) -> Result<String, Error> {
        match self.grant.scope(name) {
            Some(scope) => Ok(scope.to_string()),
            None => {
                let granted: Vec<String> = self.grant.labels().map(|l| format!("{l:?}")).collect();
                Err(format!(
                    "access denied: container {name:?} is not in this function's blob_containers grant ({}); add it to blob_containers to use it",
                    if granted.is_empty() { "which is empty".to_string() } else { format!("[{}]", granted.join(", ")) }
                ))
            }
        }
    }

    /// Runs a backend operation within the invocation's deadline, counting it.
    async fn within<T>(&self, op: impl Future<Output = Result<T, BlobError>>) -> Result<T, Error> {
        self.current.meter.count(Service::Blobs, 1, 0);
        let op = crate::trace::host_call("blobs", "blobstore call", op);
        match tokio::time::timeout_at(self.current.deadline.into(), op).await {
            Ok(r) => r.map_err(failed),
            Err(_) => Err("the invocation's deadline passed during a blobstore call".into()),
        }
    }

    fn check_name(name: &str) -> Result<(), Error> {
        wisp_core::blob::check_name(name)
    }

    async fn open(&self, name: &str, create: bool) -> Result<Container, Error> {
        let scope = self.scope(name)?;
        let backend = self.backend()?;
        if create {
            self.within(backend.create_container(&scope)).await?;
        } else if self.within(backend.container(&scope)).await?.is_none() {
            return Err(format!("container {name:?} does not exist; create it with create-container"));
        }
        Ok(Container { label: name.to_string(), scope })
    }

    async fn copy_or_move(&self, src: ObjectId, dest: ObjectId, rename: bool) -> Result<(), Error> {
        let (from, to) = (self.scope(&src.container)?, self.scope(&dest.container)?);
        Self::check_name(&src.object)?;
        Self::check_name(&dest.object)?;
        let backend = self.backend()?;
        let (a, b) = ((from.as_str(), src.object.as_str()), (to.as_str(), dest.object.as_str()));
        if rename { self.within(backend.rename(a, b)).await } else { self.within(backend.copy(a, b)).await }
    }
}

impl BlobView<'_> {
    fn container(&self, c: &Resource<Container>) -> wasmtime::Result<(String, String)> {
        let c = self.table.get(c)?;
        Ok((c.label.clone(), c.scope.clone()))
    }
}

impl blobstore::Host for BlobView<'_> {
    async fn create_container(&mut self, name: String) -> wasmtime::Result<Result<Resource<Container>, Error>> {
        Ok(match self.blobs.open(&name, true).await {
            Ok(c) => Ok(self.table.push(c)?),
            Err(e) => Err(e),
        })
    }

    async fn get_container(&mut self, name: String) -> wasmtime::Result<Result<Resource<Container>, Error>> {
        Ok(match self.blobs.open(&name, false).await {
            Ok(c) => Ok(self.table.push(c)?),
            Err(e) => Err(e),
        })
    }

    async fn delete_container(&mut self, name: String) -> wasmtime::Result<Result<(), Error>> {
        let b = self.blobs;
        Ok(async {
            let scope = b.scope(&name)?;
            if b.within(b.backend()?.delete_container(&scope)).await? {
                Ok(())
            } else {
                Err(format!("container {name:?} does not exist"))
            }
        }
        .await)
    }

    async fn container_exists(&mut self, name: String) -> wasmtime::Result<Result<bool, Error>> {
        let b = self.blobs;
        Ok(async {
            let scope = b.scope(&name)?;
            Ok(b.within(b.backend()?.container(&scope)).await?.is_some())
        }
        .await)
    }

    async fn copy_object(&mut self, src: ObjectId, dest: ObjectId) -> wasmtime::Result<Result<(), Error>> {
        Ok(self.blobs.copy_or_move(src, dest, false).await)
    }

    async fn move_object(&mut self, src: ObjectId, dest: ObjectId) -> wasmtime::Result<Result<(), Error>> {
        Ok(self.blobs.copy_or_move(src, dest, true).await)
    }
}

impl container::Host for BlobView<'_> {}

impl container::HostContainer for BlobView<'_> {
    async fn name(&mut self, c: Resource<Container>) -> wasmtime::Result<Result<String, Error>> {
        Ok(Ok(self.table.get(&c)?.label.clone()))
    }

    async fn info(&mut self, c: Resource<Container>) -> wasmtime::Result<Result<ContainerMetadata, Error>> {
        let (label, scope) = self.container(&c)?;
        let b = self.blobs;
        Ok(async {
            match b.within(b.backend()?.container(&scope)).await? {
                Some(info) => Ok(ContainerMetadata { name: label, created_at: seconds(info.created_at_ms) }),
                None => Err(format!("container {label:?} does not exist any more")),
            }
        }
        .await)
    }

    async fn get_data(
        &mut self,
        c: Resource<Container>,
        name: String,
        start: u64,
        end: u64,
    ) -> wasmtime::Result<Result<Resource<IncomingValue>, Error>> {
        let (label, scope) = self.container(&c)?;
        let b = self.blobs;
        let found = async {
            Blobs::check_name(&name)?;
            let guard = b.open.take()?;
            if end < start {
                return Err(format!(
                    "the range ends (byte {end}) before it starts (byte {start}); offsets are inclusive"
                ));
            }
            let len = (end - start).checked_add(1);
            match b.within(b.backend()?.download(&scope, &name, start, len)).await? {
                Some(d) => Ok((d, guard)),
                None => Err(format!("no object {name:?} in container {label:?}")),
            }
        }
        .await;
        Ok(match found {
            Ok((d, guard)) => Ok(self.table.push(IncomingValue::new(d, guard))?),
            Err(e) => Err(e),
        })
    }

    async fn write_data(
        &mut self,
        c: Resource<Container>,
        name: String,
        data: Resource<OutgoingValue>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (_, scope) = self.container(&c)?;
        if let Err(e) = Blobs::check_name(&name) {
            return Ok(Err(e));
        }
        self.table.get_mut(&data)?.target = Some((scope, name));
        Ok(Ok(()))
    }

    async fn list_objects(&mut self, c: Resource<Container>) -> wasmtime::Result<Result<Resource<ObjectNames>, Error>> {
        let (_, scope) = self.container(&c)?;
        Ok(Ok(self.table.push(ObjectNames { scope, after: None, done: false })?))
    }

    async fn delete_object(&mut self, c: Resource<Container>, name: String) -> wasmtime::Result<Result<(), Error>> {
        let (_, scope) = self.container(&c)?;
        let b = self.blobs;
        Ok(async {
            Blobs::check_name(&name)?;
            b.within(b.backend()?.delete(&scope, &name)).await.map(drop)
        }
        .await)
    }

    async fn delete_objects(
        &mut self,
        c: Resource<Container>,
        names: Vec<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (_, scope) = self.container(&c)?;
        let b = self.blobs;
        Ok(async {
            let backend = b.backend()?;
            for name in names {
                Blobs::check_name(&name)?;
                b.within(backend.delete(&scope, &name)).await?;
            }
            Ok(())
        }
        .await)
    }

    async fn has_object(&mut self, c: Resource<Container>, name: String) -> wasmtime::Result<Result<bool, Error>> {
        let (_, scope) = self.container(&c)?;
        let b = self.blobs;
        Ok(async {
            Blobs::check_name(&name)?;
            Ok(b.within(b.backend()?.stat(&scope, &name)).await?.is_some())
        }
        .await)
    }

    async fn object_info(
        &mut self,
        c: Resource<Container>,
        name: String,
    ) -> wasmtime::Result<Result<ObjectMetadata, Error>> {
        let (label, scope) = self.container(&c)?;
        let b = self.blobs;
        Ok(async {
            Blobs::check_name(&name)?;
            match b.within(b.backend()?.stat(&scope, &name)).await? {
                Some(o) => Ok(ObjectMetadata {
                    name: o.name,
                    container: label,
                    created_at: seconds(o.created_at_ms),
                    size: o.size,
                }),
                None => Err(format!("no object {name:?} in container {label:?}")),
            }
        }
        .await)
    }

    async fn clear(&mut self, c: Resource<Container>) -> wasmtime::Result<Result<(), Error>> {
        let (_, scope) = self.container(&c)?;
        let b = self.blobs;
        Ok(async { b.within(b.backend()?.clear(&scope)).await }.await)
    }

    async fn drop(&mut self, c: Resource<Container>) -> wasmtime::Result<()> {
        self.table.delete(c)?;
        Ok(())
    }
}

/// Names per backend listing call when a guest asks for more.
const LIST_BATCH: u64 = 1000;

impl BlobView<'_> {
    /// The next up to `len` names of a listing (at most [`LIST_BATCH`] per call), and whether it ended.
    async fn next_names(
        &mut self,
        names: &Resource<ObjectNames>,
        len: u64,
    ) -> wasmtime::Result<Result<(Vec<String>, bool), Error>> {
        let (scope, after, done) = {
            let n = self.table.get(names)?;
            (n.scope.clone(), n.after.clone(), n.done)
        };
        if done {
            return Ok(Ok((Vec::new(), true)));
        }
        if len == 0 {
            return Ok(Ok((Vec::new(), false)));
        }
        let want = len.min(LIST_BATCH) as usize;
        let b = self.blobs;
        let page = async { b.within(b.backend()?.list(&scope, "", after.as_deref(), want)).await }.await;
        Ok(match page {
            Ok(page) => {
                let end = page.len() < want;
                let names_out: Vec<String> = page.into_iter().map(|o| o.name).collect();
                let n = self.table.get_mut(names)?;
                if let Some(last) = names_out.last() {
                    n.after = Some(last.clone());
                }
                n.done = end;
                Ok((names_out, end))
            }
            Err(e) => Err(e),
        })
    }
}

impl container::HostStreamObjectNames for BlobView<'_> {
    async fn read_stream_object_names(
        &mut self,
        names: Resource<ObjectNames>,
        len: u64,
    ) -> wasmtime::Result<Result<(Vec<String>, bool), Error>> {
        self.next_names(&names, len).await
    }

    async fn skip_stream_object_names(
        &mut self,
        names: Resource<ObjectNames>,
        num: u64,
    ) -> wasmtime::Result<Result<(u64, bool), Error>> {
        Ok(self.next_names(&names, num).await?.map(|(n, end)| (n.len() as u64, end)))
    }

    async fn drop(&mut self, names: Resource<ObjectNames>) -> wasmtime::Result<()> {
        self.table.delete(names)?;
        Ok(())
    }
}

impl types::Host for BlobView<'_> {}
