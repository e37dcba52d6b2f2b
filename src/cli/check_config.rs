//! `anonrelay check-config`: the daemon's start-up checks, without starting.

use anyhow::bail;

use crate::config::Config;
use crate::daemon;
use crate::hook::Token;
use crate::route::verify;
use crate::smtp;
use crate::upstream::Upstream;

pub fn check_config(config: &Config, path: &std::path::Path) -> anyhow::Result<()> {
    if let (Some(cert), Some(key)) = (&config.smtp.tls_cert, &config.smtp.tls_key) {
        smtp::load_tls(cert, key)?;
    }
    Upstream::validate_config(&config.upstream, config.smtp.hostname.as_str())?;
    let dkim = daemon::load_dkim(config)?;
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
