//! The command line: `anonrelay serve` runs the daemon (`crate::daemon`);
//! the other commands are one-shot admin tools on the same config and
//! database, one file each.

mod check_config;
mod conversation;
mod dkim_keygen;
mod log;
mod prune;
mod user;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::deliver::dkim::KeyAlgorithm;

#[derive(Parser)]
#[command(
    name = "anonrelay",
    version,
    about = "Alias relay: two people email each other without learning each other's address"
)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, default_value = "relay.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
pub enum DkimCommand {
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
pub enum UserCommand {
    /// Erase the user's address and conversations; their log rows keep a NULL id.
    Delete { id: String },
    /// Print everything the relay holds about the user as JSON.
    Export { id: String },
}

#[derive(Subcommand)]
pub enum ConversationCommand {
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

/// Parses the command line, runs the command, and turns its error into
/// one line on stderr and a failing exit status.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    crate::logging::init();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("anonrelay: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs one command: `serve` on a multi-threaded runtime, the admin
/// commands on a one-thread one.
fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(&cli.config)?;
    match cli.command {
        Command::Serve => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(crate::daemon::serve(config))
        }
        Command::CheckConfig => check_config::check_config(&config, &cli.config),
        Command::Prune { dry_run } => admin_runtime()?.block_on(prune::prune(&config, dry_run)),
        Command::Conversation(command) => {
            admin_runtime()?.block_on(conversation::conversation(&config, command))
        }
        Command::User(command) => admin_runtime()?.block_on(user::user(&config, command)),
        Command::Log { user } => admin_runtime()?.block_on(log::log(&config, &user)),
        Command::Dkim(DkimCommand::Keygen {
            selector,
            algorithm,
            out,
        }) => dkim_keygen::dkim_keygen(&config, selector, algorithm, &out),
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
