//! Traces: one order followed through every process. The W3C trace context a request brings
//! (`traceparent`), or a new one, is continued by the command, stored with the outbox row,
//! carried in the broker message's headers, and continued by the projection and by reads.
//! Spans are exported by OTLP over HTTP (Jaeger locally) when `traces.otlp_endpoint` is set;
//! without it no span is recorded, and a `traceparent` that came in is still passed on.
//!
//! Export never holds up the work: finished spans wait in a bounded queue for a background
//! thread; a span that finds the queue full, or whose export fails, is dropped and counted
//! (`trace_spans_dropped`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, SystemTime};

use config::ConfigError;
use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{
    Link, Span as _, SpanBuilder, Status, TraceContextExt, TraceId, TraceState, Tracer as _,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SamplingDecision, SamplingResult,
    SdkTracerProvider, ShouldSample, Span, SpanData, SpanExporter, SpanProcessor,
};
use opentelemetry_sdk::Resource;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use serde::Deserialize;

use crate::config::invalid;

pub use opentelemetry::context::FutureExt;
pub use opentelemetry::trace::SpanKind;
pub use opentelemetry::Context;
pub use opentelemetry::KeyValue;

pub use shared_events::TRACEPARENT_HEADER;

/// The W3C Trace Context Level 2 answer header: the trace and the server's span.
pub const TRACERESPONSE_HEADER: &str = "traceresponse";

const OTLP_TRACES_PATH: &str = "/v1/traces";
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// `[traces]` of both services' settings.
#[derive(Debug, Clone, Deserialize)]
pub struct TraceSettings {
    /// The collector's OTLP/HTTP base URL (`http://127.0.0.1:4318`); empty, nothing is exported.
    pub otlp_endpoint: String,
    /// The share of traces this service starts that are recorded (0 to 1). A request or event
    /// that comes with a trace context follows its sampled flag instead.
    pub sample_ratio: f64,
    /// Finished spans waiting for export, at most; beyond, spans are dropped and counted.
    pub max_queued_spans: usize,
}

impl TraceSettings {
    /// The rules a service's [`crate::config::LayeredSettings::validate`] checks for these
    /// keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(invalid("traces.sample_ratio", "must be between 0 and 1"));
        }
        if self.max_queued_spans == 0 {
            return Err(invalid("traces.max_queued_spans", "must be at least 1"));
        }
        let endpoint = self.otlp_endpoint.as_str();
        if !(endpoint.is_empty()
            || endpoint.starts_with("http://")
            || endpoint.starts_with("https://"))
        {
            return Err(invalid(
                "traces.otlp_endpoint",
                "must be an http:// or https:// URL, or empty",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the trace exporter: {0}")]
pub struct TraceSetupError(#[from] opentelemetry_otlp::ExporterBuildError);

static RECORDING: AtomicBool = AtomicBool::new(false);
static TRACER: OnceLock<BoxedTracer> = OnceLock::new();
static DROPPED_SPANS: LazyLock<Counter> = LazyLock::new(Counter::default);

/// The process's span exporter, flushed by [`Traces::shutdown`].
#[derive(Debug)]
pub struct Traces {
    provider: Option<SdkTracerProvider>,
}

impl Traces {
    /// Installs the exporter `settings` ask for, as the process's tracer provider, for
    /// `service` (the `service.name` spans carry). Call once, before the service is built.
    pub fn start(service: &'static str, settings: &TraceSettings) -> Result<Self, TraceSetupError> {
        if settings.otlp_endpoint.is_empty() {
            return Ok(Self { provider: None });
        }
        let endpoint = format!(
            "{}{OTLP_TRACES_PATH}",
            settings.otlp_endpoint.trim_end_matches('/')
        );
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()?;
        let queue = Arc::new(SpanQueue {
            queued: AtomicUsize::new(0),
            capacity: settings.max_queued_spans,
            failing: AtomicBool::new(false),
            endpoint,
        });
        let batches = BatchSpanProcessor::builder(CountedExporter {
            inner: exporter,
            queue: queue.clone(),
        })
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(settings.max_queued_spans)
                .build(),
        )
        .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BoundedProcessor {
                inner: batches,
                queue,
            })
            .with_sampler(FollowsSampledLinks(Sampler::ParentBased(Box::new(
                Sampler::TraceIdRatioBased(settings.sample_ratio),
            ))))
            .with_resource(Resource::builder().with_service_name(service).build())
            .build();
        global::set_tracer_provider(provider.clone());
        RECORDING.store(true, Ordering::Release);
        log::info!(
            "exporting traces to {} ({}% of new traces sampled)",
            settings.otlp_endpoint,
            settings.sample_ratio * 100.0
        );
        Ok(Self {
            provider: Some(provider),
        })
    }

    /// Exports the spans still queued, waiting a few seconds at most.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(error) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
                log::warn!("traces: the last spans were not all exported ({error})");
            }
        }
    }
}

/// Registers the counter of spans dropped (a full queue, a failed export) in `registry`.
pub fn register_metrics(registry: &mut Registry) {
    registry.register(
        "trace_spans_dropped",
        "Finished spans dropped instead of exported: the export queue was full or the \
         collector did not take them",
        DROPPED_SPANS.clone(),
    );
}

