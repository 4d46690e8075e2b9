//! The tidemark sample app: an order domain, its read models and an HTTP + WebSocket front.
//!
//! - [`domain`]: the Order and Fulfilment aggregates, events, upcaster, process manager.
//! - [`read_models`]: projections written against the document API, and the consumers
//!   that notify users and run the process manager.
//! - [`app`]: command pipeline (202 + outcome), outcome hub, idempotency keys, queries.
//! - [`http`]: the axum router; [`runtime`]: the embedded and the PostgreSQL + JetStream
//!   modes over one code path; [`cli`]: the `orders` command line; [`seed`]: traffic;
//!   [`metrics`]: Prometheus text on an optional address; [`health`]: liveness and
//!   readiness; [`secret`]: values kept out of logs; [`telemetry`]: tracing spans, W3C
//!   trace context and the optional OpenTelemetry exporter.

pub mod app;
pub mod auth;
pub mod cli;
pub mod domain;
pub mod error;
pub mod health;
pub mod http;
pub mod metrics;
pub mod read_models;
pub mod runtime;
pub mod secret;
pub mod seed;
pub mod telemetry;
