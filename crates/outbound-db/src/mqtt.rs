//! MQTT publishing through `rumqttc`, to a checked address (an IP literal: the client resolves nothing).
//! Plain TCP only (`mqtts://` is refused with a message saying so).
//!
//! A publisher keeps no per-invocation state on its connection (clean session, no subscriptions), so one
//! connection per (owner, address, credentials, keep-alive) is shared by every invocation that opens it:
//! its event loop runs in a task of its own (keep-alive pings included), and each publish waits for what its
//! QoS promises — written (at most once), `PUBACK` (at least once) or `PUBCOMP` (exactly once). Sharing also
//! keeps the MQTT rule that a broker disconnects the older of two connections with the same client id from
//! breaking concurrent invocations.

use crate::pool::{Evict, Key, Permit, Pools};
use crate::{DbError, left, redact};
use parking_lot::Mutex;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, Outgoing, QoS};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A guest's MQTT address (`mqtt://host[:port]?client_id=…`), parsed.
#[derive(Debug, Clone)]
pub struct Target {
    host: String,
    port: u16,
    client_id: String,
}

impl Target {
    /// Parses an address; like Spin, it must name a `client_id`.
    pub fn parse(address: &str) -> Result<Target, DbError> {
        let bad = |why: String| {
            DbError::InvalidAddress(format!(
                "the MQTT address `{}` {why} (write mqtt://host[:port]?client_id=NAME)",
                redact(address)
            ))
        };
        let url = url::Url::parse(address).map_err(|e| bad(format!("does not parse: {e}")))?;
        match url.scheme() {
            "mqtt" | "tcp" => {}
            "mqtts" | "ssl" => {
                return Err(DbError::InvalidAddress(
                    "mqtts:// (MQTT over TLS) is not supported by wisp yet: use mqtt:// to a broker on a private network".into(),
                ));
            }
            s => return Err(bad(format!("has the scheme `{s}`, not mqtt"))),
        }
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(h) => h.to_string().to_ascii_lowercase(),
            None => return Err(bad("names no host".into())),
        };
        let client_id = url
            .query_pairs()
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| bad("has no client_id".into()))?;
        Ok(Target { host, port: url.port().unwrap_or(1883), client_id })
    }

    /// The host and port it names; the host must be allowed and checked.
    pub fn endpoint(&self) -> (&str, u16) {
        (&self.host, self.port)
    }
}

/// Quality of service of a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    /// Sent once, no acknowledgement.
    AtMostOnce,
    /// Acknowledged by the broker (`PUBACK`).
    AtLeastOnce,
    /// The four-way handshake (`PUBCOMP`).
    ExactlyOnce,
}

type Waiter = oneshot::Sender<Result<(), String>>;

/// What a connection's publishers and its event loop share.
struct Shared {
    client: AsyncClient,
    /// Publishers waiting for their packet to be written, in the order they handed it to the client.
    queued: Mutex<VecDeque<(QoS, Waiter)>>,
    /// Publishers waiting for their acknowledgement, by packet id.
    acks: Mutex<HashMap<u16, Waiter>>,
    failed: Mutex<Option<String>>,
    peer: SocketAddr,
}

impl Shared {
    fn fail_all(&self, why: &str) {
        *self.failed.lock() = Some(why.to_string());
        for (_, w) in self.queued.lock().drain(..) {
            let _ = w.send(Err(why.to_string()));
        }
        for (_, w) in self.acks.lock().drain() {
            let _ = w.send(Err(why.to_string()));
        }
    }
}

