//! The NATS JetStream relay of tidemark: it publishes every event of the PostgreSQL
//! store's gap-safe global log to a JetStream stream, once and in log order, under a
//! partitioned subject scheme, with headers consumers can parse back.
#![doc = include_str!("../README.md")]

mod config;
mod connect;
mod connect_error;
mod downcast;
mod error;
mod escape;
mod headers;
mod leader;
mod publish;
mod redact;
mod relay;
mod retry;
mod signature;
mod status;
mod stream;
mod subject;

pub use config::{ConfigError, RelayConfig};
pub use connect::NatsConnect;
pub use connect_error::NatsConnectError;
pub use downcast::Downcaster;
pub use error::{RelayError, Result};
pub use headers::{
    EventHeaders, HeaderError, HEADER_CAUSATION_ID, HEADER_CORRELATION_ID, HEADER_DOWNCAST_OF, HEADER_EVENT_TYPE,
    HEADER_MSG_ID, HEADER_POSITION, HEADER_RECORDED_AT, HEADER_SCHEMA_VERSION, HEADER_STREAM_ID, HEADER_STREAM_VERSION,
    HEADER_TENANT, HEADER_THIN, HEADER_USER,
};
pub use redact::redact_url;
pub use relay::NatsRelay;
pub use signature::{KeyError, MessageKey, Signature, HEADER_SIGNATURE, MIN_SECRET_LEN};
pub use status::{RelayMonitor, RelayRole, RelayStatus};
pub use stream::{ensure_stream, StreamError, StreamSettings};
pub use subject::{fnv1a_32, token_problem, SubjectError, SubjectScheme, DEFAULT_PARTITIONS, DEFAULT_PREFIX};
