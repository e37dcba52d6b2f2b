//! `anonrelay user delete|export`: privacy requests for one user.

use anyhow::{bail, Context as _};

use super::UserCommand;
use crate::config::Config;
use crate::store::{self, UserId};

pub async fn user(config: &Config, command: UserCommand) -> anyhow::Result<()> {
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
