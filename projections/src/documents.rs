//! A small document API (collection, key → JSON) that projections can be written against
//! to run unchanged on PostgreSQL ([`PgReadModels`](crate::PgReadModels)) and in memory
//! ([`MemoryReadModels`](crate::MemoryReadModels)).

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::{ApplyError, Result};

/// Document writes inside a batch's transaction.
pub trait DocumentTx: Send {
    /// The document under `key` in `collection`, as this transaction sees it.
    fn get(&mut self, collection: &str, key: &str) -> impl Future<Output = Result<Option<Value>, ApplyError>> + Send;

    /// Stores (or replaces) a document.
    fn put(&mut self, collection: &str, key: &str, body: Value) -> impl Future<Output = Result<(), ApplyError>> + Send;

    /// Removes a document (nothing happens when it does not exist).
    fn delete(&mut self, collection: &str, key: &str) -> impl Future<Output = Result<(), ApplyError>> + Send;

    /// The document under `key`, deserialised.
    fn get_as<T: DeserializeOwned>(
        &mut self,
        collection: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<T>, ApplyError>> + Send
    where
        Self: Sized,
    {
        async move {
            match self.get(collection, key).await? {
                Some(value) => Ok(Some(serde_json::from_value(value)?)),
                None => Ok(None),
            }
        }
    }

    /// Stores a serialisable document.
    fn put_as<T: Serialize + Sync>(
        &mut self,
        collection: &str,
        key: &str,
        body: &T,
    ) -> impl Future<Output = Result<(), ApplyError>> + Send
    where
        Self: Sized,
    {
        async move {
            let value = serde_json::to_value(body)?;
            self.put(collection, key, value).await
        }
    }
}

/// Document reads for queries, outside any batch. Each projection has its own documents:
/// reads name the projection that wrote them.
pub trait DocumentReader: Send + Sync {
    /// The document under `key` in `collection` of `projection`.
    fn document(
        &self,
        projection: &str,
        collection: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Value>>> + Send;

    /// Up to `limit` documents of `collection` of `projection` whose keys start with
    /// `prefix`, by key.
    fn documents(
        &self,
        projection: &str,
        collection: &str,
        prefix: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(String, Value)>>> + Send;
}