/// One shared connection to a broker: guests hold it while they use it; its event loop runs in a task of
/// its own, stopped when the last holder lets go.
pub struct Broker {
    shared: Arc<Shared>,
    driver: tokio::task::JoinHandle<()>,
    last_used: Mutex<Instant>,
    _permit: Permit,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Broker {
    fn alive(&self) -> bool {
        self.shared.failed.lock().is_none() && !self.driver.is_finished()
    }

    /// Publishes `payload` to `topic` and waits for what `qos` promises, until `deadline`.
    pub async fn publish(&self, topic: &str, payload: Vec<u8>, qos: Qos, deadline: Instant) -> Result<(), DbError> {
        *self.last_used.lock() = Instant::now();
        if let Some(why) = self.shared.failed.lock().clone() {
            return Err(DbError::ConnectionFailed(format!(
                "the connection to the MQTT broker broke: {why}; open a new one"
            )));
        }
        if topic.is_empty() || topic.contains(['+', '#', '\0']) {
            return Err(DbError::Other(format!(
                "`{topic}` is not a topic a message can be published to (empty, or with a wildcard + or #)"
            )));
        }
        let qos = match qos {
            Qos::AtMostOnce => QoS::AtMostOnce,
            Qos::AtLeastOnce => QoS::AtLeastOnce,
            Qos::ExactlyOnce => QoS::ExactlyOnce,
        };
        let (tx, rx) = oneshot::channel();
        {
            // Queued in the order the client's request channel takes them: the waiter and its packet go in
            // together, with no await between (a publish cut short never leaves a waiter without a packet).
            let mut queued = self.shared.queued.lock();
            if let Err(e) = self.shared.client.try_publish(topic, qos, false, payload) {
                drop(queued);
                return Err(if self.alive() {
                    DbError::Other(format!(
                        "cannot publish to `{topic}` now: {e} ({REQUESTS} publishes are waiting to be sent on this connection)"
                    ))
                } else {
                    DbError::ConnectionFailed("the connection to the MQTT broker broke; open a new one".into())
                });
            }
            queued.push_back((qos, tx));
        }
        match tokio::time::timeout_at(deadline.into(), rx).await {
            Err(_) => Err(DbError::Other(
                "waiting for the MQTT broker's acknowledgement was stopped at the invocation's deadline (limits.timeout_ms)".into(),
            )),
            Ok(Err(_)) => Err(DbError::ConnectionFailed("the connection to the MQTT broker closed".into())),
            Ok(Ok(Err(why))) => Err(DbError::ConnectionFailed(format!("the connection to the MQTT broker broke: {why}"))),
            Ok(Ok(Ok(()))) => Ok(()),
        }
    }
}

/// How many publishes may wait to be sent on one connection.
const REQUESTS: usize = 256;

/// A key's connection, locked while it is being made (so one key never has two).
type Slot = Arc<tokio::sync::Mutex<Option<Arc<Broker>>>>;

/// The node's shared broker connections.
#[derive(Default)]
pub(crate) struct Brokers {
    slots: Mutex<HashMap<Key, Slot>>,
}

impl Brokers {
    /// Connections not held by any guest now.
    fn unused(&self, owner: Option<&str>) -> Vec<(Key, Instant)> {
        let slots = self.slots.lock();
        slots
            .iter()
            .filter(|((o, _), _)| owner.is_none_or(|w| &**o == w))
            .filter_map(|(k, slot)| {
                let b = slot.try_lock().ok()?.as_ref()?.clone();
                // One reference here, one in the slot: no guest holds it.
                (Arc::strong_count(&b) == 2).then(|| (k.clone(), *b.last_used.lock()))
            })
            .collect()
    }

    fn remove(&self, key: &Key) {
        let slot = self.slots.lock().remove(key);
        drop(slot);
    }

    pub(crate) fn idle_count(&self) -> usize {
        self.unused(None).len()
    }
}

impl Evict for Brokers {
    fn oldest(&self, owner: Option<&str>) -> Option<Instant> {
        self.unused(owner).into_iter().map(|(_, at)| at).min()
    }

    fn evict_oldest(&self, owner: Option<&str>) -> bool {
        match self.unused(owner).into_iter().min_by_key(|(_, at)| *at) {
            Some((key, _)) => {
                self.remove(&key);
                true
            }
            None => false,
        }
    }

    fn sweep(&self, now: Instant, max_idle: Duration) {
        for (key, at) in self.unused(None) {
            if now.duration_since(at) >= max_idle {
                self.remove(&key);
            }
        }
    }
}

/// Drives a connection's event loop until it fails: writes, acknowledgements, keep-alive pings.
async fn drive(mut events: rumqttc::EventLoop, shared: Arc<Shared>, connected: oneshot::Sender<Result<(), String>>) {
    let mut connected = Some(connected);
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                if let Some(c) = connected.take() {
                    let _ = c.send(Ok(()));
                }
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                let Some((qos, waiter)) = shared.queued.lock().pop_front() else { continue };
                if qos == QoS::AtMostOnce {
                    let _ = waiter.send(Ok(()));
                } else {
                    shared.acks.lock().insert(pkid, waiter);
                }
            }
            Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                if let Some(w) = shared.acks.lock().remove(&ack.pkid) {
                    let _ = w.send(Ok(()));
                }
            }
            Ok(Event::Incoming(Incoming::PubComp(comp))) => {
                if let Some(w) = shared.acks.lock().remove(&comp.pkid) {
                    let _ = w.send(Ok(()));
                }
            }
            Ok(_) => {}
            Err(e) => {
                let why = match e {
                    rumqttc::ConnectionError::Io(ref io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                        format!("connection to {} refused: is the broker running on that port?", shared.peer)
                    }
                    rumqttc::ConnectionError::ConnectionRefused(code) => {
                        format!("the MQTT broker at {} refused the connection: {code:?}", shared.peer)
                    }
                    e => format!("{e}"),
                };
                if let Some(c) = connected.take() {
                    let _ = c.send(Err(why.clone()));
                }
                shared.fail_all(&why);
                return;
            }
        }
    }
}

