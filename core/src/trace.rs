//! W3C trace context (`traceparent`, `tracestate`) carried in event metadata.
//!
//! A command handled while a [`TraceContext`] is current (see [`TraceContext::scope`]),
//! or with a `traceparent` already in its metadata, records a child of that context under
//! the metadata header [`TRACEPARENT`] (and [`TRACESTATE`], when the context has one) of
//! every event it appends. Whoever reads the event later (a relay, a projection, a
//! process manager) continues the same trace from there. A value that is not a valid
//! `traceparent` is ignored: tracing never fails a command.

use std::fmt;
use std::future::Future;
use std::sync::OnceLock;

use crate::metadata::Metadata;

/// The metadata header (and NATS header) holding the W3C `traceparent`.
pub const TRACEPARENT: &str = "traceparent";
/// The metadata header (and NATS header) holding the W3C `tracestate`.
pub const TRACESTATE: &str = "tracestate";
/// The longest `tracestate` kept, in bytes (the W3C limit); a longer one is dropped.
pub const MAX_TRACESTATE_LEN: usize = 512;
/// The longest `traceparent` read, in bytes; a longer one is ignored.
pub const MAX_TRACEPARENT_LEN: usize = 512;

/// The length of a version 00 `traceparent`: `00-<32 hex>-<16 hex>-<2 hex>`.
const VERSION_00_LEN: usize = 55;

/// A parsed W3C `traceparent`: a trace id, the id of the span that is the parent, flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The trace id, never all zeros.
    pub trace_id: [u8; 16],
    /// The parent span's id, never all zeros.
    pub span_id: [u8; 8],
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceParent {
    /// Reads a `traceparent`. Version 00 must be exactly 55 bytes; a later version (not
    /// `ff`) may carry more fields after a `-`, which are ignored. Hex must be lowercase;
    /// all-zero ids are invalid. Anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim_matches([' ', '\t']);
        let bytes = text.as_bytes();
        if bytes.len() < VERSION_00_LEN || bytes.len() > MAX_TRACEPARENT_LEN {
            return None;
        }
        let version = hex_array::<1>(&bytes[0..2])?[0];
        let exact = bytes.len() == VERSION_00_LEN;
        if version == 0xff || (version == 0 && !exact) || (!exact && bytes[VERSION_00_LEN] != b'-') {
            return None;
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let trace_id = hex_array::<16>(&bytes[3..35])?;
        let span_id = hex_array::<8>(&bytes[36..52])?;
        let flags = hex_array::<1>(&bytes[53..55])?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self { trace_id, span_id, flags })
    }

    /// A new trace: random trace and span ids, sampled.
    pub fn new_root() -> Self {
        let trace_id = *uuid::Uuid::new_v4().as_bytes();
        Self { trace_id, span_id: random_span_id(), flags: 1 }
    }

    /// A child: the same trace id and flags, a new random span id.
    pub fn child(&self) -> Self {
        Self { span_id: random_span_id(), ..*self }
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }
}

impl fmt::Display for TraceParent {
    /// The version 00 form, `00-<trace id>-<span id>-<flags>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{:02x}", hex(&self.trace_id), hex(&self.span_id), self.flags)
    }
}

/// A `traceparent` with the `tracestate` that travels with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace and parent span.
    pub parent: TraceParent,
    /// Vendor state, passed on unchanged; `None` when absent or invalid.
    pub state: Option<String>,
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

impl TraceContext {
    /// A context from header values; `None` when `traceparent` is absent or invalid. An
    /// invalid or oversize `tracestate` is dropped.
    pub fn from_headers(traceparent: Option<&str>, tracestate: Option<&str>) -> Option<Self> {
        let parent = TraceParent::parse(traceparent?)?;
        Some(Self { parent, state: tracestate.filter(|s| valid_state(s)).map(str::to_owned) })
    }

    /// The context recorded in an event's metadata, if any.
    pub fn of_metadata(metadata: &Metadata) -> Option<Self> {
        Self::from_headers(
            metadata.headers.get(TRACEPARENT).map(String::as_str),
            metadata.headers.get(TRACESTATE).map(String::as_str),
        )
    }

    /// A new trace with no state.
    pub fn new_root() -> Self {
        Self { parent: TraceParent::new_root(), state: None }
    }

    /// A child context: the same trace and state, a new span id.
    pub fn child(&self) -> Self {
        Self { parent: self.parent.child(), state: self.state.clone() }
    }

    /// Writes the context into metadata headers, replacing any earlier one.
    pub fn record(&self, metadata: &mut Metadata) {
        metadata.headers.insert(TRACEPARENT.to_owned(), self.parent.to_string());
        match &self.state {
            Some(state) => metadata.headers.insert(TRACESTATE.to_owned(), state.clone()),
            None => metadata.headers.remove(TRACESTATE),
        };
    }

    /// The context current in this task (set by [`scope`](Self::scope)), if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `future` with this context current.
    pub fn scope<F: Future>(self, future: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, future)
    }
}

/// How a span stands to a trace context read from an event or a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Relation {
    /// The span continues the context: its parent is the context's span.
    Child,
    /// The span handles the context among others (a batch): it links to it.
    Link,
}

/// Connects a `tracing` span to a trace context, for a subscriber that knows trace ids
/// (such as an OpenTelemetry layer). Installed once per process with [`set_span_hook`].
pub type SpanHook = fn(&tracing::Span, &TraceContext, Relation);

static SPAN_HOOK: OnceLock<SpanHook> = OnceLock::new();

/// Installs the process's span hook; false when one is installed already.
pub fn set_span_hook(hook: SpanHook) -> bool {
    SPAN_HOOK.set(hook).is_ok()
}

/// Whether a span hook is installed: callers skip reading contexts for it otherwise.
pub fn span_hook_set() -> bool {
    SPAN_HOOK.get().is_some()
}

/// Hands `span` and `context` to the span hook, if one is installed and the span is enabled.
pub fn relate(span: &tracing::Span, context: &TraceContext, relation: Relation) {
    if let Some(hook) = SPAN_HOOK.get() {
        if !span.is_disabled() {
            hook(span, context, relation);
        }
    }
}

/// Records, in metadata about to be appended, a child of the context it names or else of
/// the current one, and returns the recorded `traceparent`. Metadata with neither is left
/// alone.
pub fn stamp(metadata: &mut Metadata) -> Option<TraceParent> {
    let parent = TraceContext::of_metadata(metadata).or_else(TraceContext::current)?;
    let child = parent.child();
    child.record(metadata);
    Some(child.parent)
}

/// A `tracestate` kept: at most 512 bytes of printable ASCII.
fn valid_state(state: &str) -> bool {
    !state.is_empty() && state.len() <= MAX_TRACESTATE_LEN && state.bytes().all(|b| (0x20..0x7f).contains(&b))
}

fn random_span_id() -> [u8; 8] {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut id = [0; 8];
    id.copy_from_slice(&bytes[..8]);
    if id == [0; 8] {
        id[7] = 1;
    }
    id
}

fn hex_array<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
