//! The daemon's SMTP session in process: wired by `daemon::wire` exactly as
//! `serve` wires it, on a throwaway SQLite store, with an upstream that
//! accepts and drops every message. The SMTP dialog tests
//! (`tests/it/dialogs/`) run on it; no socket, no port. `testing` only.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::config::Config;
use crate::core::address::EmailAddress;
use crate::core::tokens::ServerSecret;
use crate::daemon::{self, Parts};
use crate::smtp::limits::Limits;
use crate::smtp::session::Session;
use crate::smtp::{Services, SessionSettings};
use crate::store::{now_unix, Participant, SqliteStore, Store, UserId};
use crate::upstream::Upstream;

pub struct InProcess {
    runtime: tokio::runtime::Runtime,
    services: Services,
    store: Arc<dyn Store>,
    settings: SessionSettings,
    limits: Arc<Limits>,
    _dir: tempfile::TempDir,
}

/// A conversation made in the in-process store.
pub struct Conversation {
    pub id: String,
    /// The alias representing side a (side b writes to it), local part only.
    pub alias_a: String,
    pub alias_b: String,
}

impl InProcess {
    /// `relay_toml` is a whole config; its store and upstream are replaced.
    pub fn new(relay_toml: &str) -> anyhow::Result<Self> {
        let config = Config::parse(relay_toml)?;
        let dir = tempfile::tempdir()?;
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("dialog.db"))?);
        let wired = daemon::wire(
            &config,
            Parts {
                store: Arc::clone(&store),
                upstream: Arc::new(Upstream::Discard),
                secret: ServerSecret::from_bytes([5; 32]),
                dkim: None,
                verifier: None,
            },
        );
        Ok(Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            services: wired.smtp,
            store,
            settings: SessionSettings::from_config(&config.smtp, false),
            limits: Limits::from_config(&config.smtp.limits, config.smtp.held_per_message()),
            _dir: dir,
        })
    }

    /// A live conversation between `a` and `b` (user id, real address).
    pub fn conversation(&self, a: (&str, &str), b: (&str, &str)) -> Conversation {
        let person = |(id, email): (&str, &str)| Participant {
            user_id: UserId::parse(id).expect("a test user id"),
            email: EmailAddress::parse(email).expect("a test address"),
            display_name: None,
        };
        let (aliases, _) = self
            .runtime
            .block_on(
                self.store
                    .create_conversation(&person(a), &person(b), now_unix()),
            )
            .expect("conversation created");
        Conversation {
            id: aliases.conversation_id,
            alias_a: aliases.alias_a,
            alias_b: aliases.alias_b,
        }
    }

    pub fn revoke(&self, conversation_id: &str) {
        let revoked = self
            .runtime
            .block_on(self.store.revoke_conversation(conversation_id, now_unix()))
            .expect("revoke");
        assert!(revoked, "conversation {conversation_id} was live");
    }

    /// One session from 192.0.2.1 in turns: the client sends each turn's
    /// bytes once the session has answered the one before (as a client
    /// that waits for replies), then closes. Returns what the session wrote
    /// before reading the first turn (the greeting) and after each turn it
    /// read; a session that closed early read fewer turns. Bounded: a
    /// session that does not end within a minute is a failure.
    pub fn talk_in_turns(&self, turns: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut stream = ScriptedStream::new(turns.into());
        drive_session(
            &self.runtime,
            &self.services,
            &self.settings,
            &self.limits,
            &mut stream,
            Duration::from_secs(60),
        );
        let mut bounds = stream.marks.clone();
        bounds.push(stream.written.len());
        let mut start = 0;
        bounds
            .into_iter()
            .map(|end| {
                let part = stream.written[start..end].to_vec();
                start = end;
                part
            })
            .collect()
    }
}

/// Runs one session from 192.0.2.1 over `stream` to its end; a session
/// still running `bound` after it started is a failure (a hang). Shared by
/// the dialog tests and the fuzz harness.
pub(crate) fn drive_session(
    runtime: &tokio::runtime::Runtime,
    services: &Services,
    settings: &SessionSettings,
    limits: &Limits,
    stream: &mut ScriptedStream,
    bound: Duration,
) {
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let client = std::net::IpAddr::from([192, 0, 2, 1]);
    runtime.block_on(async {
        let session = Session::new(services, settings, limits, client, stop_rx, false);
        let ended = tokio::time::timeout(bound, session.run(stream, Instant::now())).await;
        assert!(ended.is_ok(), "session did not end after its input");
    });
}

/// A client that sends scripted chunks, then closes; what the server writes is kept.
pub struct ScriptedStream {
    chunks: VecDeque<Vec<u8>>,
    pub written: Vec<u8>,
    /// How much had been written each time the session began reading a new
    /// chunk: the replies between two marks answer the chunk before.
    pub marks: Vec<usize>,
    /// The front chunk is the rest of one the session read only in part.
    rest_pending: bool,
}

impl ScriptedStream {
    pub fn new(chunks: VecDeque<Vec<u8>>) -> Self {
        Self {
            chunks,
            written: Vec::new(),
            marks: Vec::new(),
            rest_pending: false,
        }
    }
}

impl AsyncRead for ScriptedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(mut chunk) = self.chunks.pop_front() {
            if !self.rest_pending {
                let mark = self.written.len();
                self.marks.push(mark);
            }
            let n = chunk.len().min(buf.remaining());
            buf.put_slice(&chunk[..n]);
            self.rest_pending = n < chunk.len();
            if self.rest_pending {
                self.chunks.push_front(chunk.split_off(n));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ScriptedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.written.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
