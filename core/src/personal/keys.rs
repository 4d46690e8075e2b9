//! Where subjects' keys live: the trait, and a store of them in memory.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use super::cipher::SubjectKey;
use super::error::PersonalError;

/// What the key storage holds for a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// The subject's key.
    Active(SubjectKey),
    /// The key was destroyed: the subject's sealed values read as the placeholder.
    Forgotten,
}

/// Storage of one key per data subject.
pub trait PersonalKeys: Send + Sync {
    /// The keys of these subjects, made (and stored) for those that have none yet. Fails
    /// with [`PersonalError::Forgotten`] if one of them was forgotten.
    fn keys_for_append(
        &self,
        subjects: &[String],
    ) -> impl Future<Output = Result<HashMap<String, SubjectKey>, PersonalError>> + Send;

    /// What is stored for these subjects; a subject with no row is left out.
    fn keys_for_read(
        &self,
        subjects: &[String],
    ) -> impl Future<Output = Result<HashMap<String, KeyState>, PersonalError>> + Send;

    /// Destroys the subject's key, keeping only the fact that it was forgotten. Returns
    /// whether there was a key to destroy (`false` for an unknown or already forgotten
    /// subject, which is then recorded as forgotten too).
    fn forget(&self, subject: &str) -> impl Future<Output = Result<bool, PersonalError>> + Send;
}

/// Keys in memory, for tests and the in-memory store. Cloning shares the keys.
#[derive(Debug, Clone, Default)]
pub struct InMemoryPersonalKeys {
    keys: Arc<Mutex<HashMap<String, KeyState>>>,
}

impl InMemoryPersonalKeys {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, KeyState>> {
        self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl PersonalKeys for InMemoryPersonalKeys {
    async fn keys_for_append(&self, subjects: &[String]) -> Result<HashMap<String, SubjectKey>, PersonalError> {
        let mut keys = self.lock();
        if let Some(s) = subjects.iter().find(|s| keys.get(*s) == Some(&KeyState::Forgotten)) {
            return Err(PersonalError::Forgotten { subject: s.clone() });
        }
        let mut found = HashMap::new();
        for s in subjects {
            let state = keys.entry(s.clone()).or_insert_with(|| KeyState::Active(SubjectKey::generate()));
            if let KeyState::Active(key) = state {
                found.insert(s.clone(), key.clone());
            }
        }
        Ok(found)
    }

    async fn keys_for_read(&self, subjects: &[String]) -> Result<HashMap<String, KeyState>, PersonalError> {
        let keys = self.lock();
        Ok(subjects.iter().filter_map(|s| keys.get(s).map(|k| (s.clone(), k.clone()))).collect())
    }

    async fn forget(&self, subject: &str) -> Result<bool, PersonalError> {
        let old = self.lock().insert(subject.to_owned(), KeyState::Forgotten);
        Ok(matches!(old, Some(KeyState::Active(_))))
    }
}
