//! `GET /ws`: a user's live notices (command outcomes, order changes) on a WebSocket.
//! Browsers cannot set headers on a WebSocket, so the token may also come as `?token=`.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use tidemark::EventStore;

use super::auth::{bearer, verify};
use super::extract::Params;
use crate::app::{App, Notice};
use crate::auth::User;
use crate::error::ApiError;

/// Query parameters of `GET /ws`.
#[derive(Debug, Deserialize)]
pub(super) struct WsQuery {
    token: Option<String>,
}

/// Upgrades to a WebSocket registered under the token's user.
pub(super) async fn upgrade<S, R>(
    State(app): State<Arc<App<S, R>>>,
    Params(query): Params<WsQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError>
where
    S: EventStore + 'static,
    R: Send + Sync + 'static,
{
    let user = verify(&app, bearer(&headers).or(query.token.as_deref()))?;
    Ok(upgrade.on_upgrade(move |socket| serve(app, user, socket)))
}

/// Registers the socket, greets it, then forwards the user's notices until either side
/// closes (or the hub drops the socket for falling behind).
async fn serve<S: EventStore, R>(app: Arc<App<S, R>>, user: User, mut socket: WebSocket) {
    let (id, mut notices) = app.hub().register(&user.name);
    let welcome = Notice::Welcome { user: user.name.clone(), socket_id: id };
    if let Ok(text) = serde_json::to_string(&welcome) {
        if socket.send(Message::Text(text.into())).await.is_ok() {
            forward(&mut socket, &mut notices).await;
        }
    }
    app.hub().unregister(&user.name, id);
}

async fn forward(socket: &mut WebSocket, notices: &mut tokio::sync::mpsc::Receiver<Arc<str>>) {
    loop {
        tokio::select! {
            notice = notices.recv() => {
                let Some(text) = notice else { break };
                if socket.send(Message::Text(text.as_ref().into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                // Pings are answered by the library; the client sends nothing else we use.
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
}
