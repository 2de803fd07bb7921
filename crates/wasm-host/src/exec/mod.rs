//! One executor per guest world. Each takes an invocation's input, runs it in an instance with the
//! invocation's limits and reports it once; [`crate::code::Code`] picks the executor for the revision's
//! world. Events reach either world as a CloudEvents binary-mode POST ([`event`]).

pub(crate) mod event;
pub(crate) mod http;
pub(crate) mod messaging;
pub(crate) mod wagi;

use crate::engine::Shared;
use crate::limits::is_capacity;
use crate::state::InstanceState;
use std::time::Duration;
use wasmtime::Store;

/// How long an instantiation that found the node full waits for a teardown in progress to free a slot.
const TEARDOWN_WAIT: Duration = Duration::from_millis(50);

/// A component's pre-instantiated world (one per executor).
pub(crate) trait Instantiate {
    /// The world's instance.
    type Instance;
    /// Instantiates it in `store`.
    fn instantiate<'a>(
        &'a self,
        store: &'a mut Store<InstanceState>,
    ) -> impl Future<Output = wasmtime::Result<Self::Instance>> + Send + 'a;
}

impl Instantiate for wasmtime_wasi_http::p2::bindings::ProxyPre<InstanceState> {
    type Instance = wasmtime_wasi_http::p2::bindings::Proxy;
    fn instantiate<'a>(
        &'a self,
        store: &'a mut Store<InstanceState>,
    ) -> impl Future<Output = wasmtime::Result<Self::Instance>> + Send + 'a {
        self.instantiate_async(store)
    }
}

impl Instantiate for crate::caps::messaging::bindings::MessagingCorePre<InstanceState> {
    type Instance = crate::caps::messaging::bindings::MessagingCore;
    fn instantiate<'a>(
        &'a self,
        store: &'a mut Store<InstanceState>,
    ) -> impl Future<Output = wasmtime::Result<Self::Instance>> + Send + 'a {
        self.instantiate_async(store)
    }
}

/// Instantiates `pre`, making room when the pooling allocator is full: a slot an instance's teardown is
/// freeing right now comes first (wait for it, briefly); else the node's least recently used idle instance
/// is evicted. Each is followed by one more try.
pub(crate) async fn instantiate_with_room<P: Instantiate>(
    shared: &Shared,
    store: &mut Store<InstanceState>,
    pre: &P,
) -> wasmtime::Result<P::Instance> {
    let mut made = pre.instantiate(store).await;
    if matches!(&made, Err(e) if is_capacity(e)) && shared.teardowns.wait_one(TEARDOWN_WAIT).await {
        made = pre.instantiate(store).await;
    }
    if matches!(&made, Err(e) if is_capacity(e)) && shared.evict_one_idle() {
        made = pre.instantiate(store).await;
    }
    made
}
