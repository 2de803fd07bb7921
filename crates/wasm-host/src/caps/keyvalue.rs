//! The key-value capability: `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft` (the version `wasmtime serve
//! -S keyvalue` and wasmCloud speak), served from the node's key-value backend (a [`KvStore`]; embedded
//! SQLite by default, its own database file).
//!
//! A guest opens a store by label; the function's grant (`key_value_stores`) lists the labels it may open, and
//! each label maps to a prefix scoped by namespace and app ([`wisp_core::kv::scope`]), so no guess of a name
//! reaches another app's data. `increment` is one atomic step of the backend (concurrent instances never lose
//! an update, and never retry against each other). Values of `increment` are decimal
//! text, as in wasmtime's implementation, so `get` reads them the same way everywhere.

use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
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

/// The interfaces served (without version).
pub const INTERFACES: &[&str] = &["wasi:keyvalue/store", "wasi:keyvalue/atomics", "wasi:keyvalue/batch"];

/// An open store: the prefix its keys live under.
pub struct Bucket {
    prefix: String,
}

/// What a function's instances may open: label → storage prefix (built once per revision).
#[derive(Debug, Default, Clone)]
pub struct KvGrant {
    stores: Vec<(String, String)>,
}

impl KvGrant {
    /// The grant of `labels` for a function of `namespace`/`app`/`function`.
    pub fn new(namespace: &str, app: Option<&str>, function: &str, labels: &[String]) -> KvGrant {
        KvGrant {
            stores: labels.iter().map(|l| (l.clone(), wisp_core::kv::scope(namespace, app, function, l))).collect(),
        }
    }

    fn prefix(&self, label: &str) -> Option<&str> {
        self.stores.iter().find(|(l, _)| l == label).map(|(_, p)| p.as_str())
    }
}

/// An instance's slice of the capability.
pub(crate) struct Kv {
    pub(crate) grant: Arc<KvGrant>,
    pub(crate) backend: Option<Arc<dyn KvBackend>>,
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

/// Links the three interfaces; `view` projects an instance's state onto its [`KvView`].
pub(crate) fn link<T: Send + 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> KvView<'_>) -> anyhow::Result<()> {
    store::add_to_linker::<T, HasKv>(linker, view)?;
    atomics::add_to_linker::<T, HasKv>(linker, view)?;
    batch::add_to_linker::<T, HasKv>(linker, view)?;
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
    fn backend(&self) -> Result<Arc<dyn KvBackend>, Error> {
        self.kv.backend.clone().ok_or_else(|| Error::Other("this node has no key-value backend".into()))
    }

    fn prefix(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<String> {
        Ok(self.table.get(bucket)?.prefix.clone())
    }
}

impl store::Host for KvView<'_> {
    async fn open(&mut self, identifier: String) -> wasmtime::Result<Result<Resource<Bucket>, Error>> {
        let label = wisp_core::kv::store_label(&identifier);
        let Some(prefix) = self.kv.grant.prefix(label) else {
            return Ok(Err(Error::AccessDenied));
        };
        let prefix = prefix.to_string();
        Ok(Ok(self.table.push(Bucket { prefix })?))
    }
}

impl store::HostBucket for KvView<'_> {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let prefix = self.prefix(&bucket)?;
        let backend = self.backend();
        Ok(async move {
            check_key(&key)?;
            let e = backend?.get(&prefix, &key).await.map_err(other)?;
            Ok(e.map(|e| e.value))
        }
        .await)
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let prefix = self.prefix(&bucket)?;
        let backend = self.backend();
        Ok(async move {
            check_key(&key)?;
            check_value(&value)?;
            backend?.set(&prefix, &key, value).await.map_err(other)
        }
        .await)
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> wasmtime::Result<Result<(), Error>> {
        let prefix = self.prefix(&bucket)?;
        let backend = self.backend();
        Ok(async move {
            check_key(&key)?;
            backend?.delete(&prefix, &key).await.map_err(other)
        }
        .await)
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> wasmtime::Result<Result<bool, Error>> {
        let prefix = self.prefix(&bucket)?;
        let backend = self.backend();
        Ok(async move {
            check_key(&key)?;
            Ok(backend?.get(&prefix, &key).await.map_err(other)?.is_some())
        }
        .await)
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> wasmtime::Result<Result<KeyResponse, Error>> {
        let prefix = self.prefix(&bucket)?;
        let backend = self.backend();
        Ok(async move {
            let (keys, cursor) = backend?.page(&prefix, cursor.unwrap_or(0)).await.map_err(other)?;
            Ok(KeyResponse { keys, cursor })
        }
        .await)
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
        let backend = self.backend();
        Ok(async move {
            check_key(&key)?;
            backend?.increment(&prefix, &key, delta).await.map_err(other)?.map_err(Error::Other)
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
        let backend = self.backend();
        Ok(async move {
            let backend = backend?;
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                check_key(&key)?;
                let e = backend.get(&prefix, &key).await.map_err(other)?;
                out.push(e.map(|e| (key, e.value)));
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
        let backend = self.backend();
        Ok(async move {
            let backend = backend?;
            for (key, value) in key_values {
                check_key(&key)?;
                check_value(&value)?;
                backend.set(&prefix, &key, value).await.map_err(other)?;
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
        let backend = self.backend();
        Ok(async move {
            let backend = backend?;
            for key in keys {
                check_key(&key)?;
                backend.delete(&prefix, &key).await.map_err(other)?;
            }
            Ok(())
        }
        .await)
    }
}
