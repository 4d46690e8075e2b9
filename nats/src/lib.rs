//! The NATS JetStream side of tidemark: the relay publishes every event of the PostgreSQL
//! store's gap-safe global log to a JetStream stream, once and in log order, under a
//! partitioned subject scheme, with headers consumers can parse back; the
//! [`JetStreamFeed`] reads that stream back into projection runners; a [`KvProjection`]
//! publishes the current state of each stream to a JetStream KV bucket.
#![doc = include_str!("../README.md")]

mod config;
mod connect;
mod connect_error;
mod downcast;
mod error;
mod escape;
mod feed;
mod headers;
mod kv;
mod leader;
mod metrics;
#[cfg(feature = "cli")]
mod ops;
mod publish;
mod redact;
mod relay;
mod retry;
#[cfg(feature = "cli")]
mod sessions;
mod signature;
mod status;
mod stream;
mod subject;
mod trace_headers;

/// The NATS client whose types appear in this crate's API.
pub use async_nats;
pub use config::{ConfigError, RelayConfig};
pub use connect::NatsConnect;
pub use connect_error::NatsConnectError;
pub use downcast::Downcaster;
pub use error::{RelayError, Result};
pub use feed::{ConsumerSettings, JetStreamFeed, JetStreamSubscription};
pub use headers::{
    EventHeaders, HeaderError, HEADER_CAUSATION_ID, HEADER_CORRELATION_ID, HEADER_DOWNCAST_OF, HEADER_EVENT_TYPE,
    HEADER_MSG_ID, HEADER_POSITION, HEADER_RECORDED_AT, HEADER_SCHEMA_VERSION, HEADER_STREAM_ID, HEADER_STREAM_VERSION,
    HEADER_TENANT, HEADER_THIN, HEADER_TRACEPARENT, HEADER_TRACESTATE, HEADER_USER,
};
pub use kv::{ensure_kv_bucket, Evolve, KvError, KvProjection};
pub use metrics::{describe_metrics, RELAY_HELD_BACK_SECONDS, RELAY_LEADER};
pub use redact::redact_url;
pub use relay::NatsRelay;
pub use signature::{KeyError, MessageKey, Signature, HEADER_SIGNATURE, MIN_SECRET_LEN};
pub use status::{RelayMonitor, RelayRole, RelayStatus};
pub use stream::{ensure_stream, StreamError, StreamSettings};
pub use subject::{token_problem, SubjectError, SubjectScheme, DEFAULT_PARTITIONS, DEFAULT_PREFIX};
