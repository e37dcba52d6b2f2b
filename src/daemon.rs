//! `anonrelay serve`: builds the relay from the config, binds the SMTP and
//! hook listeners, runs the background tasks (retention, WAL upkeep, TLS
//! reload) and stops cleanly on SIGTERM. `check-config` runs the same
//! loaders ([`load_dkim`], `smtp::load_tls`) without starting.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;

use crate::config::Config;
use crate::core::tokens::ServerSecret;
use crate::deliver::dkim::Signer;
use crate::deliver::Deliverer;
use crate::hook::{self, HookServices, Token};
use crate::metrics::Metrics;
use crate::retention;
use crate::route::verify::Verifier;
use crate::route::Router;
use crate::smtp::{self, Server, Services, SessionSettings, TlsHandle};
use crate::store::{self, Store};
use crate::upstream::Upstream;

/// `[dkim]`'s signer, if configured; a bad key stops the start.
pub fn load_dkim(config: &Config) -> anyhow::Result<Option<Signer>> {
    let Some(dkim) = &config.dkim else {
        return Ok(None);
    };
    Ok(Some(Signer::load(dkim, &config.smtp.alias_domain)?))
}

/// Descriptors kept back for everything but client connections: the
/// database and its WAL, the upstream pool, DNS, the journal.
const DESCRIPTOR_RESERVE: u64 = 64;

/// Warns when the open-file limit cannot hold every SMTP and hook
/// connection the config allows plus a reserve: past it, accepts fail with
/// EMFILE (both listeners back off and go on, but clients wait).
fn warn_if_descriptors_are_short(config: &Config) {
    let needed = config.smtp.limits.max_connections as u64
        + config
            .hook
            .as_ref()
            .map_or(0, |hook| hook.max_connections as u64)
        + config.upstream.pool_size as u64
        + DESCRIPTOR_RESERVE;
    let Some(limit) = open_file_limit() else {
        return;
    };
    if limit < needed {
        tracing::warn!(
            limit,
            needed,
            "the open-file limit is below smtp.limits.max_connections + hook.max_connections + the upstream pool + 64; raise LimitNOFILE (the unit sets 65536) or lower max_connections"
        );
    }
}

/// The soft RLIMIT_NOFILE, from /proc (Linux); None elsewhere or unlimited.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// What `serve` starts from, loaded from the config (or made by a test).
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub upstream: Arc<Upstream>,
    pub secret: ServerSecret,
    pub dkim: Option<Signer>,
    pub verifier: Option<Verifier>,
}

/// The pipeline wired from its parts: what the SMTP server and the hook call.
pub struct Wired {
    pub smtp: Services,
    pub hook: HookServices,
}

/// Wires router and deliverer from the config, the one way `serve` and
/// the in-process test harness do it.
pub fn wire(config: &Config, parts: Parts) -> Wired {
    let metrics = Arc::new(Metrics::new());
    let router = Router::new(
        Arc::clone(&parts.store),
        &parts.secret,
        config.smtp.alias_domain.clone(),
        config.smtp.postmaster.is_some(),
    );
    let deliverer = Arc::new(
        Deliverer::new(
            Arc::clone(&parts.store),
            Arc::clone(&parts.upstream),
            Arc::clone(&metrics),
            &parts.secret,
            config.smtp.alias_domain.clone(),
            config.smtp.hostname.clone(),
        )
        .with_dkim(parts.dkim)
        .with_policy(config.relay_policy())
        .with_verifier(parts.verifier)
        .with_operator(config.smtp.postmaster.clone()),
    );
    Wired {
        smtp: Services {
            router: Arc::new(router),
            deliverer: Arc::clone(&deliverer),
            metrics: Arc::clone(&metrics),
            hostname: config.smtp.hostname.clone(),
        },
        hook: HookServices {
            deliverer,
            store: parts.store,
            upstream: parts.upstream,
            metrics,
            alias_domain: config.smtp.alias_domain.clone(),
        },
    }
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    smtp::install_crypto_provider();
    warn_if_descriptors_are_short(&config);
    let tls = match (&config.smtp.tls_cert, &config.smtp.tls_key) {
        (Some(cert), Some(key)) => Some(smtp::load_tls(cert, key)?),
        _ => None,
    };
    let store = store::open(&config.store)?;
    let secret = ServerSecret::load_or_create(&config.store.secret_path())?;
    let dkim = load_dkim(&config)?;
    let verifier = Verifier::from_config(&config.verify, config.smtp.hostname.as_str())?;
    let upstream = Upstream::from_config(&config.upstream, config.smtp.hostname.as_str())?;
    upstream.check().await?;
    let listener = smtp::listen(config.smtp.listen, config.smtp.limits.max_connections)
        .with_context(|| {
            format!(
                "config key `smtp.listen`: cannot listen on {}",
                config.smtp.listen
            )
        })?;
    let ready = ReadyLine {
        upstream: upstream.describe(),
        dkim_selector: dkim
            .as_ref()
            .map_or_else(|| "none".to_owned(), |d| d.selector().to_owned()),
        verify: if verifier.is_some() { "enforce" } else { "off" },
    };
    let Wired {
        smtp: services,
        hook: hook_services,
    } = wire(
        &config,
        Parts {
            store: Arc::clone(&store),
            upstream,
            secret,
            dkim,
            verifier,
        },
    );
    tokio::spawn(retention::keep_wal_small(Arc::clone(&store)));
    let retention_task = tokio::spawn(retention::run(Arc::clone(&store), config.retention.clone()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (hook_task, hook_address) = match &config.hook {
        Some(hook_config) => {
            let (task, address) = start_hook(hook_config, hook_services, stop_rx.clone()).await?;
            (Some(task), Some(address))
        }
        None => {
            tracing::info!("no [hook] section: HTTP hook disabled");
            (None, None)
        }
    };
    let tls_available = tls.is_some();
    let server = smtp_server(&config, services, tls);
    ready.log(&config, tls_available, listener.local_addr()?, hook_address);
    // Under systemd (Type=notify): we are listening and ready.
    if let Err(err) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %err, "could not notify systemd of readiness");
    }
    server.run(listener, shutdown_signal()).await;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    retention_task.abort();
    let _ = stop_tx.send(true);
    if let Some(task) = hook_task {
        if let Ok(Err(err)) = task.await {
            tracing::warn!(error = %err, "hook server ended with an error");
        }
    }
    tracing::info!("anonrelay stopped");
    Ok(())
}

