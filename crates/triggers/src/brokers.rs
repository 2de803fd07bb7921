//! Broker sources: Redis (pub/sub, Streams consumer groups), MQTT (QoS 0/1) and NATS (core, JetStream pull
//! consumers). Each runs until its task is aborted, reconnecting with backoff; a source that acknowledges
//! does so only after [`Ctx::deliver`] returned (the event is durable, or was rejected for good).

use crate::{Backoff, Ctx};
use futures::StreamExt;
use std::time::Duration;
use wisp_core::trigger::{MqttTrigger, NatsTrigger, RedisTrigger, StartAt};

/// `scheme://host[:port]` of `url`, without user info or path: the CloudEvents `source` prefix.
fn endpoint(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}")
}

/// Aborts a helper task when the trigger's task ends (or is aborted).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

// ---------------------------------------------------------------- Redis

pub(crate) async fn redis(ctx: Ctx, spec: RedisTrigger) {
    let client = match redis::Client::open(spec.url.as_str()) {
        Ok(c) => c,
        Err(e) => return ctx.live.failed(format!("url {:?}: {e}", wisp_core::trigger::redact(&spec.url))),
    };
    let mut backoff = Backoff::new();
    let mut connected_before = false;
    loop {
        let result = match (&spec.channel, &spec.stream) {
            (Some(channel), _) => redis_pubsub(&ctx, &client, &spec, channel, &mut backoff).await,
            (_, Some(stream)) => redis_stream(&ctx, &client, &spec, stream, &mut backoff, &mut connected_before).await,
            _ => return ctx.live.failed("neither channel nor stream"),
        };
        if let Err(e) = result {
            tracing::warn!(function = %ctx.key, trigger = %ctx.id, error = %e, "redis trigger disconnected; reconnecting");
            ctx.live.failed(e);
        }
        backoff.wait().await;
    }
}

async fn redis_pubsub(
    ctx: &Ctx,
    client: &redis::Client,
    spec: &RedisTrigger,
    channel: &str,
    backoff: &mut Backoff,
) -> Result<(), String> {
    let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
    pubsub.subscribe(channel).await.map_err(|e| e.to_string())?;
    ctx.live.set_state("connected");
    backoff.reset();
    let source = format!("{}/{channel}", endpoint(&spec.url));
    let mut messages = pubsub.on_message();
    while let Some(msg) = messages.next().await {
        let event = ctx.event(
            source.clone(),
            "dev.wisp.redis.message",
            Some(msg.get_channel_name().to_string()),
            msg.get_payload_bytes().to_vec(),
        );
        ctx.deliver(event).await;
    }
    Err("the connection closed".into())
}

async fn redis_stream(
    ctx: &Ctx,
    client: &redis::Client,
    spec: &RedisTrigger,
    stream: &str,
    backoff: &mut Backoff,
    connected_before: &mut bool,
) -> Result<(), String> {
    use redis::AsyncCommands;
    use redis::streams::{StreamReadOptions, StreamReadReply};
    let err = |e: redis::RedisError| e.to_string();
    // Reads block for up to 2 s: no response timeout on this connection.
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let mut con = client.get_multiplexed_async_connection_with_config(&config).await.map_err(err)?;
    let group = spec.group.clone().unwrap_or_else(|| ctx.consumer_name());
    // A group that is gone after we had one (the server lost its data) starts over at the stream's start:
    // everything in it is new to us.
    let start = if *connected_before || spec.start == StartAt::Earliest { "0" } else { "$" };
    let created: redis::RedisResult<()> = con.xgroup_create_mkstream(stream, &group, start).await;
    if let Err(e) = created
        && e.code() != Some("BUSYGROUP")
    {
        return Err(format!("creating consumer group {group}: {e}"));
    }
    ctx.live.set_state("connected");
    *connected_before = true;
    backoff.reset();
    let source = format!("{}/{stream}", endpoint(&spec.url));
    // First what was delivered to us and never acknowledged (a crash between read and ack), then new entries.
    let mut pending = true;
    loop {
        let opts = StreamReadOptions::default().group(&group, "wisp").count(100).block(2000);
        let id = if pending { "0" } else { ">" };
        let reply: Option<StreamReadReply> = con.xread_options(&[stream], &[id], &opts).await.map_err(err)?;
        let entries: Vec<redis::streams::StreamId> =
            reply.map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect()).unwrap_or_default();
        if pending && entries.is_empty() {
            pending = false;
            continue;
        }
        let mut done = Vec::with_capacity(entries.len());
        for entry in entries {
            // An entry deleted while pending comes back without fields: nothing to deliver.
            if !entry.map.is_empty() {
                let fields: serde_json::Map<String, serde_json::Value> = entry
                    .map
                    .iter()
                    .map(|(k, v)| {
                        let text = redis::from_redis_value_ref::<Vec<u8>>(v)
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                            .unwrap_or_default();
                        (k.clone(), serde_json::Value::String(text))
                    })
                    .collect();
                let mut event = ctx.event(
                    source.clone(),
                    "dev.wisp.redis.stream.entry",
                    Some(stream.to_string()),
                    serde_json::to_vec(&fields).expect("json"),
                );
                // The entry id is unique in its stream: a redelivered entry is the same invocation.
                event.id = entry.id.clone();
                event.data_content_type = Some("application/json".into());
                ctx.deliver(event).await;
            }
            done.push(entry.id);
        }
        if !done.is_empty() {
            let _: i64 = con.xack(stream, &group, &done).await.map_err(err)?;
        }
    }
}

