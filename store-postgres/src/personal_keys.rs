//! Subjects' keys in PostgreSQL (table `personal_keys`, store migration 1002), and
//! forgetting a subject: its key destroyed and the snapshots of its streams deleted.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::PgPool;
use tidemark::{BackendError, KeyState, PersonalData, PersonalError, PersonalKeys, SubjectKey};

use crate::config::PgStoreConfig;
use crate::error::{is_transient, SetupError};

/// What forgetting a subject did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForgetReport {
    /// Whether a key was destroyed (`false`: the subject had no key or was already forgotten).
    pub key_destroyed: bool,
    /// The streams holding an event of the subject, whose snapshots were deleted.
    pub streams: Vec<String>,
    /// How many snapshots were deleted.
    pub snapshots_deleted: u64,
}

/// [`PersonalKeys`] in the store's schema of PostgreSQL. No key is cached: every append
/// and every read of personal data looks its keys up (one statement per batch), so a
/// forget takes effect for every reader from the moment it commits. Cloning shares the pool.
///
/// Keys are kept in plain bytes in the database: whoever can read the table can open the
/// sealed values. A destroyed key stays in PostgreSQL's dead tuples until `VACUUM` reclaims
/// them and in the write-ahead log (and its archives and backups) until they are recycled.
#[derive(Debug, Clone)]
pub struct PgPersonalKeys {
    pool: PgPool,
    table: String,
    snapshots: String,
    events: String,
    data: Arc<PersonalData>,
}

fn keys_error(context: &'static str) -> impl FnOnce(sqlx::Error) -> PersonalError {
    move |e| PersonalError::Keys(BackendError::new(context, is_transient(&e), e))
}

/// A JSON pointer as a PostgreSQL text path (`/a/b~1c` → `{a,b/c}`).
fn path_of(pointer: &str) -> Vec<String> {
    pointer.split('/').skip(1).map(|t| t.replace("~1", "/").replace("~0", "~")).collect()
}

impl PgPersonalKeys {
    /// The keys of the store in `schema` (migrated with store migration 1002), for the
    /// personal fields `data` registers (used to find a forgotten subject's streams).
    pub fn new(pool: PgPool, schema: &str, data: Arc<PersonalData>) -> Result<Self, SetupError> {
        PgStoreConfig::default().schema(schema).validate()?;
        let q = |t: &str| format!("\"{schema}\".{t}");
        Ok(Self { pool, table: q("personal_keys"), snapshots: q("snapshots"), events: q("events"), data })
    }

    /// The registry of personal fields.
    pub fn personal_data(&self) -> &Arc<PersonalData> {
        &self.data
    }

    /// Forgets `subject` in one transaction: destroys its key (the row keeps only when it
    /// was forgotten) and deletes the snapshots of every stream holding an event of the
    /// subject, since snapshots keep aggregate state in plain text. Read models built
    /// before the forget still hold what they revealed: rebuild them (or have the
    /// projection drop the subject's rows).
    pub async fn forget_subject(&self, subject: &str) -> Result<ForgetReport, PersonalError> {
        let mut tx = self.pool.begin().await.map_err(keys_error("begin forget"))?;
        let sql = format!("SELECT key IS NOT NULL FROM {} WHERE subject = $1 FOR UPDATE", self.table);
        let had: Option<bool> =
            sqlx::query_scalar(&sql).bind(subject).fetch_optional(&mut *tx).await.map_err(keys_error("lock key"))?;
        let sql = format!(
            "INSERT INTO {t} (subject, key, forgotten_at) VALUES ($1, NULL, now()) \
             ON CONFLICT (subject) DO UPDATE SET key = NULL, forgotten_at = COALESCE({t}.forgotten_at, now())",
            t = self.table
        );
        sqlx::query(&sql).bind(subject).execute(&mut *tx).await.map_err(keys_error("destroy key"))?;
        let mut streams = Vec::new();
        for (event_type, pointer) in self.data.subject_pointers() {
            let sql = format!(
                "SELECT DISTINCT stream_id FROM {} WHERE event_type = $1 AND payload #>> $2::text[] = $3",
                self.events
            );
            let found: Vec<String> = sqlx::query_scalar(&sql)
                .bind(event_type)
                .bind(path_of(pointer))
                .bind(subject)
                .fetch_all(&mut *tx)
                .await
                .map_err(keys_error("find the subject's streams"))?;
            streams.extend(found);
        }
        streams.sort();
        streams.dedup();
        let sql = format!("DELETE FROM {} WHERE stream_id = ANY($1)", self.snapshots);
        let deleted =
            sqlx::query(&sql).bind(&streams).execute(&mut *tx).await.map_err(keys_error("delete snapshots"))?;
        tx.commit().await.map_err(keys_error("commit forget"))?;
        Ok(ForgetReport { key_destroyed: had == Some(true), streams, snapshots_deleted: deleted.rows_affected() })
    }

