//! `fermyon:spin/key-value@2.0.0`: Spin's own key-value interface, over the same stores and grant as the
//! `wasi:keyvalue` versions. A label outside the grant is `access-denied`, as under Spin.

use super::{Bucket, KvView};
use wasmtime::component::Resource;

mod bindings {
    wasmtime::component::bindgen!({
        inline: "package wisp:spin-kv; world kv { import fermyon:spin/key-value@2.0.0; }",
        path: "../../wit/spin-2.0.0",
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/key-value.store": crate::caps::keyvalue::Bucket,
        },
    });
}

use bindings::fermyon::spin::key_value::{self as kv, Error};

/// The interface served, with version.
pub(crate) const INTERFACES: &[&str] = &["fermyon:spin/key-value@2.0.0"];

/// `get-keys` answers every key at once (Spin's interface has no cursor); a store with more than this many
/// is an error naming the interface that pages.
const MAX_KEYS: usize = 100_000;

/// Links the interface.
pub(crate) fn link<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    view: fn(&mut T) -> KvView<'_>,
) -> anyhow::Result<()> {
    kv::add_to_linker::<T, super::HasKv>(linker, view)?;
    Ok(())
}

fn err(e: super::Error) -> Error {
    match e {
        super::Error::NoSuchStore => Error::NoSuchStore,
        super::Error::AccessDenied => Error::AccessDenied,
        super::Error::Other(m) => Error::Other(m),
    }
}

impl kv::Host for KvView<'_> {}

impl kv::HostStore for KvView<'_> {
    async fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<Bucket>, Error>> {
        Ok(match self.kv.open_bucket(&label) {
            Ok(bucket) => Ok(self.table.push(bucket)?),
            Err(e) => Err(err(e)),
        })
    }

    async fn get(&mut self, store: Resource<Bucket>, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let prefix = self.prefix(&store)?;
        Ok(self.kv.get_value(&prefix, &key).await.map_err(err))
    }

    async fn set(
        &mut self,
        store: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let prefix = self.prefix(&store)?;
        Ok(self.kv.set_value(&prefix, &key, value).await.map_err(err))
    }

    async fn delete(&mut self, store: Resource<Bucket>, key: String) -> wasmtime::Result<Result<(), Error>> {
        let prefix = self.prefix(&store)?;
        Ok(self.kv.delete_key(&prefix, &key).await.map_err(err))
    }

    async fn exists(&mut self, store: Resource<Bucket>, key: String) -> wasmtime::Result<Result<bool, Error>> {
        let prefix = self.prefix(&store)?;
        Ok(self.kv.get_value(&prefix, &key).await.map(|v| v.is_some()).map_err(err))
    }

    async fn get_keys(&mut self, store: Resource<Bucket>) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let prefix = self.prefix(&store)?;
        let mut all = Vec::new();
        let mut offset = Some(0);
        while let Some(at) = offset {
            let (keys, next) = match self.kv.page(&prefix, at).await {
                Ok(page) => page,
                Err(e) => return Ok(Err(err(e))),
            };
            all.extend(keys);
            if all.len() > MAX_KEYS {
                return Ok(Err(Error::Other(format!(
                    "the store has more than {MAX_KEYS} keys; list them page by page with wasi:keyvalue's list-keys"
                ))));
            }
            offset = next;
        }
        Ok(Ok(all))
    }

    async fn drop(&mut self, store: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}
