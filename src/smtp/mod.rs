//! The inbound MX: accept loop, connection limit, STARTTLS upgrade, and the
//! per-connection session (see `session`).

pub mod data;
pub mod limits;
pub mod reply;
pub mod session;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use crate::config::SmtpConfig;
use crate::core::address::Domain;
use crate::deliver::Deliverer;
use crate::metrics::Metrics;
use crate::route::Router;
use limits::{ConnectionSlot, Limits};
use reply::Reply;
use session::{Session, SessionEnd};

/// Per-session limits, fixed at start.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub max_line_length: usize,
    pub max_message_bytes: usize,
    pub max_errors: u32,
    pub command_timeout: Duration,
    pub idle_timeout: Duration,
    pub data_timeout: Duration,
    pub max_data_time: Duration,
    pub session_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_transactions: u32,
    pub tls_available: bool,
}

impl SessionSettings {
    pub fn from_config(config: &SmtpConfig, tls_available: bool) -> Self {
        Self {
            max_line_length: config.limits.max_line_length,
            max_message_bytes: config.max_message_bytes,
            max_errors: config.limits.max_errors,
            command_timeout: config.limits.command_timeout(),
            idle_timeout: config.limits.idle_timeout(),
            data_timeout: config.limits.data_timeout(),
            max_data_time: Duration::from_secs(config.limits.max_data_secs),
            session_timeout: config.limits.session_timeout(),
            max_header_bytes: config.limits.max_header_bytes,
            max_transactions: config.limits.max_transactions_per_connection,
            tls_available,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("config key `smtp.tls_cert`: cannot load certificate {path}: {message}")]
    Cert { path: String, message: String },
    #[error("config key `smtp.tls_key`: cannot load private key {path}: {message}")]
    Key { path: String, message: String },
    #[error("certificate and key do not form a usable TLS configuration: {0}")]
    Config(String),
}

/// Makes sure rustls uses ring, the only provider compiled in.
pub fn install_crypto_provider() {
    // Fails only if a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Loads the STARTTLS certificate chain and key (PEM).
pub fn load_tls(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsSetupError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    install_crypto_provider();
    let cert_error = |message: String| TlsSetupError::Cert {
        path: cert.display().to_string(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no certificate found".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsSetupError::Key {
        path: key.display().to_string(),
        message: e.to_string(),
    })?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsSetupError::Config(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The STARTTLS certificate, replaceable while running (SIGHUP) so a
/// renewed certificate needs no restart.
#[derive(Clone, Default)]
pub struct TlsHandle(Arc<std::sync::RwLock<Option<TlsAcceptor>>>);

impl TlsHandle {
    pub fn new(acceptor: Option<TlsAcceptor>) -> Self {
        Self(Arc::new(std::sync::RwLock::new(acceptor)))
    }

    pub fn current(&self) -> Option<TlsAcceptor> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, acceptor: TlsAcceptor) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(acceptor);
    }
}

/// What sessions hand their decisions to: who a recipient is, what
/// becomes of a message, and the counters.
pub struct Services {
    pub router: Arc<Router>,
    pub deliverer: Arc<Deliverer>,
    pub metrics: Arc<Metrics>,
    /// Our host name, for the greeting and EHLO.
    pub hostname: Domain,
}

pub struct Server {
    pub services: Services,
    pub settings: Arc<SessionSettings>,
    pub tls: TlsHandle,
    pub limits: Arc<Limits>,
    pub max_connections: usize,
    /// How long sessions in progress may take to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Server {
    /// Accepts connections until `shutdown` resolves, then waits (bounded)
    /// for sessions in progress to finish.
    pub async fn run(self, listener: TcpListener, shutdown: impl std::future::Future<Output = ()>) {
        let slots = Arc::new(Semaphore::new(self.max_connections));
        let this = Arc::new(self);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning
                    // (sessions ending give descriptors back meanwhile).
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                this.services
                    .metrics
                    .rejected(Reply::TOO_MANY_CONNECTIONS.metric_reason());
                tokio::spawn(refuse(stream, Reply::TOO_MANY_CONNECTIONS));
                continue;
            };
            let Some(slot) = this.limits.admit(peer.ip()) else {
                this.services
                    .metrics
                    .rejected(Reply::TOO_MANY_CLIENT_CONNECTIONS.metric_reason());
                tokio::spawn(refuse(stream, Reply::TOO_MANY_CLIENT_CONNECTIONS));
                continue;
            };
            let server = Arc::clone(&this);
            server.services.metrics.sessions.inc();
            let stop = stop_rx.clone();
            let client_ip = peer.ip();
            tokio::spawn(async move {
                server.connection(stream, slot, client_ip, stop).await;
                drop(permit);
            });
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let all = u32::try_from(this.max_connections).unwrap_or(u32::MAX);
        let grace = this.shutdown_grace;
        if tokio::time::timeout(grace, slots.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("sessions still open at shutdown were cut off");
        }
    }

    async fn connection(
        &self,
        mut stream: TcpStream,
        // Held until the connection ends: it counts towards the per-client limit.
        _slot: ConnectionSlot,
        client_ip: IpAddr,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let _ = stream.set_nodelay(true);
        let started = Instant::now();
        let session = Session::new(
            &self.services,
            &self.settings,
            &self.limits,
            client_ip,
            stop.clone(),
            false,
        );
        let end = session.run(&mut stream, started).await;
        if !matches!(end, Ok(SessionEnd::StartTls)) {
            return;
        }
        // Boxed: the TLS state is large and most sessions never need it,
        // so it must not inflate every connection's task.
        Box::pin(self.tls_session(stream, client_ip, stop, started)).await;
    }

    async fn tls_session(
        &self,
        stream: TcpStream,
        client_ip: IpAddr,
        stop: tokio::sync::watch::Receiver<bool>,
        started: Instant,
    ) {
        let Some(acceptor) = self.tls.current() else {
            return;
        };
        let handshake =
            tokio::time::timeout(self.settings.command_timeout, acceptor.accept(stream)).await;
        let mut tls_stream = match handshake {
            Ok(Ok(tls_stream)) => tls_stream,
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "TLS handshake failed");
                return;
            }
            Err(_) => return,
        };
        let session = Session::new(
            &self.services,
            &self.settings,
            &self.limits,
            client_ip,
            stop,
            true,
        );
        if let Err(err) = session.run(&mut tls_stream, started).await {
            tracing::debug!(error = %err, "TLS session ended with an error");
        }
        // close_notify is a courtesy: a client that stopped reading gets
        // a bounded wait, then the socket is dropped.
        let _ = tokio::time::timeout(Duration::from_secs(5), tls_stream.shutdown()).await;
    }
}

/// Binds the MX listener with a backlog sized for a burst of `max_connections`.
///
/// The usual default backlog of 128 is too small for an MX: when a burst finds
/// the accept queue full, Linux answers with SYN cookies and then drops the
/// client's ACK, so the client believes it is connected and waits for a
/// greeting that never comes (SMTP clients speak second). The kernel still
/// caps the value at `net.core.somaxconn`.
pub fn listen(address: SocketAddr, max_connections: usize) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    let backlog = u32::try_from(max_connections.clamp(128, 65_535)).unwrap_or(65_535);
    socket.listen(backlog)
}

async fn refuse(mut stream: TcpStream, reply: Reply) {
    let mut out = Vec::new();
    reply.write_to(&mut out);
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&out)).await;
}
