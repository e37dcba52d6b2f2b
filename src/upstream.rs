//! Delivery to the upstream submission server (mail-send, pooled
//! connections, STARTTLS or implicit TLS, AUTH), or to a local outbox
//! directory for development.
//!
//! Errors carry only the reply code: an upstream's reply text often quotes
//! the recipient's real address, so it is neither logged nor shown.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mail_send::smtp::AssertReply;
use mail_send::{Credentials, SmtpClient, SmtpClientBuilder};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;

pub use crate::config::upstream_url::{Security, UpstreamUrl, UrlError};
use crate::config::UpstreamConfig;

/// Why a delivery failed, as the SMTP side needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Try again later: 4xx, timeout, disconnect, TLS or AUTH trouble.
    #[error("temporary upstream failure ({0})")]
    Temporary(String),
    /// The upstream refused the message or recipient for good (5xx).
    #[error("upstream rejected the message ({0})")]
    Permanent(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("config key `upstream.url`: {0}")]
    Url(#[from] UrlError),
    #[error("cannot read upstream password file {path}: {source}")]
    PasswordFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("environment variable {0} (upstream.password_env) is not set")]
    PasswordEnv(String),
    #[error("config key `upstream.url` names user {0:?} but neither upstream.password_file nor upstream.password_env is set")]
    NoPassword(String),
    #[error("cannot load upstream CA file {path}: {message}")]
    CaFile { path: PathBuf, message: String },
    #[error("cannot set up TLS for the upstream: {0}")]
    Tls(String),
    #[error("outbox directory {path}: {source}")]
    Outbox {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("upstream {endpoint} is not usable at start: {reason}")]
    Unreachable { endpoint: String, reason: String },
}

pub struct Envelope<'a> {
    pub mail_from: &'a str,
    pub rcpt_to: &'a str,
}

pub enum Upstream {
    Smtp(Box<SmtpUpstream>),
    Outbox(Outbox),
    /// Accepts and drops every message. Not reachable from the config:
    /// only for fuzzing and in-process tests.
    #[cfg(feature = "testing")]
    Discard,
}

impl Upstream {
    pub fn from_config(config: &UpstreamConfig, helo_host: &str) -> Result<Arc<Self>, SetupError> {
        let upstream = match UpstreamUrl::parse(&config.url)? {
            UpstreamUrl::Outbox(dir) => Upstream::Outbox(Outbox::new(dir)?),
            UpstreamUrl::Smtp {
                security,
                host,
                port,
                user,
            } => Upstream::Smtp(Box::new(SmtpUpstream::new(
                config, security, host, port, user, helo_host,
            )?)),
        };
        Ok(Arc::new(upstream))
    }

    /// What `check-config` asks: the same checks as [`Upstream::from_config`]
    /// without its side effect (an outbox directory is only created by `serve`).
    pub fn validate_config(config: &UpstreamConfig, helo_host: &str) -> Result<(), SetupError> {
        match UpstreamUrl::parse(&config.url)? {
            UpstreamUrl::Outbox(dir) if dir.exists() && !dir.is_dir() => Err(SetupError::Outbox {
                path: dir,
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "exists and is not a directory",
                ),
            }),
            UpstreamUrl::Outbox(_) => Ok(()),
            UpstreamUrl::Smtp { .. } => Self::from_config(config, helo_host).map(drop),
        }
    }

    /// Proves the upstream works (connect, TLS, AUTH) before we accept mail.
    pub async fn check(&self) -> Result<(), SetupError> {
        match self {
            Upstream::Outbox(outbox) => outbox.check(),
            Upstream::Smtp(smtp) => smtp.check().await,
            #[cfg(feature = "testing")]
            Upstream::Discard => Ok(()),
        }
    }

    pub async fn deliver(
        &self,
        envelope: &Envelope<'_>,
        message: &[u8],
    ) -> Result<(), DeliveryError> {
        // Stored addresses keep U-labels; a server without SMTPUTF8 takes
        // only the A-label spelling (mail-send sends what it is given).
        let rcpt_to = crate::core::address::envelope_form(envelope.rcpt_to);
        let envelope = &Envelope {
            mail_from: envelope.mail_from,
            rcpt_to: &rcpt_to,
        };
        match self {
            Upstream::Outbox(outbox) => outbox.deliver(envelope, message).await,
            Upstream::Smtp(smtp) => smtp.deliver(envelope, message).await,
            #[cfg(feature = "testing")]
            Upstream::Discard => Ok(()),
        }
    }

    /// Where mail goes, for the startup log line (no credentials).
    pub fn describe(&self) -> String {
        match self {
            Upstream::Outbox(outbox) => format!("outbox:{}", outbox.dir.display()),
            Upstream::Smtp(smtp) => smtp.endpoint(),
            #[cfg(feature = "testing")]
            Upstream::Discard => "discard".to_owned(),
        }
    }
}

