//! `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft2`: the copy of the proposal Spin ships (and the Spin SDKs
//! import). Same stores and grant as `@0.2.0-draft`; it differs in its cursor (a string), its signed
//! `increment`, its `get-many` (every key answered, with or without a value) and its compare-and-swap.
//!
//! Compare-and-swap: `cas.new(bucket, key)` reads the entry and its version; `swap(cas, value)` writes only if
//! the entry is still at that version (absent stays absent), in one step of the backend. A lost race answers
//! `cas-failed` with a fresh handle holding what won, so the guest can retry from it.

use super::{Bucket, KvView, check_key, check_value, other};
use wasmtime::component::Resource;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/keyvalue-0.2.0-draft2",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": crate::caps::keyvalue::Bucket,
            "wasi:keyvalue/atomics.cas": crate::caps::keyvalue::Cas,
        },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};
use store::{Error, KeyResponse};

/// The interfaces served, with version.
pub(crate) const INTERFACES: &[&str] =
    &["wasi:keyvalue/store@0.2.0-draft2", "wasi:keyvalue/atomics@0.2.0-draft2", "wasi:keyvalue/batch@0.2.0-draft2"];

/// A compare-and-swap handle: the entry as it was read.
pub struct Cas {
    prefix: String,
    key: String,
    version: Option<u64>,
    value: Option<Vec<u8>>,
}

/// Links the three interfaces.
pub(crate) fn link<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    view: fn(&mut T) -> KvView<'_>,
) -> anyhow::Result<()> {
    store::add_to_linker::<T, super::HasKv>(linker, view)?;
    atomics::add_to_linker::<T, super::HasKv>(linker, view)?;
    batch::add_to_linker::<T, super::HasKv>(linker, view)?;
    Ok(())
}

fn err(e: super::Error) -> Error {
    match e {
        super::Error::NoSuchStore => Error::NoSuchStore,
        super::Error::AccessDenied => Error::AccessDenied,
        super::Error::Other(m) => Error::Other(m),
    }
}

impl super::Kv {
    async fn read_cas(&self, prefix: String, key: String) -> Result<Cas, Error> {
        crate::trace::host_call("kv", "kv get", async {
            check_key(&key).map_err(err)?;
            let entry = self.backend().map_err(err)?.get(&prefix, &key).await.map_err(other).map_err(err)?;
            let (value, version) = entry.map(|e| (Some(e.value), Some(e.version))).unwrap_or_default();
            self.count(value.as_ref().map_or(0, Vec::len));
            Ok(Cas { prefix, key, version, value })
        })
        .await
    }
}

impl store::Host for KvView<'_> {
    async fn open(&mut self, identifier: String) -> wasmtime::Result<Result<Resource<Bucket>, Error>> {
        Ok(match self.kv.open_bucket(&identifier) {
            Ok(bucket) => Ok(self.table.push(bucket)?),
            Err(e) => Err(err(e)),
        })
    }
}

impl store::HostBucket for KvView<'_> {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let prefix = self.prefix(&bucket)?;
        Ok(self.kv.get_value(&prefix, &key).await.map_err(err))
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let prefix = self.prefix(&bucket)?;
        Ok(self.kv.set_value(&prefix, &key, value).await.map_err(err))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> wasmtime::Result<Result<(), Error>> {
        let prefix = self.prefix(&bucket)?;
        Ok(self.kv.delete_key(&prefix, &key).await.map_err(err))
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> wasmtime::Result<Result<bool, Error>> {
        let prefix = self.prefix(&bucket)?;
        Ok(self.kv.get_value(&prefix, &key).await.map(|v| v.is_some()).map_err(err))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<KeyResponse, Error>> {
        let prefix = self.prefix(&bucket)?;
        let offset = match cursor.as_deref().map(str::parse::<u64>) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                return Ok(Err(Error::Other(format!(
                    "the cursor {:?} is not one list-keys returned",
                    cursor.unwrap_or_default()
                ))));
            }
        };
        Ok(self
            .kv
            .page(&prefix, offset)
            .await
            .map(|(keys, next)| KeyResponse { keys, cursor: next.map(|n| n.to_string()) })
            .map_err(err))
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
        delta: i64,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let prefix = self.prefix(&bucket)?;
        Ok(self.kv.increment_by(&prefix, &key, delta).await.map_err(err))
    }

    async fn swap(&mut self, cas: Resource<Cas>, value: Vec<u8>) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let cas = self.table.delete(cas)?;
        if let Err(e) = check_value(&value) {
            return Ok(Err(atomics::CasError::StoreError(err(e))));
        }
        let backend = match self.kv.backend() {
            Ok(b) => b,
            Err(e) => return Ok(Err(atomics::CasError::StoreError(err(e)))),
        };
        self.kv.count(value.len());
        let swapped = backend.swap(&cas.prefix, &cas.key, cas.version, value);
        match crate::trace::host_call("kv", "kv swap", swapped).await {
            Ok(true) => Ok(Ok(())),
            Ok(false) => match self.kv.read_cas(cas.prefix, cas.key).await {
                Ok(fresh) => Ok(Err(atomics::CasError::CasFailed(self.table.push(fresh)?))),
                Err(e) => Ok(Err(atomics::CasError::StoreError(e))),
            },
            Err(e) => Ok(Err(atomics::CasError::StoreError(err(other(e))))),
        }
    }
}

impl atomics::HostCas for KvView<'_> {
    async fn new(&mut self, bucket: Resource<Bucket>, key: String) -> wasmtime::Result<Result<Resource<Cas>, Error>> {
        let prefix = self.prefix(&bucket)?;
        Ok(match self.kv.read_cas(prefix, key).await {
            Ok(cas) => Ok(self.table.push(cas)?),
            Err(e) => Err(e),
        })
    }

    async fn current(&mut self, cas: Resource<Cas>) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok(Ok(self.table.get(&cas)?.value.clone()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, Error>> {
        let prefix = self.prefix(&bucket)?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            match self.kv.get_value(&prefix, &key).await {
                Ok(v) => out.push((key, v)),
                Err(e) => return Ok(Err(err(e))),
            }
        }
        Ok(Ok(out))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let prefix = self.prefix(&bucket)?;
        for (key, value) in key_values {
            if let Err(e) = self.kv.set_value(&prefix, &key, value).await {
                return Ok(Err(err(e)));
            }
        }
        Ok(Ok(()))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let prefix = self.prefix(&bucket)?;
        for key in keys {
            if let Err(e) = self.kv.delete_key(&prefix, &key).await {
                return Ok(Err(err(e)));
            }
        }
        Ok(Ok(()))
    }
}
