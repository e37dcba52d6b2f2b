//! `anonrelay log --user`: a user's metadata rows as JSON (disclosure on a
//! valid legal order).

use anyhow::Context as _;

use crate::config::Config;
use crate::store::{self, UserId};

pub async fn log(config: &Config, user: &str) -> anyhow::Result<()> {
    let user = UserId::parse(user).context("--user")?;
    let store = store::open(&config.store)?;
    let rows = store.log_for_user(user.as_str()).await?;
    println!("{}", serde_json::to_string_pretty(&rows)?);
    Ok(())
}
