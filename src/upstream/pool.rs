//! The SMTP upstream: a small pool of idle connections and one
//! transaction per message, each step within the configured deadline.

use std::sync::Mutex;
use std::time::Duration;

use mail_send::smtp::AssertReply;
use mail_send::{Credentials, SmtpClient, SmtpClientBuilder};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::tls::tls_connector;
use super::{DeliveryError, Envelope, Security, SetupError};
use crate::config::UpstreamConfig;

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
    pub(super) fn new(
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

    pub(super) fn endpoint(&self) -> String {
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

    pub(super) async fn check(&self) -> Result<(), SetupError> {
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
    pub(super) async fn deliver(
        &self,
        envelope: &Envelope<'_>,
        message: &[u8],
    ) -> Result<(), DeliveryError> {
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
}
