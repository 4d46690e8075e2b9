//! Ops endpoints, for admins: sales, the fulfilment queue, dispatching.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use tidemark::{EventStore, StreamVersion};
use tidemark_projections::{BatchOptimisations, DocumentReader, ReadModelsAdmin};
use uuid::Uuid;

use super::auth::{Admin, Operator};
use super::bodies::DispatchBody;
use super::extract::{Ids, Params};
use super::intake::Target;
use super::orders::ListQuery;
use super::request::CommandRequest;
use crate::app::App;
use crate::domain::{fulfilment_stream, FulfilmentCommand};
use crate::error::ApiError;
use crate::read_models::{QueuedFulfilment, SalesDay};

/// Query parameters of `GET /sales`.
#[derive(Debug, Deserialize)]
pub(super) struct SalesQuery {
    /// Only this product.
    product: Option<String>,
    /// Most entries (default 100, at most 1000).
    limit: Option<usize>,
}

/// `GET /sales`: units and revenue per product per day.
pub(super) async fn sales<S, R>(
    State(app): State<Arc<App<S, R>>>,
    _: Operator,
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
pub(super) async fn fulfilments<S, R>(
    State(app): State<Arc<App<S, R>>>,
    _: Operator,
    Params(query): Params<ListQuery>,
) -> Result<Json<Vec<QueuedFulfilment>>, ApiError>
where
    S: EventStore,
    R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
{
    Ok(Json(app.fulfilment_queue(query.limit()).await?))
}

/// `POST /fulfilments/{order_id}/dispatch`: the parcel left the warehouse; the process
/// manager then ships the order.
pub(super) async fn dispatch<S, R>(
    State(app): State<Arc<App<S, R>>>,
    Admin(admin): Admin,
    Ids(order_id): Ids<Uuid>,
    request: CommandRequest<DispatchBody>,
) -> Result<Response, ApiError>
where
    S: EventStore + Clone + 'static,
    R: Send + Sync + 'static,
{
    tracing::info!(admin = %admin.name, %order_id, "dispatching a fulfilment");
    let stream = fulfilment_stream(order_id);
    let loaded = app.fulfilments().load(&stream).await.map_err(|e| ApiError::store(&e))?;
    // The fulfilment's tenant is its first event's. The default tenant's admin dispatches
    // for every tenant (the warehouse is shared); a tenant's admin for their tenant only.
    let first = app.fulfilments().store().read_stream(&stream, StreamVersion(1), 1).await;
    let tenant = first.map_err(|e| ApiError::store(&e))?.first().and_then(|e| e.metadata.tenant.clone());
    let allowed = admin.is_operator() || admin.tenant == tenant;
    if loaded.state.order_id().is_none() || !allowed {
        return Err(ApiError::NotFound("fulfilment"));
    }
    let request = request.map(FulfilmentCommand::from);
    let target = Target::fulfilment("dispatch", order_id).in_tenant(tenant);
    request.run(&app, target, &loaded.state, loaded.version).await
}

/// `DELETE /orders/{order_id}`: deletes the order for good (admins only). 204; 404 when
/// there is no such order; 410 when it was deleted already.
pub(super) async fn delete_order<S, R>(
    State(app): State<Arc<App<S, R>>>,
    Admin(admin): Admin,
    Ids(order_id): Ids<Uuid>,
) -> Result<StatusCode, ApiError>
where
    S: EventStore,
    R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
{
    let version = app.delete_order(&admin, order_id).await?;
    tracing::info!(admin = %admin.name, %order_id, tombstone = %version, "deleted an order");
    Ok(StatusCode::NO_CONTENT)
}