// ---------------------------------------------------------------- MQTT

/// Host, port and credentials of an `mqtt://` (or `tcp://`) URL.
type MqttAddress = (String, u16, Option<(String, String)>);

fn mqtt_address(url: &str) -> Result<MqttAddress, String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let (creds, hostport) = match authority.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, authority),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("port {p:?} in {url:?} is not a number"))?),
        None => (hostport, 1883),
    };
    let creds = creds.map(|c| {
        let (u, p) = c.split_once(':').unwrap_or((c, ""));
        (u.to_string(), p.to_string())
    });
    Ok((host.to_string(), port, creds))
}

pub(crate) async fn mqtt(ctx: Ctx, spec: MqttTrigger) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
    let (host, port, creds) = match mqtt_address(&spec.url) {
        Ok(a) => a,
        Err(e) => return ctx.live.failed(e),
    };
    // A stable client id and a persistent session: the broker keeps QoS 1 messages for us while we are away.
    let client_id = format!("{}-{}", ctx.consumer_name(), ctx.id);
    let mut opts = MqttOptions::new(client_id, host, port);
    opts.set_keep_alive(Duration::from_secs(15));
    opts.set_manual_acks(true);
    opts.set_clean_session(spec.qos == 0);
    if let Some((u, p)) = creds {
        opts.set_credentials(u, p);
    }
    let qos = if spec.qos == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce };
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    // Messages are accepted (and then acked) in order by a worker, so the event loop keeps polling (and the
    // acks it sends can flow) while an enqueue waits. The broker's in-flight window bounds what QoS 1 queues.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<rumqttc::Publish>();
    let worker = {
        let (ctx, client) = (ctx.clone(), client.clone());
        let source = endpoint(&spec.url);
        AbortOnDrop(tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                let event = ctx.event(
                    format!("{source}/{}", p.topic),
                    "dev.wisp.mqtt.message",
                    Some(p.topic.clone()),
                    p.payload.to_vec(),
                );
                ctx.deliver(event).await;
                if p.qos != QoS::AtMostOnce
                    && let Err(e) = client.ack(&p).await
                {
                    tracing::warn!(function = %ctx.key, error = %e, "cannot acknowledge an MQTT message; the broker will resend it");
                }
            }
        }))
    };
    let mut backoff = Backoff::new();
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if let Err(e) = client.subscribe(spec.topic.clone(), qos).await {
                    ctx.live.failed(format!("subscribing to {}: {e}", spec.topic));
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure)) {
                    ctx.live.failed(format!("the broker refused the subscription to {}", spec.topic));
                } else {
                    ctx.live.set_state("connected");
                    backoff.reset();
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if tx.send(p).is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(function = %ctx.key, trigger = %ctx.id, error = %e, "mqtt trigger disconnected; reconnecting");
                ctx.live.failed(e);
                backoff.wait().await;
            }
        }
    }
    drop(worker);
}

// ---------------------------------------------------------------- NATS

pub(crate) async fn nats(ctx: Ctx, spec: NatsTrigger) {
    let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel::<async_nats::Event>();
    let options = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempt| Duration::from_millis((100u64 << attempt.min(6)).min(5000)))
        .event_callback(move |e| {
            let tx = events_tx.clone();
            async move {
                let _ = tx.send(e);
            }
        });
    let client = match options.connect(spec.url.as_str()).await {
        Ok(c) => c,
        Err(e) => return ctx.live.failed(format!("{}: {e}", wisp_core::trigger::redact(&spec.url))),
    };
    // Connection state: "connected" once a round trip after (re)connecting proves the server has our
    // subscriptions again (core NATS). A JetStream consumer's pull requests do not survive a server restart:
    // each reconnect bumps `generation`, and the consumer loop starts its message stream over.
    let (generation_tx, generation) = tokio::sync::watch::channel(0u64);
    let _watcher = {
        let (live, client) = (ctx.live.clone(), client.clone());
        let core = spec.stream.is_none();
        AbortOnDrop(tokio::spawn(async move {
            let mut lost = false;
            while let Some(e) = events_rx.recv().await {
                match e {
                    async_nats::Event::Connected => {
                        if std::mem::take(&mut lost) {
                            generation_tx.send_modify(|g| *g += 1);
                        }
                        if core && client.flush().await.is_ok() {
                            live.set_state("connected");
                        }
                    }
                    async_nats::Event::Disconnected => {
                        lost = true;
                        live.failed("disconnected");
                    }
                    async_nats::Event::ServerError(e) => live.failed(format!("server error: {e}")),
                    async_nats::Event::ClientError(e) => live.failed(format!("client error: {e}")),
                    _ => {}
                }
            }
        }))
    };
    let source = endpoint(&spec.url);
    let mut backoff = Backoff::new();
    loop {
        let result = match &spec.stream {
            None => nats_core(&ctx, &client, &spec, &source).await,
            Some(stream) => jetstream(&ctx, &client, &spec, stream, &source, &mut backoff, generation.clone()).await,
        };
        if let Err(e) = result {
            tracing::warn!(function = %ctx.key, trigger = %ctx.id, error = %e, "nats trigger interrupted; retrying");
            ctx.live.failed(e);
        }
        backoff.wait().await;
    }
}

