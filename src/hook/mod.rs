//! The local HTTP hook for the web front-end (axum, loopback only, bearer
//! token). Routes live in `api`; this module owns the token and the server.

mod api;
mod error;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

pub use error::ApiError;

use crate::config::HookConfig;
use crate::core::address::Domain;
use crate::core::secret_file::{self, SecretFileError};
use crate::deliver::Deliverer;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::upstream::Upstream;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("config key `hook.token_file`: {path} does not exist (set hook.create_token = true for development)")]
    Missing { path: String },
    #[error("config key `hook.token_file`: {0}")]
    File(#[from] SecretFileError),
    #[error("config key `hook.token_file`: {path} is not UTF-8 text")]
    NotText { path: String },
    #[error("config key `hook.token_file`: {path} is empty")]
    Empty { path: String },
    #[error("config key `hook.token_file`: {path} must hold at least 16 characters")]
    TooShort { path: String },
}

/// The bearer token, compared in constant time.
pub struct Token(Vec<u8>);

impl Token {
    /// Loads the token; with `create`, first writes a random one (0600) if
    /// the file does not exist. Returns whether it was created.
    pub fn load(path: &Path, create: bool) -> Result<(Self, bool), TokenError> {
        let shown = path.display().to_string();
        let mut created = false;
        let bytes = match secret_file::read(path) {
            Err(SecretFileError::Missing { .. }) if create => {
                let token = crate::core::tokens::base32()
                    .encode(&crate::core::tokens::ServerSecret::random_bytes());
                secret_file::create(path, format!("{token}\n").as_bytes())?;
                created = true;
                secret_file::read(path)?
            }
            Err(SecretFileError::Missing { .. }) => {
                return Err(TokenError::Missing { path: shown });
            }
            other => other?,
        };
        let text = String::from_utf8(bytes).map_err(|_| TokenError::NotText {
            path: shown.clone(),
        })?;
        let token = text.lines().next().unwrap_or_default().trim();
        if token.is_empty() {
            return Err(TokenError::Empty { path: shown });
        }
        if token.len() < 16 {
            return Err(TokenError::TooShort { path: shown });
        }
        Ok((Self(token.as_bytes().to_vec()), created))
    }

    fn matches(&self, header: Option<&[u8]>) -> bool {
        let Some(given) = header.and_then(|h| h.strip_prefix(b"Bearer ")) else {
            return false;
        };
        given.ct_eq(&self.0).into()
    }
}

/// What the hook's handlers call: the store for conversations and users,
/// `deliver` for composed mail.
pub struct HookServices {
    pub deliverer: Arc<Deliverer>,
    pub store: Arc<dyn Store>,
    pub upstream: Arc<Upstream>,
    pub metrics: Arc<Metrics>,
    pub alias_domain: Domain,
}

pub struct HookState {
    pub services: HookServices,
    token: Token,
}

pub fn router(services: HookServices, token: Token, config: &HookConfig) -> Router {
    let state = Arc::new(HookState { services, token });
    api::routes()
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            authenticate,
        ))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(middleware::map_response(json_errors))
        .with_state(state)
}

/// Errors axum answers itself (a body over the limit, a method a route does
/// not take) come as plain text; the contract says every error is JSON.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (error, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            "the request body is over hook.max_body_bytes",
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this endpoint does not take that method",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "send application/json"),
        _ => ("http_error", "the request could not be served"),
    };
    let mut json = ApiError::new(status, error, detail).into_response();
    // Keep what axum said the client may do instead (e.g. Allow on 405).
    for (name, value) in response.headers() {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}

async fn authenticate(
    State(state): State<Arc<HookState>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    if !state.token.matches(header) {
        return Err(ApiError::unauthorized());
    }
    Ok(next.run(request).await)
}

/// How long a client may take to send a request's header block; then the
/// connection is closed (a slow or silent client holds no slot).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed accept (EMFILE and friends): wait, do not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(500);
/// At shutdown, how long requests in progress may take to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves the hook until `shutdown` resolves: at most `max_connections`
/// at once (the rest wait in the kernel's listen queue), each with
/// [`HEADER_READ_TIMEOUT`] for every request header, so idle or slow
/// clients cannot hold the daemon's descriptors.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    max_connections: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(error = %err, "hook: accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A client gone mid-request is its own business.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("hook: requests still in progress at shutdown were cut off");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_token_is_text_and_a_systemd_credential_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let (created, was_created) = Token::load(&path, true).unwrap();
        assert!(was_created);
        // What systemd's credential looks like to stat: 0400 plus an ACL
        // for the service user, the mask in the group bits.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o440)).unwrap();
        let (again, was_created) = Token::load(&path, true).unwrap();
        assert!(!was_created);
        assert_eq!(created.0, again.0);

        let binary = dir.path().join("binary");
        secret_file::create(&binary, b"\xff\xfe not a token \xff\xff\xff\xff\n").unwrap();
        assert!(matches!(
            Token::load(&binary, false),
            Err(TokenError::NotText { .. })
        ));
    }
}