enum Connection {
    Tls(Box<SmtpClient<TlsStream<TcpStream>>>),
    Plain(SmtpClient<TcpStream>),
}

/// How long the upstream may take to answer the final dot: RFC 5321
/// 4.5.3.2.6 gives a server 10 minutes, and a sending MTA waits as long
/// for ours (Postfix's `smtp_data_done_timeout` is 600 s).
pub const DATA_DONE_WAIT: Duration = Duration::from_secs(600);

pub struct SmtpUpstream {
    builder: SmtpClientBuilder<String>,
    security: Security,
    idle: Mutex<Vec<Connection>>,
    pool_size: usize,
    timeout: Duration,
}

/// Where in a transaction a failure happened: only a failure before any
/// message byte was sent may be retried on a fresh connection.
#[derive(Debug, PartialEq, Eq)]
enum Stage {
    MailFrom,
    Later,
}

impl SmtpUpstream {
    fn new(
        config: &UpstreamConfig,
        security: Security,
        host: String,
        port: u16,
        user: Option<String>,
        helo_host: &str,
    ) -> Result<Self, SetupError> {
        let connector = tls_connector(config.ca_file.as_deref())?;
        let timeout = Duration::from_secs(config.timeout_secs);
        let mut builder = SmtpClientBuilder::new_with_tls_connector(host, port, connector)
            .implicit_tls(security == Security::ImplicitTls)
            .helo_host(helo_host)
            .timeout(timeout);
        if let Some(user) = user {
            let password = read_password(config, &user)?;
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Self {
            builder,
            security,
            idle: Mutex::new(Vec::new()),
            pool_size: config.pool_size,
            timeout,
        })
    }

    fn endpoint(&self) -> String {
        let scheme = match self.security {
            Security::StartTls => "smtp+starttls",
            Security::ImplicitTls => "smtps",
            Security::Plain => "smtp",
        };
        format!("{scheme}://{}", self.builder.addr)
    }

    async fn connect(&self) -> Result<Connection, mail_send::Error> {
        // No Nagle: mail-send writes the body and the final `.` CRLF
        // separately, and with Nagle the second write waits for the
        // delayed ACK of the first (about 40 ms a message; BENCHMARKS.md).
        let connection = match self.security {
            Security::Plain => {
                let client = self.builder.connect_plain().await?;
                client.stream.set_nodelay(true)?;
                Connection::Plain(client)
            }
            Security::StartTls | Security::ImplicitTls => {
                let client = self.builder.connect().await?;
                client.stream.get_ref().0.set_nodelay(true)?;
                Connection::Tls(Box::new(client))
            }
        };
        Ok(connection)
    }

    async fn check(&self) -> Result<(), SetupError> {
        let connection = self
            .connect()
            .await
            .map_err(|err| SetupError::Unreachable {
                endpoint: self.endpoint(),
                reason: err.to_string(),
            })?;
        self.put_back(connection);
        Ok(())
    }

    fn take_idle(&self) -> Option<Connection> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn put_back(&self, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.pool_size {
            idle.push(connection);
        }
    }

    /// One attempt: everything up to the final dot (connect, greeting,
    /// EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, the body) within one
    /// `timeout_secs` deadline, whatever the steps add up to; then the
    /// reply to the dot within [`DATA_DONE_WAIT`].
    async fn deliver(&self, envelope: &Envelope<'_>, message: &[u8]) -> Result<(), DeliveryError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let reply_wait = self.timeout.max(DATA_DONE_WAIT);
        if let Some(mut connection) = self.take_idle() {
            match transact_on(&mut connection, envelope, message, deadline, reply_wait).await {
                Ok(()) => {
                    self.put_back(connection);
                    return Ok(());
                }
                // A pooled connection the server has since closed (or
                // answered 421 before closing) fails on MAIL FROM; no message
                // byte was sent, so a fresh connection is tried (within the
                // same deadline). A 5xx to MAIL FROM is an answer about the
                // sender, not the connection.
                Err((Stage::MailFrom, err)) if !is_permanent_reply(&err) => {}
                Err((_, err)) => return Err(classify(&err)),
            }
        }
        let mut connection = tokio::time::timeout_at(deadline, self.connect())
            .await
            .map_err(|_| DeliveryError::Temporary("timeout".into()))?
            .map_err(|err| classify(&err))?;
        match transact_on(&mut connection, envelope, message, deadline, reply_wait).await {
            Ok(()) => {
                self.put_back(connection);
                Ok(())
            }
            Err((_, err)) => Err(classify(&err)),
        }
    }
}

