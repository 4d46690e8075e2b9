//! Queries: read models for reads, the store only to check ownership before a command
//! and to learn the version a read-your-writes wait needs.

use std::time::Duration;

use serde::de::DeserializeOwned;
use tidemark::{EventStore, ExpectedVersion, Loaded, StreamVersion};
use tidemark_projections::{wait_for_version, BatchOptimisations, DocumentReader, ProjectionError, ReadModelsAdmin};
use uuid::Uuid;

use super::App;
use crate::auth::User;
use crate::domain::{order_stream, Order, OrderStatus};
use crate::error::ApiError;
use crate::read_models::{
    OrderSummary, OrderView, QueuedFulfilment, SalesDay, CUSTOMER_ORDERS, FULFILMENT_QUEUE, ORDERS, SALES,
};

/// A read-your-writes wait: until the order read model includes `version` (by default,
/// the order's version when the query arrived), for at most `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadWait {
    /// The stream version to wait for; `None` for the current one.
    pub version: Option<StreamVersion>,
    /// How long to wait at most.
    pub timeout: Duration,
}

fn parse<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::Internal(format!("a read-model document does not parse: {e}")))
}

impl<S, R> App<S, R>
where
    S: EventStore,
    R: ReadModelsAdmin + BatchOptimisations + DocumentReader,
{
    /// The order as the store has it, if `user` may act on it (its customer, or an admin).
    pub async fn owned_order(&self, user: &User, order_id: Uuid) -> Result<Loaded<Order>, ApiError> {
        let loaded = self.orders.load(&order_stream(order_id)).await.map_err(|e| ApiError::store(&e))?;
        let visible = loaded.state.status() != OrderStatus::Unplaced && user.may_act_for(loaded.state.customer());
        if visible {
            Ok(loaded)
        } else {
            Err(ApiError::NotFound("order"))
        }
    }

    /// An order's details, after an optional read-your-writes wait.
    pub async fn order_view(&self, user: &User, order_id: Uuid, wait: Option<ReadWait>) -> Result<OrderView, ApiError> {
        if let Some(wait) = wait {
            // Ownership first, from the store: an order of someone else, like one that does
            // not exist, is not found at once, never waited for, so that the two answers
            // (status, body, time) cannot be told apart.
            let loaded = self.owned_order(user, order_id).await?;
            self.wait_for_order(order_id, wait.version.unwrap_or(loaded.version), wait.timeout).await?;
        }
        let document = self.read_models.document(ORDERS, ORDERS, &order_id.to_string()).await;
        let document = document.map_err(|e| ApiError::read_models(&e))?.ok_or(ApiError::NotFound("order"))?;
        let view: OrderView = parse(document)?;
        if !user.may_act_for(view.state.customer()) {
            return Err(ApiError::NotFound("order"));
        }
        // The read model keeps a deleted order's row: the store says whether it is gone.
        if self.is_deleted(order_id).await? {
            return Err(ApiError::Gone("order"));
        }
        Ok(view)
    }

    /// Whether the order's stream ends with a tombstone.
    pub async fn is_deleted(&self, order_id: Uuid) -> Result<bool, ApiError> {
        let stream = order_stream(order_id);
        let store = self.orders.store();
        let version = store.stream_version(&stream).await.map_err(|e| ApiError::store(&e))?;
        if version == StreamVersion::EMPTY {
            return Ok(false);
        }
        let last = store.read_stream(&stream, version, 1).await.map_err(|e| ApiError::store(&e))?;
        Ok(last.first().is_some_and(|e| e.is_tombstone()))
    }

    /// Deletes an order for good: its stream gets a tombstone, after which commands on it
    /// and reads of it answer 410 Gone. Not found (404) when there is no such order.
    pub async fn delete_order(&self, user: &User, order_id: Uuid) -> Result<StreamVersion, ApiError> {
        self.owned_order(user, order_id).await?;
        let stream = order_stream(order_id);
        let outcome = self.orders.store().tombstone(&stream, ExpectedVersion::Any).await;
        Ok(outcome.map_err(|e| ApiError::store(&e))?.version)
    }

    async fn wait_for_order(&self, order_id: Uuid, version: StreamVersion, timeout: Duration) -> Result<(), ApiError> {
        let stream = order_stream(order_id);
        let timeout = timeout.min(self.config.max_wait);
        match wait_for_version(&self.read_models, ORDERS, &stream, version, timeout, None).await {
            Ok(()) => Ok(()),
            Err(ProjectionError::WaitTimedOut { .. }) => Err(ApiError::Lagging),
            Err(e) => Err(ApiError::read_models(&e)),
        }
    }

    /// `customer`'s orders, up to `limit`, by order id (UUID v7: by time).
    pub async fn customer_orders(&self, customer: &str, limit: usize) -> Result<Vec<OrderSummary>, ApiError> {
        self.list(ORDERS, CUSTOMER_ORDERS, &format!("{customer}/"), limit).await
    }

    /// Sales days whose key (`<product>/<day>`) starts with `prefix`.
    pub async fn sales(&self, prefix: &str, limit: usize) -> Result<Vec<SalesDay>, ApiError> {
        self.list(SALES, SALES, prefix, limit).await
    }

    /// Fulfilments waiting to be dispatched.
    pub async fn fulfilment_queue(&self, limit: usize) -> Result<Vec<QueuedFulfilment>, ApiError> {
        self.list(FULFILMENT_QUEUE, FULFILMENT_QUEUE, "", limit).await
    }

    async fn list<T: DeserializeOwned>(
        &self,
        projection: &str,
        collection: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<T>, ApiError> {
        let documents = self.read_models.documents(projection, collection, prefix, limit).await;
        documents.map_err(|e| ApiError::read_models(&e))?.into_iter().map(|(_, value)| parse(value)).collect()
    }
}
