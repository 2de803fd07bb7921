//! Prometheus metrics at `GET /_wisp/metrics` (OpenMetrics text, which Prometheus scrapes; `prometheus-client`).
//!
//! Two sources. What an invocation did is counted as its record is made: [`Metrics`] is a scheduler
//! [`RecordObserver`] (a few atomic adds and histogram observations per invocation, no lock held across an
//! invocation). What the node holds right now — instances, queues, pool slots, the autoscaler's view, records
//! written and dropped — is read at scrape time by [`NodeState`], so it can never drift from the truth.
//!
//! Label sets are bounded: namespace, function, trigger kind, HTTP status class, phase, cold/warm. Never an
//! invocation id, a path or a status code a guest chose.

use crate::records::LiveRecords;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use wisp_core::FunctionKey;
use wisp_scheduler::{InvocationRecord, RecordObserver, Scheduler};

/// The content type of the OpenMetrics exposition.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the Prometheus text exposition.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByStatus {
    namespace: String,
    function: String,
    trigger: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByTrigger {
    namespace: String,
    function: String,
    trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByFunction {
    namespace: String,
    function: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByPhase {
    namespace: String,
    function: String,
    phase: &'static str,
    start: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
type FloatCounter = Counter<f64, AtomicU64>;

/// The node's metrics: the registry `/_wisp/metrics` encodes, and the per-invocation families it fills.
pub struct Metrics {
    registry: Registry,
    invocations: Family<ByStatus, Counter>,
    duration: HistogramFamily<ByTrigger>,
    phases: HistogramFamily<ByPhase>,
    cold_starts: Family<ByFunction, Counter>,
    cpu_seconds: Family<ByFunction, FloatCounter>,
    gib_seconds: Family<ByFunction, FloatCounter>,
    egress_bytes: Family<ByFunction, Counter>,
}

fn duration_buckets() -> Histogram {
    // 100 µs … 52 s, doubling.
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

fn phase_buckets() -> Histogram {
    // 10 µs … 42 s, ×4: cold-start phases span microseconds (instantiate) to seconds (a slow handler).
    Histogram::new(exponential_buckets(0.00001, 4.0, 12))
}

/// `status` as its class: `2xx` … `5xx` (a guest picks any code; the class keeps the label set bounded).
fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl Metrics {
    /// Metrics of a node: `scheduler`'s live state and `metering`'s counters are read at each scrape, and the
    /// records writer reports each batch's latency here. Register the result as a scheduler observer.
    pub fn new(
        scheduler: Arc<Scheduler>,
        metering: Arc<wisp_metering::Metering>,
        host: wisp_wasm_host::Host,
        live: Arc<LiveRecords>,
    ) -> Arc<Metrics> {
        let mut registry = Registry::default();
        let invocations = Family::<ByStatus, Counter>::default();
        registry.register(
            "wisp_invocations",
            "Invocations finished (or refused by admission), by trigger kind and HTTP status class",
            invocations.clone(),
        );
        let duration = HistogramFamily::<ByTrigger>::new_with_constructor(duration_buckets as fn() -> Histogram);
        registry.register(
            "wisp_invocation_duration_seconds",
            "Invocation duration from arrival to the guest's end, queue wait included",
            duration.clone(),
        );
        let phases = HistogramFamily::<ByPhase>::new_with_constructor(phase_buckets as fn() -> Histogram);
        registry.register(
            "wisp_invocation_phase_seconds",
            "Invocation phases (queue, instantiate, init, handler, response) of invocations that ran, by cold or warm start",
            phases.clone(),
        );
        let cold_starts = Family::<ByFunction, Counter>::default();
        registry.register("wisp_cold_starts", "Invocations that created a new instance", cold_starts.clone());
        let cpu_seconds = Family::<ByFunction, FloatCounter>::default();
        registry.register(
            "wisp_invocation_cpu_seconds",
            "Thread CPU time of guests and of host work done for them (I/O and queue waits excluded)",
            cpu_seconds.clone(),
        );
        let gib_seconds = Family::<ByFunction, FloatCounter>::default();
        registry.register(
            "wisp_invocation_gibibyte_seconds",
            "Memory limit (GiB) times wall time rounded up to 1 ms, summed: what per-GB-second pricing bills",
            gib_seconds.clone(),
        );
        let egress_bytes = Family::<ByFunction, Counter>::default();
        registry.register(
            "wisp_invocation_egress_bytes",
            "Outbound HTTP body bytes of guests, both ways",
            egress_bytes.clone(),
        );
        let write = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "wisp_records_write_seconds",
            "Latency of one batched write of invocation records to the records store",
            write.clone(),
        );
        metering.on_write(Box::new(move |took, _rows| write.observe(took.as_secs_f64())));
        registry.register_collector(Box::new(NodeState { scheduler, metering, host, live }));
        Arc::new(Metrics {
            registry,
            invocations,
            duration,
            phases,
            cold_starts,
            cpu_seconds,
            gib_seconds,
            egress_bytes,
        })
    }

    /// The exposition as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail; a collector's error would be a bug, shown rather than hidden.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

/// OpenMetrics text as the Prometheus text format (0.0.4): a counter's family is named with its `_total`
/// suffix there (OpenMetrics names the family without it), and there is no `# EOF` or `# UNIT`.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        openmetrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len() + 64 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "].into_iter().find(|p| line.starts_with(p));
        match meta.and_then(|p| line[p.len()..].split_once(' ').map(|(name, rest)| (p, name, rest))) {
            Some((p, name, rest)) if counters.contains(name) => {
                out.push_str(p);
                out.push_str(name);
                out.push_str("_total ");
                out.push_str(rest);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// `GET /_wisp/metrics`: OpenMetrics when the scraper accepts it, the Prometheus text format otherwise.
pub(crate) async fn serve(State(api): State<Arc<crate::Api>>, headers: http::HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let text = api.metrics.encode();
    if openmetrics {
        ([(http::header::CONTENT_TYPE, OPENMETRICS)], text).into_response()
    } else {
        ([(http::header::CONTENT_TYPE, PROMETHEUS_TEXT)], to_prometheus_text(&text)).into_response()
    }
}

impl RecordObserver for Metrics {
    fn observe(&self, function: &FunctionKey, r: &Arc<InvocationRecord>) {
        let (namespace, name) = (function.namespace.as_str(), function.name.as_str());
        let by_fn = || ByFunction { namespace: namespace.to_owned(), function: name.to_owned() };
        self.invocations
            .get_or_create(&ByStatus {
                namespace: namespace.to_owned(),
                function: name.to_owned(),
                trigger: r.trigger.to_string(),
                status: status_class(r.status),
            })
            .inc();
        self.duration
            .get_or_create(&ByTrigger {
                namespace: namespace.to_owned(),
                function: name.to_owned(),
                trigger: r.trigger.to_string(),
            })
            .observe(r.duration_us as f64 / 1e6);
        // Refused by admission: no guest ran, nothing else to count.
        if r.wall_us == 0 && r.handler_us == 0 && r.instantiate_us == 0 {
            return;
        }
        let start = if r.cold { "cold" } else { "warm" };
        for (phase, us) in [
            ("queue", r.queue_us),
            ("instantiate", r.instantiate_us),
            ("init", r.init_us),
            ("handler", r.handler_us),
            ("response", r.response_us),
        ] {
            if phase == "instantiate" && !r.cold || phase == "init" && us == 0 {
                continue; // a warm start has no instantiation; most guests have no init export
            }
            self.phases
                .get_or_create(&ByPhase { namespace: namespace.to_owned(), function: name.to_owned(), phase, start })
                .observe(us as f64 / 1e6);
        }
        let key = by_fn();
        if r.cold {
            self.cold_starts.get_or_create(&key).inc();
        }
        self.cpu_seconds.get_or_create(&key).inc_by(r.cpu_us as f64 / 1e6);
        let wall = std::time::Duration::from_micros(r.wall_us);
        self.gib_seconds.get_or_create(&key).inc_by(wisp_core::usage::gb_seconds(r.memory_limit_bytes, wall));
        if r.egress_bytes > 0 {
            self.egress_bytes.get_or_create(&key).inc_by(r.egress_bytes);
        }
    }
}

/// What the node holds right now, read at each scrape.
struct NodeState {
    scheduler: Arc<Scheduler>,
    metering: Arc<wisp_metering::Metering>,
    host: wisp_wasm_host::Host,
    live: Arc<LiveRecords>,
}

impl std::fmt::Debug for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeState")
    }
}

/// One gauge or counter family, encoded from `(labels, value)` rows.
fn family<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: impl IntoIterator<Item = (L, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in rows {
        let e = metric.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(value).encode(e)?,
            _ => ConstGauge::new(value as i64).encode(e)?,
        }
    }
    Ok(())
}

/// One gauge or counter without labels.
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, kind)?;
    match kind {
        MetricType::Counter => ConstCounter::new(value).encode(metric),
        _ => ConstGauge::new(value as i64).encode(metric),
    }
}

impl Collector for NodeState {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let actives = self.scheduler.actives();
        let ids = |a: &wisp_scheduler::Active| (a.record.key.namespace.to_string(), a.record.key.name.to_string());
        family(
            &mut encoder,
            "wisp_instances",
            "Instances of each function now, idle (warm, waiting) or busy (running an invocation)",
            MetricType::Gauge,
            actives.iter().flat_map(|a| {
                let (namespace, function) = ids(a);
                [
                    (
                        [("namespace", namespace.clone()), ("function", function.clone()), ("state", "idle".into())],
                        a.idle_instances() as u64,
                    ),
                    (
                        [("namespace", namespace), ("function", function), ("state", "busy".into())],
                        a.in_flight() as u64,
                    ),
                ]
            }),
        )?;
        family(
            &mut encoder,
            "wisp_admission_queue_depth",
            "Requests of each function waiting for admission now",
            MetricType::Gauge,
            actives.iter().map(|a| {
                let (namespace, function) = ids(a);
                ([("namespace", namespace), ("function", function)], a.queued() as u64)
            }),
        )?;
        family(
            &mut encoder,
            "wisp_admission_rejections",
            "Requests admission refused: queue_full answered 429, queue_timeout 503",
            MetricType::Counter,
            actives.iter().flat_map(|a| {
                let (namespace, function) = ids(a);
                let [full, timeout] = a.rejections();
                [
                    (
                        [
                            ("namespace", namespace.clone()),
                            ("function", function.clone()),
                            ("reason", "queue_full".into()),
                        ],
                        full,
                    ),
                    ([("namespace", namespace), ("function", function), ("reason", "queue_timeout".into())], timeout),
                ]
            }),
        )?;
        let steps: Vec<_> = actives.iter().filter_map(|a| a.last_step().map(|s| (ids(a), s))).collect();
        family(
            &mut encoder,
            "wisp_autoscaler_desired_instances",
            "Instances the autoscaler wants for each function (its latest step)",
            MetricType::Gauge,
            steps.iter().map(|((n, f), s)| {
                ([("namespace", n.clone()), ("function", f.clone())], u64::from(s.decision.desired))
            }),
        )?;
        family(
            &mut encoder,
            "wisp_autoscaler_ready_instances",
            "Instances ready (idle + busy) for each function when the autoscaler last stepped",
            MetricType::Gauge,
            steps.iter().map(|((n, f), s)| ([("namespace", n.clone()), ("function", f.clone())], u64::from(s.ready))),
        )?;
        let (used, total) = self.host.pool_slots().unwrap_or((0, self.host.config().max_instances));
        single(
            &mut encoder,
            "wisp_instance_slots_used",
            "Instance slots of the pooling allocator in use",
            MetricType::Gauge,
            used,
        )?;
        single(
            &mut encoder,
            "wisp_instance_slots",
            "Instance slots of the pooling allocator (wisp up --max-instances)",
            MetricType::Gauge,
            u64::from(total),
        )?;
        single(
            &mut encoder,
            "wisp_functions",
            "Functions active on this node",
            MetricType::Gauge,
            actives.len() as u64,
        )?;
        single(
            &mut encoder,
            "wisp_records_written",
            "Invocation records written to the records store",
            MetricType::Counter,
            self.metering.written(),
        )?;
        single(
            &mut encoder,
            "wisp_records_dropped",
            "Invocation records dropped because the records channel was full (metering never blocks an invocation)",
            MetricType::Counter,
            self.metering.dropped(),
        )?;
        single(
            &mut encoder,
            "wisp_log_followers",
            "Clients following live logs (wisp logs -f, the console)",
            MetricType::Gauge,
            self.live.followers() as u64,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{status_class, to_prometheus_text};

    #[test]
    fn openmetrics_counters_get_their_total_family_name_in_prometheus_text() {
        let om = "# HELP a_seconds A.\n# TYPE a_seconds counter\na_seconds_total{x=\"1\"} 2\n\
                  # HELP b B.\n# TYPE b gauge\nb 1\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_seconds_total A.\n# TYPE a_seconds_total counter\na_seconds_total{x=\"1\"} 2\n\
             # HELP b B.\n# TYPE b gauge\nb 1\n"
        );
    }

    #[test]
    fn statuses_are_bounded_to_their_class() {
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(429), "4xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(999), "5xx");
    }
}
