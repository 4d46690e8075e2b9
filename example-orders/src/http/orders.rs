//! `/orders`: commands (202 + outcome later) and queries (read models).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tidemark::{Aggregate, EventStore, StreamVersion};
use tidemark_projections::{BatchOptimisations, DocumentReader, ReadModelsAdmin};
use uuid::Uuid;

use super::extract::{Ids, Params};
use super::intake::{begin, if_match, Intake};
use super::parse_json;
use crate::app::{App, Job, ReadWait};
use crate::auth::User;
use crate::domain::{Currency, Line, Order, OrderCommand};
use crate::error::ApiError;
use crate::read_models::OrderSummary;

/// Longest list a query returns.
const MAX_LIMIT: usize = 1000;

type AppState<S, R> = State<Arc<App<S, R>>>;

/// `POST /orders` body.
#[derive(Debug, Deserialize)]
struct PlaceBody {
    currency: String,
    lines: Vec<Line>,
}

/// `POST /orders/{id}/pay` body.
#[derive(Debug, Deserialize)]
struct PayBody {
    payment_id: String,
    amount_minor: i64,
}

/// `POST /orders/{id}/ship` body.
#[derive(Debug, Deserialize)]
struct ShipBody {
    tracking: String,
}

/// `POST /orders/{id}/cancel` body.
#[derive(Debug, Deserialize)]
struct CancelBody {
    reason: String,
}

/// `POST /orders`: places an order for the authenticated user.
pub async fn place<S, R>(
    State(app): AppState<S, R>,
    user: User,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError>
where
    S: EventStore + Clone + 'static,
    R: Send + Sync + 'static,
{
    let ticket = match begin(&app, user, &headers, &method, &uri, &body)? {
        Intake::Replay(response) => return Ok(response),
        Intake::Fresh(ticket) => ticket,
    };
    if let Some(replay) = ticket.already_done(&app, "place", ticket.new_order_id).await? {
        return Ok(replay);
    }
    let body: PlaceBody = parse_json(&body)?;
    let currency = Currency::new(&body.currency).map_err(|e| ApiError::Invalid(e.to_string()))?;
    let command = OrderCommand::Place { customer: ticket.user().name.clone(), lines: body.lines, currency };
    Order::default().decide(&command).map_err(|e| ApiError::Invalid(e.to_string()))?;
    let order_id = ticket.new_order_id;
    ticket.submit(&app, "place", order_id, Job::Order(command), None)
}

/// The parts of a request for a command on an existing order.
pub struct OrderRequest {
    user: User,
    order_id: Uuid,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

/// Takes a command on an existing order in: replay check, body, ownership (404 for
/// someone else's order), `If-Match` (409), the rules on the current state (422), 202.
async fn on_order<S, R>(
    app: &Arc<App<S, R>>,
    request: OrderRequest,
    kind: &'static str,
    command: impl FnOnce(&[u8]) -> Result<OrderCommand, ApiError>,
) -> Result<Response, ApiError>
where
    S: EventStore + Clone + 'static,
    R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
{
    let OrderRequest { user, order_id, method, uri, headers, body } = request;
    let ticket = match begin(app, user, &headers, &method, &uri, &body)? {
        Intake::Replay(response) => return Ok(response),
        Intake::Fresh(ticket) => ticket,
    };
    let command = command(&body)?;
    let loaded = app.owned_order(ticket.user(), order_id).await?;
    if let Some(replay) = ticket.already_done(app, kind, order_id).await? {
        return Ok(replay);
    }
    let expected = if_match(&headers)?;
    if let Some(expected) = expected.filter(|e| *e != loaded.version) {
        return Err(ApiError::Conflict { expected, actual: loaded.version });
    }
    loaded.state.decide(&command).map_err(|e| ApiError::Invalid(e.to_string()))?;
    ticket.submit(app, kind, order_id, Job::Order(command), expected)
}

macro_rules! order_command {
    ($(#[$doc:meta])* $name:ident, $kind:literal, |$body:ident| $make:expr) => {
        $(#[$doc])*
        pub async fn $name<S, R>(
            State(app): AppState<S, R>,
            user: User,
            Ids(order_id): Ids<Uuid>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Result<Response, ApiError>
        where
            S: EventStore + Clone + 'static,
            R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
        {
            let request = OrderRequest { user, order_id, method, uri, headers, body };
            on_order(&app, request, $kind, |$body: &[u8]| $make).await
        }
    };
}

order_command!(
    /// `POST /orders/{id}/lines`: adds a line.
    add_line, "add_line", |body| Ok(OrderCommand::AddLine { line: parse_json(body)? })
);
order_command!(
    /// `POST /orders/{id}/confirm`: confirms the order (no body).
    confirm, "confirm", |_body| Ok(OrderCommand::Confirm)
);
order_command!(
    /// `POST /orders/{id}/pay`: records a payment.
    pay, "pay", |body| {
        let PayBody { payment_id, amount_minor } = parse_json(body)?;
        Ok(OrderCommand::Pay { payment_id, amount_minor })
    }
);
order_command!(
    /// `POST /orders/{id}/cancel`: cancels the order.
    cancel, "cancel", |body| {
        let CancelBody { reason } = parse_json(body)?;
        Ok(OrderCommand::Cancel { reason })
    }
);

/// `DELETE /orders/{id}/lines/{product}`: removes a product's line.
pub async fn remove_line<S, R>(
    State(app): AppState<S, R>,
    user: User,
    Ids((order_id, product)): Ids<(Uuid, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError>
where
    S: EventStore + Clone + 'static,
    R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
{
    let request = OrderRequest { user, order_id, method, uri, headers, body };
    on_order(&app, request, "remove_line", |_| Ok(OrderCommand::RemoveLine { product })).await
}

/// `POST /orders/{id}/ship`: ships the order by hand (admin; normally the process
/// manager ships after the warehouse dispatches).
pub async fn ship<S, R>(
    State(app): AppState<S, R>,
    super::auth::Admin(user): super::auth::Admin,
    Ids(order_id): Ids<Uuid>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError>
where
    S: EventStore + Clone + 'static,
    R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
{
    let request = OrderRequest { user, order_id, method, uri, headers, body };
    on_order(&app, request, "ship", |body| {
        let ShipBody { tracking } = parse_json(body)?;
        Ok(OrderCommand::Ship { tracking })
    })
    .await
}

/// Query parameters of `GET /orders/{id}`.
#[derive(Debug, Deserialize)]
pub struct ReadQuery {
    /// Wait up to this many milliseconds for the read model (read-your-writes).
    wait_ms: Option<u64>,
    /// The version to wait for (default: the order's version when the query arrives).
    version: Option<u64>,
}

/// `GET /orders/{id}`: the order's details, with an `ETag` of its version.
pub async fn get<S, R>(
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
pub struct ListQuery {
    /// Most entries (default 100, at most 1000).
    limit: Option<usize>,
}

impl ListQuery {
    /// A query with this limit.
    pub fn with_limit(limit: Option<usize>) -> Self {
        Self { limit }
    }

    /// The limit to use.
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, MAX_LIMIT)
    }
}

/// `GET /orders`: the authenticated user's orders.
pub async fn list<S, R>(
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
