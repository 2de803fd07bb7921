//! The key-value capability: `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft` (the version `wasmtime serve
//! -S keyvalue` and wasmCloud speak), `@0.2.0-draft2` (Spin's copy, [`draft2`]) and `fermyon:spin/key-value@2.0.0`
//! ([`spin`]), all served from the node's key-value backend (a [`KvBackend`]; embedded SQLite by default, its
//! own database file). The three share stores: a value one of them writes, the others read.
//!
//! A guest opens a store by label; the function's grant (`key_value_stores`) lists the labels it may open, and
//! each label maps to a prefix scoped by namespace and app ([`wisp_core::kv::scope`]), so no guess of a name
//! reaches another app's data. `increment` is one atomic step of the backend (concurrent instances never lose
//! an update, and never retry against each other). Values of `increment` are decimal
//! text, as in wasmtime's implementation, so `get` reads them the same way everywhere.

mod draft2;
mod spin;

use crate::meter::Current;
pub use draft2::Cas;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wisp_core::usage::Service;
use wisp_store::StoreError;
use wisp_store::guest_kv::KvBackend;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/keyvalue-0.2.0-draft",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
        },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};
use store::{Error, KeyResponse};

/// The interfaces served, with version: importing one of the standard `@0.2.0-draft` ones needs a grant at
/// deploy; Spin's (`@0.2.0-draft2`, `fermyon:spin/key-value`) are imported by every component a Spin SDK
/// builds, used or not, so for them an ungranted `open` is refused at run time instead.
pub const INTERFACES: &[&str] =
    &["wasi:keyvalue/store@0.2.0-draft", "wasi:keyvalue/atomics@0.2.0-draft", "wasi:keyvalue/batch@0.2.0-draft"];

/// Every key-value interface served (for the list of what this node serves).
pub fn served() -> impl Iterator<Item = &'static str> {
    INTERFACES.iter().chain(draft2::INTERFACES).chain(spin::INTERFACES).copied()
}

/// An open store: the prefix its keys live under.
pub struct Bucket {
    prefix: String,
}

/// An instance's slice of the capability.
pub(crate) struct Kv {
    pub(crate) grant: Arc<super::Grant>,
    pub(crate) backend: Option<Arc<dyn KvBackend>>,
    /// The invocation served now: each operation that reaches the backend is counted on its meter.
    pub(crate) current: Arc<Current>,
}

/// What the generated host traits are implemented on: the instance's capability state and its table.
pub(crate) struct KvView<'a> {
    kv: &'a Kv,
    table: &'a mut ResourceTable,
}

struct HasKv;

impl HasData for HasKv {
    type Data<'a> = KvView<'a>;
}

impl<'a> KvView<'a> {
    /// The view of an instance's capability state and table.
    pub(crate) fn new(kv: &'a Kv, table: &'a mut ResourceTable) -> Self {
        KvView { kv, table }
    }
}

/// Links every version; `view` projects an instance's state onto its [`KvView`].
pub(crate) fn link<T: Send + 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> KvView<'_>) -> anyhow::Result<()> {
    store::add_to_linker::<T, HasKv>(linker, view)?;
    atomics::add_to_linker::<T, HasKv>(linker, view)?;
    batch::add_to_linker::<T, HasKv>(linker, view)?;
    draft2::link(linker, view)?;
    spin::link(linker, view)?;
    Ok(())
}

fn other(e: StoreError) -> Error {
    tracing::warn!(error = %e, "key-value backend error");
    Error::Other(format!("the key-value store failed: {e}"))
}

fn check_key(key: &str) -> Result<(), Error> {
    wisp_core::kv::check_key(key).map_err(Error::Other)
}

fn check_value(value: &[u8]) -> Result<(), Error> {
    wisp_core::kv::check_value(value.len()).map_err(Error::Other)
}

impl KvView<'_> {
    fn prefix(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<String> {
        Ok(self.table.get(bucket)?.prefix.clone())
    }
}

/// The operations every version shares, answering this version's error (the others map it onto theirs). On
/// [`Kv`], not the view: a host call's future holds them across awaits, and the view's table is not `Sync`.
impl Kv {
    fn backend(&self) -> Result<Arc<dyn KvBackend>, Error> {
        self.backend.clone().ok_or_else(|| Error::Other("this node has no key-value backend".into()))
    }

    /// Counts one operation moving `bytes` of values.
    fn count(&self, bytes: usize) {
        self.current.meter.count(Service::KeyValue, 1, bytes as u64);
    }

