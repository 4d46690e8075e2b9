//! Mapping the driver's errors into the runtime's.

use tidemark_projections::ProjectionError;

/// Maps a sqlx error, naming what was being done.
pub(crate) fn database(context: &'static str) -> impl FnOnce(sqlx::Error) -> ProjectionError {
    ProjectionError::database(context)
}

/// Whether `error` comes from the database going away (a transient sqlx error anywhere in
/// its chain of sources).
pub(crate) fn is_transient_database(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<sqlx::Error>().is_some_and(tidemark_postgres::is_transient) {
            return true;
        }
        current = e.source();
    }
    false
}
