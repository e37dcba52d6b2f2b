//! The hook's endpoints (DESIGN.md "HTTP hook"). Bodies are parsed in two
//! steps so that broken JSON is a 400 and a missing or invalid field a 422
//! that names the field.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::{ApiError, HookState};
use crate::core::address::EmailAddress;
use crate::deliver::composed::draft::{self, ComposeError};
use crate::deliver::composed::{self, ComposedError};
use crate::deliver::SendError;
use crate::store::{now_unix, DisplayName, Participant, UserId};
use crate::upstream::DeliveryError;

/// How long /healthz waits for the store's write lock.
const HEALTH_WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

type AppState = State<Arc<HookState>>;

pub fn routes() -> Router<Arc<HookState>> {
    Router::new()
        .route("/v1/conversations", post(create_conversation))
        .route("/v1/conversations/{id}", delete(revoke_conversation))
        .route("/v1/messages", post(send_message))
        .route("/v1/users/{id}", delete(delete_user))
        .route("/v1/users/{id}/export", get(export_user))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found("endpoint") })
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_json(format!("body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_json("body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            e.to_string(),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SideRequest {
    user_id: String,
    email: String,
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConversationRequest {
    a: SideRequest,
    b: SideRequest,
}

fn participant(side: &str, request: &SideRequest) -> Result<Participant, ApiError> {
    Ok(Participant {
        user_id: UserId::parse(&request.user_id)
            .map_err(|e| ApiError::invalid(&format!("{side}.user_id"), e))?,
        email: EmailAddress::parse(&request.email)
            .map_err(|e| ApiError::invalid(&format!("{side}.email"), e))?,
        display_name: request
            .display_name
            .as_deref()
            .map(DisplayName::parse)
            .transpose()
            .map_err(|e| ApiError::invalid(&format!("{side}.display_name"), e))?,
    })
}

async fn create_conversation(State(state): AppState, body: Bytes) -> Result<Response, ApiError> {
    let request: ConversationRequest = parse(&body)?;
    let a = participant("a", &request.a)?;
    let b = participant("b", &request.b)?;
    if a.user_id == b.user_id {
        return Err(ApiError::invalid("b.user_id", "must differ from a.user_id"));
    }
    let services = &state.services;
    let (aliases, created) = services
        .store
        .create_conversation(&a, &b, now_unix())
        .await?;
    if created {
        services.metrics.conversations_created.inc();
        tracing::debug!(alias_a = %aliases.alias_a, alias_b = %aliases.alias_b, "conversation created");
    }
    let domain = &services.alias_domain;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = serde_json::json!({
        "conversation_id": aliases.conversation_id,
        "alias_a": format!("{}@{domain}", aliases.alias_a),
        "alias_b": format!("{}@{domain}", aliases.alias_b),
    });
    Ok((status, Json(body)).into_response())
}

async fn revoke_conversation(
    State(state): AppState,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let revoked = state
        .services
        .store
        .revoke_conversation(&id, now_unix())
        .await?;
    if !revoked {
        return Err(ApiError::not_found("live conversation"));
    }
    state.services.metrics.conversations_revoked.inc();
    tracing::debug!("conversation revoked");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageRequest {
    conversation_id: String,
    from_user: String,
    subject: String,
    text: Option<String>,
    html: Option<String>,
}

async fn send_message(State(state): AppState, body: Bytes) -> Result<Response, ApiError> {
    let request: MessageRequest = parse(&body)?;
    draft::validate_subject(&request.subject)
        .map_err(|e| ApiError::invalid("subject", strip_field(&e)))?;
    let from_user =
        UserId::parse(&request.from_user).map_err(|e| ApiError::invalid("from_user", e))?;
    let view = state
        .services
        .store
        .conversation_for(&request.conversation_id, from_user.as_str())
        .await?;
    let Some(view) = view.filter(|v| v.revoked_at.is_none()) else {
        return Err(ApiError::not_found(
            "live conversation with that participant",
        ));
    };
    let sent = state
        .services
        .deliverer
        .send_composed(&composed::Request {
            view: &view,
            subject: &request.subject,
            text: request.text.as_deref(),
            html: request.html.as_deref(),
        })
        .await;
    match sent {
        Ok(message_id) => Ok(Json(
            serde_json::json!({ "status": "sent", "message_id": format!("<{message_id}>") }),
        )
        .into_response()),
        Err(ComposedError::Draft(ComposeError::NoBody)) => Err(ApiError::invalid(
            "text",
            "text or html must be given and non-empty",
        )),
        Err(
            ComposedError::Draft(ComposeError::Build) | ComposedError::Send(SendError::Signing),
        ) => Err(ApiError::internal()),
        Err(ComposedError::Draft(other)) => Err(ApiError::invalid("subject", strip_field(&other))),
        Err(ComposedError::Send(SendError::Store(err))) => Err(err.into()),
        Err(ComposedError::Send(SendError::Upstream(DeliveryError::Temporary(_)))) => {
            Err(ApiError::unavailable(
                "upstream_unavailable",
                "the upstream server failed temporarily; retry later",
            ))
        }
        Err(ComposedError::Send(SendError::Upstream(DeliveryError::Permanent(_)))) => {
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_rejected",
                "the upstream server rejected the message",
            ))
        }
    }
}

/// ComposeError texts start with the field name; ApiError adds it itself.
fn strip_field(err: &ComposeError) -> String {
    let text = err.to_string();
    text.split_once(": ")
        .map_or(text.clone(), |(_, rest)| rest.to_owned())
}

fn user_path(id: &str) -> Result<String, ApiError> {
    UserId::parse(id)
        .map(|u| u.as_str().to_owned())
        .map_err(|e| ApiError::invalid("id", e))
}

async fn delete_user(
    State(state): AppState,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = user_path(&id)?;
    let deleted = state.services.store.delete_user(&id).await?;
    if !deleted {
        return Err(ApiError::not_found("user"));
    }
    state.services.metrics.users_deleted.inc();
    tracing::debug!("user deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn export_user(State(state): AppState, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = user_path(&id)?;
    let export = state.services.store.export_user(&id).await?;
    match export {
        Some(export) => Ok(Json(export).into_response()),
        None => Err(ApiError::not_found("user")),
    }
}

async fn healthz(State(state): AppState) -> Response {
    let services = &state.services;
    // Writable, not just readable: a store that can no longer take rows
    // makes every message wait and then answer 451.
    let store_ok = services
        .store
        .probe_write(HEALTH_WRITE_WAIT)
        .await
        .inspect_err(|_| services.metrics.store_failure("health_probe"))
        .is_ok();
    let upstream_ok = services.upstream.check().await.is_ok();
    let status = if store_ok && upstream_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "failing" };
    (
        status,
        Json(serde_json::json!({ "store": word(store_ok), "upstream": word(upstream_ok) })),
    )
        .into_response()
}

async fn metrics(State(state): AppState) -> Response {
    state
        .services
        .metrics
        .set_wal_bytes(state.services.store.journal_bytes());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.services.metrics.render(),
    )
        .into_response()
}
