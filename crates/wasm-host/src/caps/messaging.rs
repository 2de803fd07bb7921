//! The messaging capability: `wasi:messaging@0.2.0-draft` — `types` and `producer` — over the node's
//! internal topics. A message a guest sends becomes an event on that topic of its function's namespace, and
//! every function the topic triggers gets it (one durable invocation each; `send` returns once they are all
//! durable). The function's grant (`publish_topics`) lists the topics it may send to; any other is
//! `permission-denied` naming the grant. The message's content type becomes the event's `datacontenttype`,
//! its metadata the event's extension attributes (names lowercased; a name CloudEvents cannot carry is an
//! error). Its id is the invocation's id and a sequence number, so an invocation that is retried publishes
//! the same ids and subscribers see each message once.
//!
//! `request-reply` is not served (imports of it trap when called, like other unserved interfaces).
//! Receiving is the export of `kind = "messaging"` functions ([`crate::exec::messaging`]).

use crate::meter::Current;
use crate::report::InvokeError;
use std::sync::{Arc, OnceLock, Weak};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wisp_core::invocation::Event;
use wisp_core::usage::Service;

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/messaging-0.2.0-draft",
        world: "wasi:messaging/messaging-core",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasi:messaging/types.client": super::Client,
            "wasi:messaging/types.message": super::Message,
        },
    });
}

use bindings::wasi::messaging::{producer, types};
use types::Error;

/// The interfaces served, with version. Importing them needs no grant (a `kind = "messaging"` handler imports
/// them to receive); sending to a topic outside `publish_topics` is `permission-denied`.
pub const INTERFACES: &[&str] = &["wasi:messaging/types@0.2.0-draft", "wasi:messaging/producer@0.2.0-draft"];

/// The export a `kind = "messaging"` function must have.
pub const HANDLER: &str = "wasi:messaging/incoming-handler@0.2.0-draft";

/// The names `client.connect` accepts: the node's internal topics are the one message exchange.
const SERVICE_NAMES: [&str; 2] = ["", "default"];

/// CloudEvents context attributes, which metadata cannot name.
const RESERVED: [&str; 8] = ["id", "source", "type", "specversion", "subject", "time", "datacontenttype", "dataschema"];

/// Largest message a guest may send (the size of a published event).
const MAX_MESSAGE_BYTES: usize = wisp_core::events::MAX_PUBLISH_BYTES;

/// Where messages go: the node's topic index, which hands an event to every function a topic triggers.
pub trait Topics: Send + Sync {
    /// Publishes `event` to `topic` in `namespace`; returns how many functions got it (each durably).
    fn publish<'a>(
        &'a self,
        namespace: &'a str,
        topic: &'a str,
        event: Event,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<usize, InvokeError>> + Send + 'a>>;
}

/// The node's topics, connected once the topic index exists (held weakly: the index holds the node).
#[derive(Default)]
pub struct TopicSlot(OnceLock<Weak<dyn Topics>>);

impl TopicSlot {
    /// Connects the topic index (once).
    pub fn connect(&self, topics: Weak<dyn Topics>) {
        let _ = self.0.set(topics);
    }

    /// The topic index, if connected and alive.
    pub fn get(&self) -> Option<Arc<dyn Topics>> {
        self.0.get().and_then(Weak::upgrade)
    }
}

/// What a function may publish: its namespace, the topics its grant names, and how its messages say where
/// they came from (built once per revision).
#[derive(Debug, Default, Clone)]
pub struct TopicGrant {
    namespace: String,
    topics: Vec<String>,
    source: String,
}

impl TopicGrant {
    /// The grant of `topics` (a `publish_topics` list) to `function` of `namespace`.
    pub fn new(namespace: &str, function: &str, topics: &[String]) -> TopicGrant {
        TopicGrant {
            namespace: namespace.to_string(),
            topics: topics.to_vec(),
            source: format!("/_wisp/v1/namespaces/{namespace}/functions/{function}"),
        }
    }
}

/// A connection to the node's topics.
pub struct Client;

/// A message: made by the guest to send, or by the host for a messaging function to handle.
#[derive(Debug, Default, Clone)]
pub struct Message {
    pub(crate) topic: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) data: Vec<u8>,
    pub(crate) metadata: Vec<(String, String)>,
}

/// An instance's slice of the capability.
pub(crate) struct Messaging {
    pub(crate) grant: Arc<TopicGrant>,
    pub(crate) topics: Arc<TopicSlot>,
    /// The invocation served now: messages are counted on its meter and numbered from its id.
    pub(crate) current: Arc<Current>,
}

/// What the generated host traits are implemented on.
pub(crate) struct MessagingView<'a> {
    msg: &'a Messaging,
    table: &'a mut ResourceTable,
}

impl<'a> MessagingView<'a> {
    /// The view of an instance's capability state and table.
    pub(crate) fn new(msg: &'a Messaging, table: &'a mut ResourceTable) -> Self {
        MessagingView { msg, table }
    }
}

struct HasMessaging;

impl HasData for HasMessaging {
    type Data<'a> = MessagingView<'a>;
}

/// Links `types` and `producer`; `view` projects an instance's state onto its [`MessagingView`].
pub(crate) fn link<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> MessagingView<'_>,
) -> anyhow::Result<()> {
    types::add_to_linker::<T, HasMessaging>(linker, view)?;
    producer::add_to_linker::<T, HasMessaging>(linker, view)?;
    Ok(())
}