impl Pools {
    /// The shared MQTT connection of `owner` for `address` with these credentials, made (to one of
    /// `addrs`, waiting for the broker's `CONNACK`) if there is none alive to a checked address.
    #[allow(clippy::too_many_arguments)]
    pub async fn mqtt(
        &self,
        owner: &str,
        address: &str,
        target: &Target,
        username: &str,
        password: &str,
        keep_alive_secs: u64,
        addrs: &[SocketAddr],
        deadline: Instant,
    ) -> Result<Arc<Broker>, DbError> {
        let key: Key = (Arc::from(owner), Arc::from(format!("{address}\n{username}\n{password}\n{keep_alive_secs}")));
        let slot = self.mqtt.slots.lock().entry(key.clone()).or_default().clone();
        let mut slot = match tokio::time::timeout_at(deadline.into(), slot.lock()).await {
            Ok(s) => s,
            Err(_) => {
                return Err(DbError::Other(
                    "opening the MQTT connection was stopped at the invocation's deadline".into(),
                ));
            }
        };
        if let Some(b) = slot.as_ref()
            && b.alive()
            && addrs.contains(&b.shared.peer)
        {
            *b.last_used.lock() = Instant::now();
            return Ok(b.clone());
        }
        *slot = None;
        let mut failure = DbError::ConnectionFailed("no address to connect to".into());
        for &peer in addrs {
            let permit = self.permit(&key.0, deadline).await?;
            let mut options = MqttOptions::new(target.client_id.clone(), peer.ip().to_string(), peer.port());
            options.set_credentials(username, password);
            options.set_keep_alive(Duration::from_secs(keep_alive_secs.clamp(1, u64::from(u16::MAX))));
            options.set_clean_session(true);
            let (client, events) = AsyncClient::new(options, REQUESTS);
            let (connected_tx, connected) = oneshot::channel();
            let shared = Arc::new(Shared {
                client,
                queued: Mutex::new(VecDeque::new()),
                acks: Mutex::new(HashMap::new()),
                failed: Mutex::new(None),
                peer,
            });
            let broker = Arc::new(Broker {
                driver: tokio::spawn(drive(events, shared.clone(), connected_tx)),
                shared,
                last_used: Mutex::new(Instant::now()),
                _permit: permit,
            });
            let budget = left(deadline, self.config.connect_timeout);
            match tokio::time::timeout(budget, connected).await {
                Ok(Ok(Ok(()))) => {
                    *slot = Some(broker.clone());
                    return Ok(broker);
                }
                Ok(Ok(Err(why))) => failure = DbError::ConnectionFailed(why),
                Ok(Err(_)) => {
                    failure =
                        DbError::ConnectionFailed(format!("the connection to {peer} closed before the broker answered"))
                }
                Err(_) => {
                    failure = DbError::ConnectionFailed(format!(
                        "connecting to the MQTT broker at {peer} timed out after {} ms ([outbound_db] connect_timeout_ms, or the invocation's deadline)",
                        budget.as_millis()
                    ))
                }
            }
        }
        Err(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        let t = Target::parse("mqtt://127.0.0.1:1884?client_id=a1").unwrap();
        assert_eq!((t.endpoint(), t.client_id.as_str()), (("127.0.0.1", 1884), "a1"));
        let t = Target::parse("mqtt://Broker.internal?client_id=x&keep_alive_secs=5").unwrap();
        assert_eq!(t.endpoint(), ("broker.internal", 1883));
        assert!(Target::parse("mqtt://broker").unwrap_err().to_string().contains("has no client_id"));
        assert!(
            Target::parse("mqtts://broker?client_id=x").unwrap_err().to_string().contains("not supported by wisp yet")
        );
        assert!(Target::parse("http://broker?client_id=x").is_err());
    }
}