/// Whether spans are recorded at all (an exporter is set): work done only for a span is
/// skipped otherwise.
pub fn recording() -> bool {
    RECORDING.load(Ordering::Acquire)
}

fn tracer() -> &'static BoxedTracer {
    TRACER.get_or_init(|| global::tracer("cqrs-orders"))
}

/// A W3C `traceparent` value: version 00, the trace id, the parent span's id, the flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent(String);

impl TraceParent {
    /// The context of `context`'s span, if it has a valid one.
    pub fn of(context: &Context) -> Option<Self> {
        let span = context.span();
        let span_context = span.span_context();
        span_context.is_valid().then(|| {
            Self(format!(
                "00-{}-{}-{:02x}",
                span_context.trace_id(),
                span_context.span_id(),
                span_context.trace_flags().to_u8()
            ))
        })
    }

    /// The context of the span the current task runs in, if its trace is sampled: what an
    /// event carries on (an unsampled trace records nothing downstream, so it is not stored
    /// and sent with every event).
    pub fn current_sampled() -> Option<Self> {
        Context::map_current(|context| {
            if context.span().span_context().is_sampled() {
                Self::of(context)
            } else {
                None
            }
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

struct TraceParentHeader<'a>(Option<&'a str>);

impl Extractor for TraceParentHeader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.filter(|_| key == TRACEPARENT_HEADER)
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT_HEADER]
    }
}

/// The trace context a `traceparent` header carries (an empty context if none or invalid).
pub fn extract(traceparent: Option<&str>) -> Context {
    TraceContextPropagator::new().extract(&TraceParentHeader(traceparent))
}

/// The trace id of the span the current task runs in, for log lines.
pub fn current_trace_id() -> Option<String> {
    Context::map_current(|context| {
        let span = context.span();
        let span_context = span.span_context();
        span_context
            .is_valid()
            .then(|| span_context.trace_id().to_string())
    })
}

/// Sets an attribute of the span the current task runs in, if that span is recorded.
pub fn annotate(key: &'static str, value: impl std::fmt::Display) {
    if recording() {
        Context::map_current(|context| {
            let span = context.span();
            if span.is_recording() {
                span.set_attribute(KeyValue::new(key, value.to_string()));
            }
        });
    }
}

/// Starts a span child of `parent` that runs until its context is passed to [`end`]. Its name
/// and attributes are made by `describe` only if it is recorded: an unsampled span costs no
/// allocation beyond the SDK's own.
pub fn start(
    kind: SpanKind,
    parent: &Context,
    describe: impl FnOnce() -> (String, Vec<KeyValue>),
) -> Context {
    let span = tracer().build_with_context(SpanBuilder::from_name("").with_kind(kind), parent);
    let context = parent.with_span(span);
    let span = context.span();
    if span.is_recording() {
        let (name, attributes) = describe();
        span.update_name(name);
        span.set_attributes(attributes);
    }
    context
}

/// Ends the span of `context`, marked failed with `error` if one is given.
pub fn end(context: &Context, error: Option<String>) {
    let span = context.span();
    if let Some(error) = error {
        span.set_status(Status::error(error));
    }
    span.end();
}

/// Runs `work` in a child span of the current one named `name` (directly when the current span
/// is not recorded, as its child would not be).
pub async fn in_span<F: std::future::Future>(name: &'static str, work: F) -> F::Output {
    if !recording() || !Context::map_current(|context| context.span().is_recording()) {
        return work.await;
    }
    let parent = Context::current();
    let span = tracer().build_with_context(SpanBuilder::from_name(name), &parent);
    let context = parent.with_span(span);
    let output = work.with_context(context.clone()).await;
    end(&context, None);
    output
}

/// Records a span that already happened, from `started` to `ended`, child of `parent`, if
/// `parent` is sampled (its attributes are made only then).
pub fn record(
    name: &'static str,
    kind: SpanKind,
    parent: &Context,
    (started, ended): (SystemTime, SystemTime),
    attributes: impl FnOnce() -> Vec<KeyValue>,
    error: Option<String>,
) {
    if !recording() || !parent.span().span_context().is_sampled() {
        return;
    }
    let mut span = tracer().build_with_context(
        SpanBuilder::from_name(name)
            .with_kind(kind)
            .with_start_time(started)
            .with_attributes(attributes()),
        parent,
    );
    if let Some(error) = error {
        span.set_status(Status::error(error));
    }
    span.end_with_timestamp(ended);
}

/// Records a span of its own trace from `started` to `ended`, linked to each context of
/// `linked` that is sampled (a batch's span links to the trace of each event in it); nothing
/// if none is.
pub fn record_linked(
    name: &'static str,
    (started, ended): (SystemTime, SystemTime),
    linked: impl IntoIterator<Item = Context>,
    attributes: impl FnOnce() -> Vec<KeyValue>,
) {
    if !recording() {
        return;
    }
    let links: Vec<Link> = linked
        .into_iter()
        .map(|context| context.span().span_context().clone())
        .filter(|span_context| span_context.is_sampled())
        .map(Link::with_context)
        .collect();
    if links.is_empty() {
        return;
    }
    let mut span = tracer().build_with_context(
        SpanBuilder::from_name(name)
            .with_kind(SpanKind::Internal)
            .with_start_time(started)
            .with_links(links)
            .with_attributes(attributes()),
        &Context::new(),
    );
    span.end_with_timestamp(ended);
}