async fn transact_on(
    connection: &mut Connection,
    envelope: &Envelope<'_>,
    message: &[u8],
    deadline: tokio::time::Instant,
    reply_wait: Duration,
) -> Result<(), (Stage, mail_send::Error)> {
    match connection {
        Connection::Tls(client) => {
            transact(client.as_mut(), envelope, message, deadline, reply_wait).await
        }
        Connection::Plain(client) => {
            transact(client, envelope, message, deadline, reply_wait).await
        }
    }
}

/// `step` unless the deadline comes first.
async fn by<T>(
    deadline: tokio::time::Instant,
    step: impl std::future::Future<Output = mail_send::Result<T>>,
) -> mail_send::Result<T> {
    tokio::time::timeout_at(deadline, step)
        .await
        .map_err(|_| mail_send::Error::Timeout)?
}

async fn transact<T: AsyncRead + AsyncWrite + Unpin>(
    client: &mut SmtpClient<T>,
    envelope: &Envelope<'_>,
    message: &[u8],
    deadline: tokio::time::Instant,
    reply_wait: Duration,
) -> Result<(), (Stage, mail_send::Error)> {
    let no_params = mail_send::smtp::message::Parameters::default();
    by(deadline, client.mail_from(envelope.mail_from, &no_params))
        .await
        .map_err(|e| (Stage::MailFrom, e))?;
    let later = |e| (Stage::Later, e);
    by(deadline, client.rcpt_to(envelope.rcpt_to, &no_params))
        .await
        .map_err(later)?;
    by(deadline, async {
        client.cmd(b"DATA\r\n").await?.assert_code(354)?;
        // mail-send dot-stuffs and appends CRLF.CRLF itself; our message
        // already ends in CRLF.
        let body = message.strip_suffix(b"\r\n").unwrap_or(message);
        Ok(client.write_message(body).await?)
    })
    .await
    .map_err(later)?;
    // The upstream may take its time over the dot (content checks, its own
    // queue); answering 451 while it still delivers would make the sender
    // retry a message that arrives anyway.
    tokio::time::timeout(reply_wait, client.read())
        .await
        .map_err(|_| later(mail_send::Error::Timeout))?
        .and_then(|reply| reply.assert_positive_completion())
        .map_err(later)?;
    Ok(())
}

fn is_permanent_reply(err: &mail_send::Error) -> bool {
    matches!(err, mail_send::Error::UnexpectedReply(reply) if reply.code() >= 500)
}

fn classify(err: &mail_send::Error) -> DeliveryError {
    match err {
        mail_send::Error::UnexpectedReply(reply) if reply.code() >= 500 => {
            DeliveryError::Permanent(format!("reply {}", reply.code()))
        }
        mail_send::Error::UnexpectedReply(reply) => {
            DeliveryError::Temporary(format!("reply {}", reply.code()))
        }
        mail_send::Error::AuthenticationFailed(reply) => {
            DeliveryError::Temporary(format!("authentication failed with reply {}", reply.code()))
        }
        mail_send::Error::Timeout => DeliveryError::Temporary("timeout".into()),
        mail_send::Error::Io(_) => DeliveryError::Temporary("connection error".into()),
        mail_send::Error::Tls(_) => DeliveryError::Temporary("TLS error".into()),
        mail_send::Error::UnparseableReply => {
            DeliveryError::Temporary("no or unparseable reply".into())
        }
        mail_send::Error::MissingStartTls => {
            DeliveryError::Temporary("server does not offer STARTTLS".into())
        }
        other => DeliveryError::Temporary(format!("{other}")),
    }
}

fn read_password(config: &UpstreamConfig, user: &str) -> Result<String, SetupError> {
    if let Some(path) = &config.password_file {
        let text = std::fs::read_to_string(path).map_err(|source| SetupError::PasswordFile {
            path: path.clone(),
            source,
        })?;
        return Ok(text.lines().next().unwrap_or_default().to_owned());
    }
    if let Some(var) = &config.password_env {
        return std::env::var(var).map_err(|_| SetupError::PasswordEnv(var.clone()));
    }
    Err(SetupError::NoPassword(user.to_owned()))
}