impl Messaging {
    /// The event `message` becomes on `topic`, or why it cannot.
    fn event(&self, topic: &str, message: &Message) -> Result<Event, Error> {
        if message.data.len() > MAX_MESSAGE_BYTES {
            return Err(Error::Other(format!(
                "the message has {} bytes; a message is at most {MAX_MESSAGE_BYTES} bytes",
                message.data.len()
            )));
        }
        let mut extensions = std::collections::BTreeMap::new();
        for (k, v) in &message.metadata {
            let name = k.to_ascii_lowercase();
            if !wisp_core::events::valid_attribute_name(&name) || RESERVED.contains(&name.as_str()) {
                return Err(Error::Other(format!(
                    "metadata key {k:?} cannot be a CloudEvents extension attribute: use 1-20 letters or digits, not one of {RESERVED:?}"
                )));
            }
            extensions.insert(name, v.clone());
        }
        Ok(Event {
            id: self.current.next_id(),
            source: self.grant.source.clone(),
            ty: "dev.wisp.topic.message".into(),
            subject: Some(topic.to_string()),
            time_ms: Some(wisp_store::now_ms()),
            data_content_type: message.content_type.clone(),
            data: message.data.clone(),
            extensions,
        })
    }

    async fn send(&self, topic: &str, message: &Message) -> Result<(), Error> {
        wisp_core::trigger::check_topic(topic).map_err(Error::Other)?;
        if !wisp_core::messaging::allows(&self.grant.topics, topic) {
            return Err(Error::PermissionDenied(format!(
                "the function may not publish to topic {topic:?}: add it to `publish_topics` (now {:?})",
                self.grant.topics
            )));
        }
        let event = self.event(topic, message)?;
        let Some(topics) = self.topics.get() else {
            return Err(Error::Connection("this node has no topics to publish to".into()));
        };
        self.current.meter.count(Service::Messaging, 1, message.data.len() as u64);
        // The message is published inside this span: the event it becomes carries it (`traceparent`), so the
        // subscribers' deliveries continue this trace.
        let published =
            crate::trace::host_call("messaging", "messaging send", topics.publish(&self.grant.namespace, topic, event));
        published.await.map(drop).map_err(|e| match e.class {
            wisp_core::ErrorClass::Overloaded | wisp_core::ErrorClass::Unavailable => {
                Error::Connection(format!("the topic is busy, try again: {}", e.message))
            }
            _ => Error::Other(e.message),
        })
    }
}

impl types::Host for MessagingView<'_> {}

impl types::HostClient for MessagingView<'_> {
    async fn connect(&mut self, name: String) -> wasmtime::Result<Result<Resource<Client>, Error>> {
        if !SERVICE_NAMES.contains(&name.as_str()) {
            return Ok(Err(Error::Connection(format!(
                "no message exchange named {name:?}: this node offers its internal topics as \"default\""
            ))));
        }
        Ok(Ok(self.table.push(Client)?))
    }

    async fn disconnect(&mut self, _client: Resource<Client>) -> wasmtime::Result<Result<(), Error>> {
        Ok(Ok(()))
    }

    async fn drop(&mut self, client: Resource<Client>) -> wasmtime::Result<()> {
        self.table.delete(client)?;
        Ok(())
    }
}

impl types::HostMessage for MessagingView<'_> {
    async fn new(&mut self, data: Vec<u8>) -> wasmtime::Result<Resource<Message>> {
        Ok(self.table.push(Message { data, ..Default::default() })?)
    }

    async fn topic(&mut self, m: Resource<Message>) -> wasmtime::Result<Option<String>> {
        Ok(self.table.get(&m)?.topic.clone())
    }

    async fn content_type(&mut self, m: Resource<Message>) -> wasmtime::Result<Option<String>> {
        Ok(self.table.get(&m)?.content_type.clone())
    }

    async fn set_content_type(&mut self, m: Resource<Message>, content_type: String) -> wasmtime::Result<()> {
        self.table.get_mut(&m)?.content_type = Some(content_type);
        Ok(())
    }

    async fn data(&mut self, m: Resource<Message>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&m)?.data.clone())
    }

    async fn set_data(&mut self, m: Resource<Message>, data: Vec<u8>) -> wasmtime::Result<()> {
        self.table.get_mut(&m)?.data = data;
        Ok(())
    }

    async fn metadata(&mut self, m: Resource<Message>) -> wasmtime::Result<Option<Vec<(String, String)>>> {
        let m = self.table.get(&m)?;
        Ok((!m.metadata.is_empty()).then(|| m.metadata.clone()))
    }

    async fn add_metadata(&mut self, m: Resource<Message>, key: String, value: String) -> wasmtime::Result<()> {
        let m = self.table.get_mut(&m)?;
        match m.metadata.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => m.metadata.push((key, value)),
        }
        Ok(())
    }

    async fn set_metadata(&mut self, m: Resource<Message>, meta: Vec<(String, String)>) -> wasmtime::Result<()> {
        self.table.get_mut(&m)?.metadata = meta;
        Ok(())
    }

    async fn remove_metadata(&mut self, m: Resource<Message>, key: String) -> wasmtime::Result<()> {
        self.table.get_mut(&m)?.metadata.retain(|(k, _)| *k != key);
        Ok(())
    }

    async fn drop(&mut self, m: Resource<Message>) -> wasmtime::Result<()> {
        self.table.delete(m)?;
        Ok(())
    }
}

impl producer::Host for MessagingView<'_> {
    async fn send(
        &mut self,
        _client: Resource<Client>,
        topic: String,
        message: Resource<Message>,
    ) -> wasmtime::Result<Result<(), Error>> {
        // The message is the guest's to give (an owned handle): taken out of the table.
        let message = self.table.delete(message)?;
        Ok(self.msg.send(&topic, &message).await)
    }
}
