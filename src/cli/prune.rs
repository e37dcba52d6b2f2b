//! `anonrelay prune`: one retention pass (the systemd timer runs it).

use crate::config::Config;
use crate::store::{self, now_unix};

pub async fn prune(config: &Config, dry_run: bool) -> anyhow::Result<()> {
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
