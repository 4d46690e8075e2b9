//! Ops endpoints, for admins: sales, the fulfilment queue, dispatching.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use tidemark::{Aggregate, EventStore};
use tidemark_projections::{BatchOptimisations, DocumentReader, ReadModelsAdmin};
use uuid::Uuid;

use super::auth::Admin;
use super::extract::{Ids, Params};
use super::intake::{begin, Intake};
use super::orders::ListQuery;
use super::parse_json;
use crate::app::{App, Job};
use crate::domain::{fulfilment_stream, FulfilmentCommand};
use crate::error::ApiError;
use crate::read_models::{QueuedFulfilment, SalesDay};

/// Query parameters of `GET /sales`.
#[derive(Debug, Deserialize)]
pub struct SalesQuery {
    /// Only this product.
    product: Option<String>,
    /// Most entries (default 100, at most 1000).
    limit: Option<usize>,
}

/// `GET /sales`: units and revenue per product per day.
pub async fn sales<S, R>(
    State(app): State<Arc<App<S, R>>>,
    _: Admin,
    Params(query): Params<SalesQuery>,
) -> Result<Json<Vec<SalesDay>>, ApiError>
where
    S: EventStore,
    R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
{
    let prefix = query.product.map(|p| format!("{p}/")).unwrap_or_default();
    let limit = ListQuery::with_limit(query.limit).limit();
    Ok(Json(app.sales(&prefix, limit).await?))
}

/// `GET /fulfilments`: fulfilments waiting to be dispatched.
pub async fn fulfilments<S, R>(
    State(app): State<Arc<App<S, R>>>,
    _: Admin,
    Params(query): Params<ListQuery>,
) -> Result<Json<Vec<QueuedFulfilment>>, ApiError>
where
    S: EventStore,
    R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
{
    Ok(Json(app.fulfilment_queue(query.limit()).await?))
}

#[derive(Debug, Deserialize)]
struct DispatchBody {
    tracking: String,
}

/// `POST /fulfilments/{order_id}/dispatch`: the parcel left the warehouse; the process
/// manager then ships the order.
pub async fn dispatch<S, R>(
    State(app): State<Arc<App<S, R>>>,
    Admin(user): Admin,
    Ids(order_id): Ids<Uuid>,
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
    if let Some(replay) = ticket.already_done(&app, "dispatch", order_id).await? {
        return Ok(replay);
    }
    let DispatchBody { tracking } = parse_json(&body)?;
    let command = FulfilmentCommand::Dispatch { tracking };
    let loaded = app.fulfilments().load(&fulfilment_stream(order_id)).await.map_err(|e| ApiError::store(&e))?;
    if loaded.state.order_id().is_none() {
        return Err(ApiError::NotFound("fulfilment"));
    }
    loaded.state.decide(&command).map_err(|e| ApiError::Invalid(e.to_string()))?;
    ticket.submit(&app, "dispatch", order_id, Job::Fulfilment(command), None)
}
