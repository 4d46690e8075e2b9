//! `/orders`: commands (202 + outcome later) and queries (read models).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tidemark::{EventStore, StreamVersion};
use tidemark_projections::{BatchOptimisations, DocumentReader, ReadModelsAdmin};
use uuid::Uuid;

use super::auth::Admin;
use super::bodies::{NoBody, OrderBody, PlaceBody, ShipBody};
use super::extract::{Ids, Params};
use super::intake::Target;
use super::request::CommandRequest;
use crate::app::{App, ReadWait};
use crate::auth::User;
use crate::domain::{Order, OrderCommand};
use crate::error::ApiError;
use crate::read_models::OrderSummary;

/// Longest list a query returns.
const MAX_LIMIT: usize = 1000;

type AppState<S, R> = State<Arc<App<S, R>>>;

/// `POST /orders`: places an order for the authenticated user.
pub(super) async fn place<S, R>(
    State(app): AppState<S, R>,
    request: CommandRequest<PlaceBody>,
) -> Result<Response, ApiError>
where
    S: EventStore + Clone + 'static,
    R: Send + Sync + 'static,
{
    let order_id = request.new_order_id();
    let customer = request.user.name.clone();
    let request = request.try_map(|body| body.command(customer))?;
    request.run(&app, Target::order("place", order_id), &Order::default(), StreamVersion::EMPTY).await
}

/// Runs a command on an existing order: ownership (404 for someone else's order), then
/// [`CommandRequest::run`] on the order as the store has it.
async fn on_order<S, R>(
    app: &Arc<App<S, R>>,
    kind: &'static str,
    order_id: Uuid,
    request: CommandRequest<OrderCommand>,
) -> Result<Response, ApiError>
where
    S: EventStore + Clone + 'static,
    R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
{
    let loaded = app.owned_order(&request.user, order_id).await?;
    request.run(app, Target::order(kind, order_id), &loaded.state, loaded.version).await
}

/// `POST /orders/{id}/lines`, `/confirm`, `/pay` and `/cancel`: the command that the
/// body `B` (see [`OrderBody`]) becomes, on the caller's order.
pub(super) async fn command<S, R, B>(
    State(app): AppState<S, R>,
    Ids(order_id): Ids<Uuid>,
    request: CommandRequest<B>,
) -> Result<Response, ApiError>
where
    S: EventStore + Clone + 'static,
    R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
    B: OrderBody,
{
    on_order(&app, B::KIND, order_id, request.map(B::command)).await
}

/// `DELETE /orders/{id}/lines/{product}`: removes a product's line.
pub(super) async fn remove_line<S, R>(
    State(app): AppState<S, R>,
    Ids((order_id, product)): Ids<(Uuid, String)>,
    request: CommandRequest<NoBody>,
) -> Result<Response, ApiError>
where
    S: EventStore + Clone + 'static,
    R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
{
    on_order(&app, "remove_line", order_id, request.map(|_| OrderCommand::RemoveLine { product })).await
}

/// `POST /orders/{id}/ship`: ships the order by hand (admin; normally the process
/// manager ships after the warehouse dispatches).
pub(super) async fn ship<S, R>(
    State(app): AppState<S, R>,
    Admin(admin): Admin,
    Ids(order_id): Ids<Uuid>,
    request: CommandRequest<ShipBody>,
) -> Result<Response, ApiError>
where
    S: EventStore + Clone + 'static,
    R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
{
    tracing::info!(admin = %admin.name, %order_id, "shipping an order by hand");
    on_order(&app, "ship", order_id, request.map(OrderCommand::from)).await
}

/// Query parameters of `GET /orders/{id}`.
#[derive(Debug, Deserialize)]
pub(super) struct ReadQuery {
    /// Wait up to this many milliseconds for the read model (read-your-writes).
    wait_ms: Option<u64>,
    /// The version to wait for (default: the order's version when the query arrives).
    version: Option<u64>,
}

/// `GET /orders/{id}`: the order's details, with an `ETag` of its version.
pub(super) async fn get<S, R>(
    State(app): AppState<S, R>,
    user: User,
    Ids(order_id): Ids<Uuid>,
    Params(query): Params<ReadQuery>,
) -> Result<Response, ApiError>
where
    S: EventStore + Clone + 'static,
    R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
{
    let wait = query
        .wait_ms
        .map(|ms| ReadWait { version: query.version.map(StreamVersion), timeout: Duration::from_millis(ms) });
    let view = app.order_view(&user, order_id, wait).await?;
    let etag = HeaderValue::from_str(&format!("\"{}\"", view.version)).ok();
    let mut response = Json(view).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// Query parameters of lists.
#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    /// Most entries (default 100, at most 1000).
    limit: Option<usize>,
}

impl ListQuery {
    /// A query with this limit.
    pub(super) fn with_limit(limit: Option<usize>) -> Self {
        Self { limit }
    }

    /// The limit to use.
    pub(super) fn limit(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, MAX_LIMIT)
    }
}

/// `GET /orders`: the authenticated user's orders.
pub(super) async fn list<S, R>(
    State(app): AppState<S, R>,
    user: User,
    Params(query): Params<ListQuery>,
) -> Result<Json<Vec<OrderSummary>>, ApiError>
where
    S: EventStore + Clone + 'static,
    R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
{
    Ok(Json(app.customer_orders(&user.name, query.limit()).await?))
}
