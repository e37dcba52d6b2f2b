//! `anonrelay conversation create|revoke`.

use anyhow::{bail, Context as _};

use super::ConversationCommand;
use crate::config::Config;
use crate::core::address::EmailAddress;
use crate::store::{self, now_unix, DisplayName, Participant, UserId};

pub async fn conversation(config: &Config, command: ConversationCommand) -> anyhow::Result<()> {
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
