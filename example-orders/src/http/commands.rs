//! `GET /commands/{id}`: what became of an accepted command.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use tidemark::{CommandId, EventStore};
use uuid::Uuid;

use super::extract::Ids;
use crate::app::{App, CommandRecord};
use crate::auth::User;
use crate::error::ApiError;

/// The command's record: `pending`, `succeeded` (with the order's version) or `failed`
/// (with a code and a reason). Someone else's command is not found.
pub(super) async fn get<S: EventStore, R>(
    State(app): State<Arc<App<S, R>>>,
    user: User,
    Ids(id): Ids<Uuid>,
) -> Result<Json<CommandRecord>, ApiError> {
    let record = app.outcomes().get(CommandId(id)).filter(|r| user.may_act_for(&r.user));
    record.map(Json).ok_or(ApiError::NotFound("command"))
}
