//! The HTTP and WebSocket front: commands are accepted with 202 and a `Location` to poll,
//! queries read the read models, outcomes are pushed over `/ws`.

mod admin;
mod auth;
mod bodies;
mod chaos;
mod commands;
mod extract;
mod intake;
mod orders;
mod request;
mod ws;

use std::sync::Arc;

use axum::http::header;
use axum::response::Html;
use axum::routing::{delete, get, post};
use axum::{middleware, Router};
use serde::de::DeserializeOwned;
use tidemark::EventStore;
use tidemark_projections::{BatchOptimisations, DocumentReader, ReadModelsAdmin};

use self::bodies::{CancelBody, ConfirmBody, PayBody};
use crate::app::App;
use crate::domain::Line;
use crate::error::ApiError;

pub use auth::bearer;
pub use request::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};

/// The page: plain HTML; its script is [`PAGE_JS`], served at `/page.js`.
pub const PAGE: &str = include_str!("page.html");
/// The page's script.
pub const PAGE_JS: &str = include_str!("page.js");

/// Parses a JSON body; an empty body counts as `{}`.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the body is not the expected JSON: {e}")))
}

/// The app's routes (the health routes, [`crate::health::health_routes`], are merged in
/// by the process that serves them).
pub fn router<S, R>(app: Arc<App<S, R>>) -> Router
where
    S: EventStore + Clone + 'static,
    R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
{
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/page.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], PAGE_JS) }))
        .route("/dev/login", post(auth::dev_login::<S, R>))
        .route("/orders", post(orders::place::<S, R>).get(orders::list::<S, R>))
        .route("/orders/{id}", get(orders::get::<S, R>).delete(admin::delete_order::<S, R>))
        .route("/orders/{id}/lines", post(orders::command::<S, R, Line>))
        .route("/orders/{id}/lines/{product}", delete(orders::remove_line::<S, R>))
        .route("/orders/{id}/confirm", post(orders::command::<S, R, ConfirmBody>))
        .route("/orders/{id}/pay", post(orders::command::<S, R, PayBody>))
        .route("/orders/{id}/ship", post(orders::ship::<S, R>))
        .route("/orders/{id}/cancel", post(orders::command::<S, R, CancelBody>))
        .route("/commands/{id}", get(commands::get::<S, R>))
        .route("/sales", get(admin::sales::<S, R>))
        .route("/fulfilments", get(admin::fulfilments::<S, R>))
        .route("/fulfilments/{id}/dispatch", post(admin::dispatch::<S, R>))
        .route("/ws", get(ws::upgrade::<S, R>))
        .layer(middleware::from_fn_with_state(app.clone(), chaos::chaos::<S, R>))
        .layer(middleware::from_fn(crate::metrics::record_http))
        .layer(middleware::from_fn(crate::telemetry::trace_http))
        .with_state(app)
}