/// Parent-based ratio sampling, except that a span without a parent that links to sampled
/// spans is sampled: a batch's span is kept when an event in it is traced
/// ([`record_linked`] links sampled spans only).
#[derive(Debug, Clone)]
struct FollowsSampledLinks(Sampler);

impl ShouldSample for FollowsSampledLinks {
    fn should_sample(
        &self,
        parent: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let has_parent = parent.is_some_and(|context| context.span().span_context().is_valid());
        if !has_parent && links.iter().any(|link| link.span_context.is_sampled()) {
            return SamplingResult {
                decision: SamplingDecision::RecordAndSample,
                attributes: Vec::new(),
                trace_state: TraceState::default(),
            };
        }
        self.0
            .should_sample(parent, trace_id, name, kind, attributes, links)
    }
}

/// Spans finished and not yet exported, bounded: [`BoundedProcessor`] admits a span only
/// while fewer than `capacity` are queued, [`CountedExporter`] counts them out.
#[derive(Debug)]
struct SpanQueue {
    queued: AtomicUsize,
    capacity: usize,
    /// The last export failed: the next failure is not logged again, a success is.
    failing: AtomicBool,
    endpoint: String,
}

impl SpanQueue {
    fn admit(&self) -> bool {
        let admitted = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued < self.capacity).then_some(queued + 1)
            })
            .is_ok();
        if !admitted {
            DROPPED_SPANS.inc();
        }
        admitted
    }

    fn exported(&self, count: usize, result: &OTelSdkResult) {
        self.queued.fetch_sub(count, Ordering::AcqRel);
        match result {
            Ok(()) => {
                if self.failing.swap(false, Ordering::AcqRel) {
                    log::info!(
                        "traces: the collector at {} takes spans again",
                        self.endpoint
                    );
                }
            }
            Err(error) => {
                DROPPED_SPANS.inc_by(count as u64);
                if !self.failing.swap(true, Ordering::AcqRel) {
                    log::warn!(
                        "traces: cannot export spans to {} ({error}); dropping them until it \
                         answers",
                        self.endpoint
                    );
                }
            }
        }
    }
}

/// The SDK's batch processor behind a queue bound that counts what it drops: the SDK's own
/// bound drops without telling. Its queue is as large, so it never drops first.
#[derive(Debug)]
struct BoundedProcessor {
    inner: BatchSpanProcessor,
    queue: Arc<SpanQueue>,
}

impl SpanProcessor for BoundedProcessor {
    fn on_start(&self, span: &mut Span, context: &Context) {
        self.inner.on_start(span, context);
    }

    fn on_end(&self, span: SpanData) {
        if self.queue.admit() {
            self.inner.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[derive(Debug)]
struct CountedExporter<E> {
    inner: E,
    queue: Arc<SpanQueue>,
}

impl<E: SpanExporter> SpanExporter for CountedExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let count = batch.len();
        let result = self.inner.export(batch).await;
        self.queue.exported(count, &result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_continued_as_it_came() {
        let continued = TraceParent::of(&extract(Some(SAMPLED))).unwrap();
        assert_eq!(continued.as_str(), SAMPLED);
    }

    #[test]
    fn malformed_or_zero_traceparents_are_refused() {
        for text in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::of(&extract(Some(text))), None, "{text:?}");
        }
    }

    #[test]
    fn the_queue_admits_up_to_its_capacity_and_counts_the_rest() {
        let queue = SpanQueue {
            queued: AtomicUsize::new(0),
            capacity: 2,
            failing: AtomicBool::new(false),
            endpoint: "http://collector".to_owned(),
        };
        let dropped_before = DROPPED_SPANS.get();
        assert!(queue.admit() && queue.admit());
        assert!(!queue.admit());
        queue.exported(2, &Ok(()));
        assert!(queue.admit());
        queue.exported(
            1,
            &Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
                "collector away".to_owned(),
            )),
        );
        assert_eq!(queue.queued.load(Ordering::Acquire), 0);
        assert!(DROPPED_SPANS.get() - dropped_before >= 2);
    }

    #[test]
    fn settings_out_of_range_name_their_key() {
        let settings = |ratio, endpoint: &str| TraceSettings {
            otlp_endpoint: endpoint.to_owned(),
            sample_ratio: ratio,
            max_queued_spans: 10,
        };
        assert!(settings(0.01, "").validate().is_ok());
        assert!(settings(1.0, "http://127.0.0.1:4318").validate().is_ok());
        let refused = |settings: TraceSettings| settings.validate().unwrap_err().to_string();
        assert!(refused(settings(1.5, "")).contains("traces.sample_ratio"));
        assert!(refused(settings(0.5, "127.0.0.1:4318")).contains("traces.otlp_endpoint"));
    }
}