    async fn read(&self, subjects: &[String]) -> Result<HashMap<String, KeyState>, PersonalError> {
        let sql = format!("SELECT subject, key FROM {} WHERE subject = ANY($1)", self.table);
        let rows: Vec<(String, Option<Vec<u8>>)> =
            sqlx::query_as(&sql).bind(subjects).fetch_all(&self.pool).await.map_err(keys_error("read keys"))?;
        let mut found = HashMap::with_capacity(rows.len());
        for (subject, key) in rows {
            let state = match key {
                Some(bytes) => KeyState::Active(SubjectKey::from_bytes(&subject, &bytes)?),
                None => KeyState::Forgotten,
            };
            found.insert(subject, state);
        }
        Ok(found)
    }
}

impl PersonalKeys for PgPersonalKeys {
    async fn keys_for_append(&self, subjects: &[String]) -> Result<HashMap<String, SubjectKey>, PersonalError> {
        let sql = format!(
            "WITH made AS (INSERT INTO {t} (subject, key) SELECT * FROM UNNEST($1::text[], $2::bytea[]) \
             ON CONFLICT (subject) DO NOTHING RETURNING subject, key) \
             SELECT subject, key FROM made UNION ALL SELECT subject, key FROM {t} WHERE subject = ANY($1)",
            t = self.table
        );
        // A subject whose key another transaction made after this statement's snapshot is
        // neither inserted nor seen: the next attempt (a new snapshot) sees it.
        for _ in 0..3 {
            let fresh: Vec<Vec<u8>> = subjects.iter().map(|_| SubjectKey::generate().as_bytes().to_vec()).collect();
            let rows: Vec<(String, Option<Vec<u8>>)> = sqlx::query_as(&sql)
                .bind(subjects)
                .bind(&fresh)
                .fetch_all(&self.pool)
                .await
                .map_err(keys_error("make keys"))?;
            let mut keys = HashMap::with_capacity(rows.len());
            for (subject, key) in rows {
                let Some(bytes) = key else { return Err(PersonalError::Forgotten { subject }) };
                keys.insert(subject.clone(), SubjectKey::from_bytes(&subject, &bytes)?);
            }
            if subjects.iter().all(|s| keys.contains_key(s)) {
                return Ok(keys);
            }
        }
        let missing = subjects.first().cloned().unwrap_or_default();
        Err(PersonalError::UnknownKey { subject: missing })
    }

    async fn keys_for_read(&self, subjects: &[String]) -> Result<HashMap<String, KeyState>, PersonalError> {
        self.read(subjects).await
    }

    async fn forget(&self, subject: &str) -> Result<bool, PersonalError> {
        Ok(self.forget_subject(subject).await?.key_destroyed)
    }
}

#[cfg(test)]
mod tests {
    use super::path_of;

    #[test]
    fn pointers_become_text_paths() {
        assert_eq!(path_of("/customer"), ["customer"]);
        assert_eq!(path_of("/a/b~1c/d~0e"), ["a", "b/c", "d~e"]);
    }
}