fn content_type(headers: Option<&async_nats::HeaderMap>) -> Option<String> {
    headers?.get("Content-Type").map(|v| v.as_str().to_string())
}

async fn nats_core(ctx: &Ctx, client: &async_nats::Client, spec: &NatsTrigger, source: &str) -> Result<(), String> {
    let subject = spec.subject.clone().unwrap_or_default();
    let mut sub = match &spec.queue {
        Some(q) => client.queue_subscribe(subject.clone(), q.clone()).await,
        None => client.subscribe(subject.clone()).await,
    }
    .map_err(|e| format!("subscribing to {subject}: {e}"))?;
    if client.flush().await.is_ok() {
        ctx.live.set_state("connected");
    }
    // The client resubscribes by itself after a reconnect; this stream ends only if it is closed.
    while let Some(m) = sub.next().await {
        let mut event = ctx.event(
            format!("{source}/{}", m.subject),
            "dev.wisp.nats.message",
            Some(m.subject.to_string()),
            m.payload.to_vec(),
        );
        event.data_content_type = content_type(m.headers.as_ref());
        ctx.deliver(event).await;
    }
    Err("the subscription closed".into())
}

async fn jetstream(
    ctx: &Ctx,
    client: &async_nats::Client,
    spec: &NatsTrigger,
    stream_name: &str,
    source: &str,
    backoff: &mut Backoff,
    mut generation: tokio::sync::watch::Receiver<u64>,
) -> Result<(), String> {
    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
    generation.mark_unchanged();
    let js = async_nats::jetstream::new(client.clone());
    let mut stream = js.get_stream(stream_name).await.map_err(|e| format!("stream {stream_name}: {e}"))?;
    // Sequences restart when a stream is recreated: its creation time makes event ids unique for good.
    let created = stream.info().await.map_err(|e| e.to_string())?.created.unix_timestamp_nanos() / 1_000_000;
    let durable = spec.consumer.clone().unwrap_or_else(|| ctx.consumer_name());
    let config = pull::Config {
        durable_name: Some(durable.clone()),
        filter_subject: spec.subject.clone().unwrap_or_default(),
        ack_policy: AckPolicy::Explicit,
        deliver_policy: match spec.start {
            StartAt::New => DeliverPolicy::New,
            StartAt::Earliest => DeliverPolicy::All,
        },
        ..Default::default()
    };
    let consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_or_create_consumer(&durable, config).await.map_err(|e| format!("consumer {durable}: {e}"))?;
    // Heartbeats every 5 s: a stream whose server went away errors out within seconds even without a reconnect.
    let mut messages = consumer
        .stream()
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| format!("consumer {durable}: {e}"))?;
    ctx.live.set_state("connected");
    backoff.reset();
    let source = format!("{source}/{stream_name}");
    loop {
        let m = tokio::select! {
            m = messages.next() => m,
            _ = generation.changed() => return Err("reconnected: starting the consumer's message stream over".into()),
        };
        let Some(m) = m else { break };
        let m = m.map_err(|e| e.to_string())?;
        let seq = m.info().map_err(|e| e.to_string())?.stream_sequence;
        let mut event =
            ctx.event(source.clone(), "dev.wisp.jetstream.message", Some(m.subject.to_string()), m.payload.to_vec());
        event.id = format!("{created}.{seq}");
        event.data_content_type = content_type(m.headers.as_ref());
        ctx.deliver(event).await;
        if let Err(e) = m.ack().await {
            tracing::warn!(function = %ctx.key, error = %e, "cannot acknowledge a JetStream message; it will be redelivered");
        }
    }
    Err("the consumer's message stream ended".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_drop_credentials_and_paths() {
        assert_eq!(endpoint("redis://:pw@127.0.0.1:6379/2"), "redis://127.0.0.1:6379");
        assert_eq!(endpoint("nats://h:4222"), "nats://h:4222");
    }

    #[test]
    fn mqtt_addresses() {
        assert_eq!(mqtt_address("mqtt://h").unwrap(), ("h".into(), 1883, None));
        assert_eq!(mqtt_address("mqtt://u:p@h:1884").unwrap(), ("h".into(), 1884, Some(("u".into(), "p".into()))));
        assert!(mqtt_address("mqtt://h:x").unwrap_err().contains("is not a number"));
    }
}
