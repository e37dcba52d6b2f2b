//! Command line: `anonrelay serve` runs the daemon; the other commands are
//! one-shot admin tools that work on the same config and database.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};

use anonrelay::config::Config;
use anonrelay::core::address::EmailAddress;
use anonrelay::core::secret_file;
use anonrelay::core::tokens::ServerSecret;
use anonrelay::dkim::{self, KeyAlgorithm, Signer};
use anonrelay::hook::{self, Token};
use anonrelay::metrics::Metrics;
use anonrelay::relay::Relay;
use anonrelay::retention;
use anonrelay::smtp::{self, Server, SessionSettings, TlsHandle};
use anonrelay::store::{self, now_unix, DisplayName, Participant, UserId};
use anonrelay::upstream::Upstream;
use anonrelay::verify::{self, Verifier};

#[derive(Parser)]
#[command(
    name = "anonrelay",
    version,
    about = "Alias relay: two people email each other without learning each other's address"
)]
struct Cli {
    /// Configuration file.
    #[arg(long, global = true, default_value = "relay.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SMTP listener.
    Serve,
    /// Erase log rows older than the retention once (for the systemd timer).
    Prune {
        /// Only count what would be erased.
        #[arg(long)]
        dry_run: bool,
    },
    /// Validate the configuration (and certificate, key, password files) and exit.
    CheckConfig,
    /// Manage conversations.
    #[command(subcommand)]
    Conversation(ConversationCommand),
    /// Privacy requests for one user.
    #[command(subcommand)]
    User(UserCommand),
    /// Print the metadata log rows of a user as JSON (disclosure on a valid legal order).
    Log {
        #[arg(long)]
        user: String,
    },
    /// DKIM signing keys.
    #[command(subcommand)]
    Dkim(DkimCommand),
}