/// rustls with the ring provider. Without `ca_file` the platform's trust
/// store is used (as mail-send does); with it, only that CA is trusted.
fn tls_connector(ca_file: Option<&Path>) -> Result<TlsConnector, SetupError> {
    let Some(path) = ca_file else {
        return mail_send::smtp::tls::build_tls_connector(false).map_err(SetupError::Tls);
    };
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let ca_error = |message: String| SetupError::CaFile {
        path: path.to_owned(),
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| ca_error(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| ca_error(e.to_string()))?;
        roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(ca_error("no certificate in file".into()));
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Development upstream: each message becomes `<name>.eml` plus
/// `<name>.json` with the envelope, written atomically.
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    fn new(dir: PathBuf) -> Result<Self, SetupError> {
        std::fs::create_dir_all(&dir).map_err(|source| SetupError::Outbox {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    fn check(&self) -> Result<(), SetupError> {
        let probe = self.dir.join(".write-test");
        std::fs::write(&probe, b"")
            .and_then(|_| std::fs::remove_file(&probe))
            .map_err(|source| SetupError::Outbox {
                path: self.dir.clone(),
                source,
            })
    }

    async fn deliver(&self, envelope: &Envelope<'_>, message: &[u8]) -> Result<(), DeliveryError> {
        let name = format!(
            "{}-{}",
            crate::store::now_unix(),
            uuid::Uuid::new_v4().simple()
        );
        let meta =
            serde_json::json!({ "mail_from": envelope.mail_from, "rcpt_to": envelope.rcpt_to });
        let io = |_| DeliveryError::Temporary("outbox write failed".into());
        self.write_atomic(&format!("{name}.json"), meta.to_string().as_bytes())
            .await
            .map_err(io)?;
        self.write_atomic(&format!("{name}.eml"), message)
            .await
            .map_err(io)?;
        Ok(())
    }

    /// Writes a temporary file (mode 0600: it holds a body and a real
    /// address) and renames it, so readers never see half a file. A failed
    /// write leaves no temporary file behind.
    async fn write_atomic(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let written = async {
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .await?;
            file.write_all(bytes).await?;
            file.flush().await?;
            drop(file);
            tokio::fs::rename(&tmp, self.dir.join(name)).await
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted SMTP server for one connection: greets, then answers
    /// every line with 250.
    async fn tiny_server(listener: tokio::net::TcpListener) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (read, mut write) = stream.into_split();
        let _ = write.write_all(b"220 tiny ESMTP\r\n").await;
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(_)) = lines.next_line().await {
            if write.write_all(b"250 ok\r\n").await.is_err() {
                return;
            }
        }
    }

    /// The development outbox holds bodies and real addresses: 0600.
    #[tokio::test]
    async fn outbox_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path().join("outbox")).unwrap();
        let envelope = Envelope {
            mail_from: "",
            rcpt_to: "alice@a.example",
        };
        outbox
            .deliver(&envelope, b"Subject: x\r\n\r\nbody\r\n")
            .await
            .unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert_eq!(files.len(), 2, "{files:?}");
        for file in files {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
    }

    #[tokio::test]
    async fn upstream_sockets_do_not_wait_for_nagle() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(tiny_server(listener));
        let config: crate::config::UpstreamConfig =
            toml::from_str(&format!("url = \"smtp://127.0.0.1:{port}\"")).unwrap();
        let upstream = SmtpUpstream::new(
            &config,
            Security::Plain,
            "127.0.0.1".into(),
            port,
            None,
            "me",
        )
        .unwrap();
        match upstream.connect().await.unwrap() {
            Connection::Plain(client) => assert!(client.stream.nodelay().unwrap()),
            Connection::Tls(_) => panic!("a plain URL gave TLS"),
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            UpstreamUrl::parse("smtp+starttls://relay@smtp.example:2587").unwrap(),
            UpstreamUrl::Smtp {
                security: Security::StartTls,
                host: "smtp.example".into(),
                port: 2587,
                user: Some("relay".into())
            }
        );
        assert_eq!(
            UpstreamUrl::parse("smtps://me@provider.example@smtp.example").unwrap(),
            UpstreamUrl::Smtp {
                security: Security::ImplicitTls,
                host: "smtp.example".into(),
                port: 465,
                user: Some("me@provider.example".into())
            }
        );
        assert!(matches!(
            UpstreamUrl::parse("smtp://127.0.0.1:2526").unwrap(),
            UpstreamUrl::Smtp {
                security: Security::Plain,
                port: 2526,
                ..
            }
        ));
        assert!(UpstreamUrl::parse("smtp://[::1]:25").is_ok());
        assert_eq!(
            UpstreamUrl::parse("smtp://smtp.example:25"),
            Err(UrlError::PlainNotLoopback)
        );
        assert_eq!(UpstreamUrl::parse("http://x"), Err(UrlError::Scheme));
        assert_eq!(
            UpstreamUrl::parse("smtps://h:notaport"),
            Err(UrlError::Port)
        );
        assert_eq!(UpstreamUrl::parse("outbox:"), Err(UrlError::OutboxDir));
        assert_eq!(
            UpstreamUrl::parse("outbox:mail"),
            Ok(UpstreamUrl::Outbox("mail".into()))
        );
    }
}
