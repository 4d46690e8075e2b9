//! Chaos mode: a fraction of command requests fail with 500 on purpose, half of them
//! before the command is taken in and half after (the command then runs, and a retry
//! with the same `Idempotency-Key` gets its 202).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tidemark::EventStore;

use crate::app::App;
use crate::error::ApiError;

/// The middleware; reads (`GET`, `HEAD`) and the dev login are spared.
pub(super) async fn chaos<S: EventStore, R>(
    State(app): State<Arc<App<S, R>>>,
    request: Request,
    next: Next,
) -> Response {
    let fraction = app.config().chaos;
    let spared = matches!(*request.method(), Method::GET | Method::HEAD) || request.uri().path().starts_with("/dev/");
    if fraction <= 0.0 || spared {
        return next.run(request).await;
    }
    let roll: f64 = rand::random();
    if roll < fraction / 2.0 {
        tracing::info!(path = request.uri().path(), "chaos: failing before the command");
        return ApiError::Chaos.into_response();
    }
    let response = next.run(request).await;
    if roll < fraction {
        tracing::info!("chaos: failing after the command");
        return ApiError::Chaos.into_response();
    }
    response
}
