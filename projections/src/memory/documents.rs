//! Documents in memory: staged in a transaction, read from the committed state.

use serde_json::Value;

use super::{lock, DocKey, MemoryReadModels, MemoryTx};
use crate::documents::{DocumentReader, DocumentTx};
use crate::error::{ApplyError, Result};

impl MemoryTx {
    fn key(&self, collection: &str, key: &str) -> Result<DocKey, ApplyError> {
        let namespace = self.namespace.clone().ok_or("documents are written inside a projection's batch")?;
        Ok((namespace, collection.to_owned(), key.to_owned()))
    }
}

impl DocumentTx for MemoryTx {
    async fn get(&mut self, collection: &str, key: &str) -> Result<Option<Value>, ApplyError> {
        let id = self.key(collection, key)?;
        if let Some(staged) = self.documents.get(&id) {
            return Ok(staged.clone());
        }
        Ok(lock(&self.inner.state).documents.get(&id).cloned())
    }

    async fn put(&mut self, collection: &str, key: &str, body: Value) -> Result<(), ApplyError> {
        let id = self.key(collection, key)?;
        self.documents.insert(id, Some(body));
        Ok(())
    }

    async fn delete(&mut self, collection: &str, key: &str) -> Result<(), ApplyError> {
        let id = self.key(collection, key)?;
        self.documents.insert(id, None);
        Ok(())
    }
}

impl DocumentReader for MemoryReadModels {
    async fn document(&self, projection: &str, collection: &str, key: &str) -> Result<Option<Value>> {
        let id = (projection.to_owned(), collection.to_owned(), key.to_owned());
        Ok(self.state().documents.get(&id).cloned())
    }

    async fn documents(
        &self,
        projection: &str,
        collection: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Value)>> {
        let state = self.state();
        let from = (projection.to_owned(), collection.to_owned(), prefix.to_owned());
        let found = state
            .documents
            .range(from..)
            .take_while(|((p, c, k), _)| p == projection && c == collection && k.starts_with(prefix))
            .take(limit)
            .map(|((_, _, k), v)| (k.clone(), v.clone()))
            .collect();
        Ok(found)
    }
}