    /// The store `identifier` names, if the grant lists it.
    fn open_bucket(&self, identifier: &str) -> Result<Bucket, Error> {
        let label = wisp_core::kv::store_label(identifier);
        let prefix = self.grant.scope(label).ok_or(Error::AccessDenied)?;
        Ok(Bucket { prefix: prefix.to_string() })
    }

    async fn get_value(&self, prefix: &str, key: &str) -> Result<Option<Vec<u8>>, Error> {
        crate::trace::host_call("kv", "kv get", async {
            check_key(key)?;
            let value = self.backend()?.get(prefix, key).await.map_err(other)?.map(|e| e.value);
            self.count(value.as_ref().map_or(0, Vec::len));
            Ok(value)
        })
        .await
    }

    async fn set_value(&self, prefix: &str, key: &str, value: Vec<u8>) -> Result<(), Error> {
        crate::trace::host_call("kv", "kv set", async {
            check_key(key)?;
            check_value(&value)?;
            self.count(value.len());
            self.backend()?.set(prefix, key, value).await.map_err(other)
        })
        .await
    }

    async fn delete_key(&self, prefix: &str, key: &str) -> Result<(), Error> {
        crate::trace::host_call("kv", "kv delete", async {
            check_key(key)?;
            self.count(0);
            self.backend()?.delete(prefix, key).await.map_err(other)
        })
        .await
    }

    async fn page(&self, prefix: &str, offset: u64) -> Result<(Vec<String>, Option<u64>), Error> {
        crate::trace::host_call("kv", "kv list-keys", async {
            self.count(0);
            self.backend()?.page(prefix, offset).await.map_err(other)
        })
        .await
    }

    async fn increment_by(&self, prefix: &str, key: &str, delta: i64) -> Result<i64, Error> {
        crate::trace::host_call("kv", "kv increment", async {
            check_key(key)?;
            self.count(0);
            self.backend()?.increment(prefix, key, delta).await.map_err(other)?.map_err(Error::Other)
        })
        .await
    }
}

impl store::Host for KvView<'_> {
    async fn open(&mut self, identifier: String) -> wasmtime::Result<Result<Resource<Bucket>, Error>> {
        Ok(match self.kv.open_bucket(&identifier) {
            Ok(bucket) => Ok(self.table.push(bucket)?),
            Err(e) => Err(e),
        })
    }
}

impl store::HostBucket for KvView<'_> {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let prefix = self.prefix(&bucket)?;
        Ok(self.kv.get_value(&prefix, &key).await)
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let prefix = self.prefix(&bucket)?;
        Ok(self.kv.set_value(&prefix, &key, value).await)
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> wasmtime::Result<Result<(), Error>> {
        let prefix = self.prefix(&bucket)?;
        Ok(self.kv.delete_key(&prefix, &key).await)
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> wasmtime::Result<Result<bool, Error>> {
        let prefix = self.prefix(&bucket)?;
        Ok(self.kv.get_value(&prefix, &key).await.map(|v| v.is_some()))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> wasmtime::Result<Result<KeyResponse, Error>> {
        let prefix = self.prefix(&bucket)?;
        Ok(self.kv.page(&prefix, cursor.unwrap_or(0)).await.map(|(keys, cursor)| KeyResponse { keys, cursor }))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KvView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let prefix = self.prefix(&bucket)?;
        Ok(async {
            let delta =
                i64::try_from(delta).map_err(|_| Error::Other(format!("the delta {delta} is above i64::MAX")))?;
            let sum = self.kv.increment_by(&prefix, &key, delta).await?;
            u64::try_from(sum).map_err(|_| Error::Other(format!("the value of {key:?} is {sum}, below zero")))
        }
        .await)
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Option<(String, Vec<u8>)>>, Error>> {
        let prefix = self.prefix(&bucket)?;
        Ok(async {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let v = self.kv.get_value(&prefix, &key).await?;
                out.push(v.map(|v| (key, v)));
            }
            Ok(out)
        }
        .await)
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let prefix = self.prefix(&bucket)?;
        Ok(async {
            for (key, value) in key_values {
                self.kv.set_value(&prefix, &key, value).await?;
            }
            Ok(())
        }
        .await)
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let prefix = self.prefix(&bucket)?;
        Ok(async {
            for key in keys {
                self.kv.delete_key(&prefix, &key).await?;
            }
            Ok(())
        }
        .await)
    }
}