#[derive(Subcommand)]
enum DkimCommand {
    /// Write a new private key (mode 0600) and print the DNS TXT record to publish.
    Keygen {
        /// DNS selector (default: `dkim.selector` from the config, else `anonrelay`).
        #[arg(long)]
        selector: Option<String>,
        /// Only ed25519 is generated here; make RSA keys with openssl (see README).
        #[arg(long, value_enum, default_value_t = KeyAlgorithm::Ed25519)]
        algorithm: KeyAlgorithm,
        /// Where to write the PEM private key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Erase the user's address and conversations; their log rows keep a NULL id.
    Delete { id: String },
    /// Print everything the relay holds about the user as JSON.
    Export { id: String },
}

#[derive(Subcommand)]
enum ConversationCommand {
    /// Create the conversation between two users (or print the existing one) as JSON.
    Create {
        #[arg(long)]
        a_user: String,
        #[arg(long)]
        a_email: String,
        /// Pseudonym shown as A's display name to B.
        #[arg(long)]
        a_name: Option<String>,
        #[arg(long)]
        b_user: String,
        #[arg(long)]
        b_email: String,
        #[arg(long)]
        b_name: Option<String>,
    },
    /// Revoke a conversation: both aliases stop accepting mail at once.
    Revoke { id: String },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    anonrelay::logging::init();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("anonrelay: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(&cli.config)?;
    match cli.command {
        Command::Serve => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(serve(config))
        }
        Command::CheckConfig => check_config(&config, &cli.config),
        Command::Prune { dry_run } => admin_runtime()?.block_on(prune(&config, dry_run)),
        Command::Conversation(command) => admin_runtime()?.block_on(conversation(&config, command)),
        Command::User(command) => admin_runtime()?.block_on(user(&config, command)),
        Command::Log { user } => admin_runtime()?.block_on(log(&config, &user)),
        Command::Dkim(DkimCommand::Keygen {
            selector,
            algorithm,
            out,
        }) => dkim_keygen(&config, selector, algorithm, &out),
    }
}

/// The admin commands' runtime: one thread; the store's blocking calls run
/// on its blocking pool.
fn admin_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn log(config: &Config, user: &str) -> anyhow::Result<()> {
    let user = UserId::parse(user).context("--user")?;
    let store = store::open(&config.store)?;
    let rows = store.log_for_user(user.as_str()).await?;
    println!("{}", serde_json::to_string_pretty(&rows)?);
    Ok(())
}

/// `[dkim]`'s signer, if configured; a bad key stops the start.
fn load_dkim(config: &Config) -> anyhow::Result<Option<Signer>> {
    let Some(dkim) = &config.dkim else {
        return Ok(None);
    };
    Ok(Some(Signer::load(dkim, &config.smtp.alias_domain)?))
}

fn dkim_keygen(
    config: &Config,
    selector: Option<String>,
    algorithm: KeyAlgorithm,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    if algorithm == KeyAlgorithm::Rsa {
        bail!(
            "RSA keys are not generated by anonrelay (ring cannot make them); create one with \
             `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out {}` and run \
             `anonrelay check-config` to print its DNS record",
            out.display()
        );
    }
    let selector = selector
        .or_else(|| config.dkim.as_ref().map(|d| d.selector.clone()))
        .unwrap_or_else(|| dkim::DEFAULT_SELECTOR.to_owned());
    dkim::validate_selector(&selector).map_err(|e| anyhow::anyhow!("--selector: {e}"))?;
    let (pem, public_key) = dkim::generate_ed25519()?;
    secret_file::create(out, pem.as_bytes())
        .context("--out (an existing key is never overwritten)")?;
    let record = dkim::dns_record(
        &selector,
        config.smtp.alias_domain.as_str(),
        algorithm,
        &public_key,
    );
    // stdout carries only the record, for scripts; the rest is for the admin.
    eprintln!("wrote an Ed25519 DKIM key to {} (mode 0600)", out.display());
    eprintln!(
        "add to relay.toml:\n  [dkim]\n  selector = \"{selector}\"\n  key_file = \"{}\"",
        out.display()
    );
    eprintln!("and publish this TXT record before restarting:");
    println!("{}", record.zone_line());
    Ok(())
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

async fn serve(config: Config) -> anyhow::Result<()> {
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
    let upstream_description = upstream.describe();
    let dkim_selector = dkim
        .as_ref()
        .map_or_else(|| "none".to_owned(), |d| d.selector().to_owned());
    let verify_mode = if verifier.is_some() { "enforce" } else { "off" };
    let verify_dns = if config.verify.dns_records.is_some() {
        "seeded (testing only)"
    } else {
        "system"
    };
    let relay = Arc::new(
        Relay::new(
            store,
            upstream,
            Arc::new(Metrics::new()),
            &secret,
            config.smtp.alias_domain.clone(),
            config.smtp.hostname.clone(),
        )
        .with_dkim(dkim)
        .with_policy(config.relay_policy())
        .with_verifier(verifier)
        .with_postmaster(config.smtp.postmaster.clone()),
    );
    tokio::spawn(retention::keep_wal_small(Arc::clone(&relay.store)));
    let retention_task = tokio::spawn(retention::run(
        Arc::clone(&relay.store),
        config.retention.clone(),
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let hook_task = match &config.hook {
        Some(hook_config) => {
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
            let app = hook::router(Arc::clone(&relay), token, hook_config);
            let mut stop = stop_rx.clone();
            tracing::info!(listen = %hook_config.listen, "hook ready");
            Some(tokio::spawn(hook::serve(
                hook_listener,
                app,
                hook_config.max_connections,
                async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                },
            )))
        }
        None => {
            tracing::info!("no [hook] section: HTTP hook disabled");
            None
        }
    };
    let tls_available = tls.is_some();
    let tls = TlsHandle::new(tls);
    // Installed even without TLS: an unhandled SIGHUP would kill the daemon.
    tokio::spawn(reload_tls_on_sighup(tls.clone(), config.clone()));
    let server = Server {
        relay,
        settings: Arc::new(SessionSettings::from_config(&config.smtp, tls_available)),
        tls,
        limits: smtp::limits::Limits::from_config(
            &config.smtp.limits,
            config.smtp.held_per_message(),
        ),
        max_connections: config.smtp.limits.max_connections,
        shutdown_grace: std::time::Duration::from_secs(config.smtp.limits.shutdown_grace_secs),
    };
    // Both listeners are bound: tests and admins take this line (and
    // systemd the notification below) as the daemon being ready.
    tracing::info!(
        listen = %config.smtp.listen,
        hostname = %config.smtp.hostname,
        alias_domain = %config.smtp.alias_domain,
        upstream = %upstream_description,
        starttls = tls_available,
        dkim_selector = %dkim_selector,
        verify = verify_mode,
        verify_dns,
        "anonrelay ready"
    );
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

async fn prune(config: &Config, dry_run: bool) -> anyhow::Result<()> {
    let store = store::open(&config.store)?;
    let cutoff = config.retention.cutoff(now_unix());
    if dry_run {
        let count = store.count_older(cutoff).await?;
        println!(
            "would erase {count} log rows older than {} days",
            config.retention.days
        );
    } else {
        let count = store.prune_log(cutoff, config.retention.batch_rows).await?;
        println!(
            "erased {count} log rows older than {} days",
            config.retention.days
        );
    }
    Ok(())
}

fn check_config(config: &Config, path: &std::path::Path) -> anyhow::Result<()> {
    if let (Some(cert), Some(key)) = (&config.smtp.tls_cert, &config.smtp.tls_key) {
        smtp::load_tls(cert, key)?;
    }
    Upstream::validate_config(&config.upstream, config.smtp.hostname.as_str())?;
    let dkim = load_dkim(config)?;
    verify::check_records(&config.verify)?;
    if let Some(hook) = &config.hook {
        // A development token that does not exist yet is created by `serve`.
        if !hook.create_token || hook.token_file.exists() {
            Token::load(&hook.token_file, false)?;
        }
    }
    // The database and its directory are created on first use; the
    // nearest existing ancestor must be a directory for that to work.
    let existing = config
        .store
        .path
        .ancestors()
        .skip(1)
        .find(|p| p.as_os_str().is_empty() || p.exists());
    if let Some(dir) = existing.filter(|p| !p.as_os_str().is_empty() && !p.is_dir()) {
        bail!(
            "config key `store.path`: {} is not a directory",
            dir.display()
        );
    }
    println!("{}: configuration OK", path.display());
    if let Some(signer) = dkim {
        println!(
            "DKIM: signing with the {} key (selector {}); publish this TXT record:\n{}",
            signer.algorithm(),
            signer.selector(),
            signer.dns_record().zone_line()
        );
    }
    Ok(())
}

async fn conversation(config: &Config, command: ConversationCommand) -> anyhow::Result<()> {
    let store = store::open(&config.store)?;
    match command {
        ConversationCommand::Create {
            a_user,
            a_email,
            a_name,
            b_user,
            b_email,
            b_name,
        } => {
            let a = participant("a", &a_user, &a_email, a_name.as_deref())?;
            let b = participant("b", &b_user, &b_email, b_name.as_deref())?;
            let (aliases, _created) = store.create_conversation(&a, &b, now_unix()).await?;
            let domain = &config.smtp.alias_domain;
            println!(
                "{}",
                serde_json::json!({
                    "conversation_id": aliases.conversation_id,
                    "alias_a": format!("{}@{domain}", aliases.alias_a),
                    "alias_b": format!("{}@{domain}", aliases.alias_b),
                })
            );
        }
        ConversationCommand::Revoke { id } => {
            if !store.revoke_conversation(&id, now_unix()).await? {
                bail!("no live conversation with id {id}");
            }
            println!("conversation {id} revoked");
        }
    }
    Ok(())
}

async fn user(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    let store = store::open(&config.store)?;
    match command {
        UserCommand::Delete { id } => {
            let id = UserId::parse(&id).context("user id")?;
            if !store.delete_user(id.as_str()).await? {
                bail!("no user with id {id}");
            }
            println!("user {id} deleted");
        }
        UserCommand::Export { id } => {
            let id = UserId::parse(&id).context("user id")?;
            let Some(export) = store.export_user(id.as_str()).await? else {
                bail!("no user with id {id}");
            };
            println!("{}", serde_json::to_string_pretty(&export)?);
        }
    }
    Ok(())
}

fn participant(
    side: &str,
    user: &str,
    email: &str,
    name: Option<&str>,
) -> anyhow::Result<Participant> {
    Ok(Participant {
        user_id: UserId::parse(user).with_context(|| format!("--{side}-user"))?,
        email: EmailAddress::parse(email).with_context(|| format!("--{side}-email"))?,
        display_name: name
            .map(DisplayName::parse)
            .transpose()
            .with_context(|| format!("--{side}-name"))?,
    })
}