/// The SMTP server from the config, with its STARTTLS certificate reloaded
/// on SIGHUP.
fn smtp_server(
    config: &Config,
    services: Services,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Server {
    let tls_available = tls.is_some();
    let tls = TlsHandle::new(tls);
    // Installed even without TLS: an unhandled SIGHUP would kill the daemon.
    tokio::spawn(reload_tls_on_sighup(tls.clone(), config.clone()));
    Server {
        services,
        settings: Arc::new(SessionSettings::from_config(&config.smtp, tls_available)),
        tls,
        limits: smtp::limits::Limits::from_config(
            &config.smtp.limits,
            config.smtp.held_per_message(),
        ),
        max_connections: config.smtp.limits.max_connections,
        shutdown_grace: std::time::Duration::from_secs(config.smtp.limits.shutdown_grace_secs),
    }
}

/// Re-reads the STARTTLS certificate and key on SIGHUP; a bad pair is
/// logged and the old one kept.
async fn reload_tls_on_sighup(tls: TlsHandle, config: Config) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; certificate reload disabled");
        return;
    };
    while hup.recv().await.is_some() {
        let (Some(cert), Some(key)) = (&config.smtp.tls_cert, &config.smtp.tls_key) else {
            continue;
        };
        match smtp::load_tls(cert, key) {
            Ok(acceptor) => {
                tls.replace(acceptor);
                tracing::info!("TLS certificate reloaded");
            }
            Err(err) => {
                tracing::error!(error = %err, "TLS certificate reload failed; keeping the old one")
            }
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        // Without a SIGTERM handler, Ctrl-C still works.
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: no new connections, finishing sessions in progress");
}

/// Loads the hook's token, binds its listener and serves it until `stop`.
async fn start_hook(
    hook_config: &crate::config::HookConfig,
    services: HookServices,
    stop_rx: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(tokio::task::JoinHandle<std::io::Result<()>>, SocketAddr)> {
    let (token, created) = Token::load(&hook_config.token_file, hook_config.create_token)?;
    if created {
        tracing::warn!(path = %hook_config.token_file.display(), "created a development hook token");
    }
    let hook_listener = tokio::net::TcpListener::bind(hook_config.listen)
        .await
        .with_context(|| {
            format!(
                "config key `hook.listen`: cannot listen on {}",
                hook_config.listen
            )
        })?;
    // The address bound, not the configured one: port 0 picks a free port.
    let address = hook_listener.local_addr()?;
    let app = hook::router(services, token, hook_config);
    let mut stop = stop_rx;
    tracing::info!(listen = %address, "hook ready");
    let task = tokio::spawn(hook::serve(
        hook_listener,
        app,
        hook_config.max_connections,
        async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        },
    ));
    Ok((task, address))
}

/// What the "anonrelay ready" line reports beyond the config.
struct ReadyLine {
    upstream: String,
    dkim_selector: String,
    verify: &'static str,
}

impl ReadyLine {
    /// Both listeners are bound: tests and admins take this line (and
    /// systemd the notification after it) as the daemon being ready. The
    /// addresses are the bound ones (port 0 in the config picks a free
    /// port; the tests read it here instead of guessing one).
    fn log(&self, config: &Config, starttls: bool, smtp: SocketAddr, hook: Option<SocketAddr>) {
        let hook_listen = hook.map_or_else(|| "none".to_owned(), |address| address.to_string());
        let verify_dns = if config.verify.dns_records.is_some() {
            "seeded (testing only)"
        } else {
            "system"
        };
        tracing::info!(
            listen = %smtp,
            hook_listen = %hook_listen,
            hostname = %config.smtp.hostname,
            alias_domain = %config.smtp.alias_domain,
            upstream = %self.upstream,
            starttls,
            dkim_selector = %self.dkim_selector,
            verify = self.verify,
            verify_dns,
            "anonrelay ready"
        );
    }
}
