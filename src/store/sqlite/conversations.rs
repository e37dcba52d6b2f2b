//! Conversations, their aliases and the route an alias names.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{lock, Database};
use crate::core::address::random_alias;
use crate::store::{ConversationAliases, ConversationView, Participant, Route, StoreError, UserId};

impl Database {
    /// Creates the conversation between two users, or returns the live one
    /// for that pair (in either order). Emails and display names given here
    /// replace the stored ones. Returns the aliases and whether it was new.
    pub fn create_conversation(
        &self,
        a: &Participant,
        b: &Participant,
        now: i64,
    ) -> Result<(ConversationAliases, bool), StoreError> {
        if a.user_id == b.user_id {
            return Err(StoreError::SameUser);
        }
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for p in [a, b] {
            tx.prepare_cached(
                "INSERT INTO users (id, email) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET email = excluded.email",
            )?
            .execute(params![p.user_id.as_str(), p.email.as_str()])?;
        }
        let existing: Option<String> = tx
            .prepare_cached(
                "SELECT id FROM conversations
                 WHERE revoked_at IS NULL
                   AND min(user_a, user_b) = min(?1, ?2) AND max(user_a, user_b) = max(?1, ?2)",
            )?
            .query_row(params![a.user_id.as_str(), b.user_id.as_str()], |row| {
                row.get(0)
            })
            .optional()?;
        let created = existing.is_none();
        let conversation_id = match existing {
            Some(id) => id,
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                tx.prepare_cached(
                    "INSERT INTO conversations (id, user_a, user_b, created_at) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![id, a.user_id.as_str(), b.user_id.as_str(), now])?;
                for p in [a, b] {
                    insert_alias(&tx, &id, p.user_id.as_str())?;
                }
                id
            }
        };
        for p in [a, b] {
            if let Some(name) = &p.display_name {
                tx.prepare_cached(
                    "UPDATE aliases SET display_name = ?1 WHERE conversation_id = ?2 AND owner = ?3",
                )?
                .execute(params![name.as_str(), conversation_id, p.user_id.as_str()])?;
            }
        }
        let alias_of = |user: &UserId| -> Result<String, StoreError> {
            Ok(tx
                .prepare_cached(
                    "SELECT alias FROM aliases WHERE conversation_id = ?1 AND owner = ?2",
                )?
                .query_row(params![conversation_id, user.as_str()], |row| row.get(0))?)
        };
        let aliases = ConversationAliases {
            alias_a: alias_of(&a.user_id)?,
            alias_b: alias_of(&b.user_id)?,
            conversation_id: conversation_id.clone(),
        };
        tx.commit()?;
        Ok((aliases, created))
    }

    /// Revokes a live conversation; returns false if there was none with that id.
    pub fn revoke_conversation(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let conn = lock(&self.writer);
        let changed = conn
            .prepare_cached(
                "UPDATE conversations SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            )?
            .execute(params![id, now])?;
        Ok(changed == 1)
    }

    /// The route for a live alias, or None for unknown and revoked ones alike.
    pub fn route(&self, alias: &str) -> Result<Option<Route>, StoreError> {
        self.with_reader(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT a.alias, a.conversation_id, owner.id, owner.email,
                            partner.id, partner.email, pa.alias, pa.display_name
                     FROM aliases a
                     JOIN conversations c ON c.id = a.conversation_id AND c.revoked_at IS NULL
                     JOIN users owner ON owner.id = a.owner
                     JOIN aliases pa ON pa.conversation_id = a.conversation_id AND pa.owner <> a.owner
                     JOIN users partner ON partner.id = pa.owner
                     WHERE a.alias = ?1",
                )?
                .query_row(params![alias], |row| {
                    Ok(Route {
                        alias: row.get(0)?,
                        conversation_id: row.get(1)?,
                        owner_id: row.get(2)?,
                        owner_email: row.get(3)?,
                        partner_id: row.get(4)?,
                        partner_email: row.get(5)?,
                        partner_alias: row.get(6)?,
                        partner_display_name: row.get(7)?,
                    })
                })
                .optional()?)
        })
    }

    /// The conversation from `user`'s side, if it exists and they take part.
    pub fn conversation_for(
        &self,
        id: &str,
        user: &str,
    ) -> Result<Option<ConversationView>, StoreError> {
        self.with_reader(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "{CONVERSATION_VIEW} WHERE c.id = ?1 AND me.owner = ?2"
                ))?
                .query_row(params![id, user], conversation_view)
                .optional()?)
        })
    }
}

const CONVERSATION_VIEW: &str =
    "SELECT c.id, c.created_at, c.revoked_at, me.owner, me.alias, me.display_name,
            other.owner, other.alias, partner.email
     FROM conversations c
     JOIN aliases me ON me.conversation_id = c.id
     JOIN aliases other ON other.conversation_id = c.id AND other.owner <> me.owner
     JOIN users partner ON partner.id = other.owner";

fn conversation_view(row: &rusqlite::Row<'_>) -> rusqlite::Result<ConversationView> {
    Ok(ConversationView {
        conversation_id: row.get(0)?,
        created_at: row.get(1)?,
        revoked_at: row.get(2)?,
        user_id: row.get(3)?,
        alias: row.get(4)?,
        display_name: row.get(5)?,
        partner_id: row.get(6)?,
        partner_alias: row.get(7)?,
        partner_email: row.get(8)?,
    })
}

fn insert_alias(
    tx: &rusqlite::Transaction<'_>,
    conversation: &str,
    owner: &str,
) -> Result<(), StoreError> {
    // 100 random bits make a collision practically impossible; retry anyway
    // rather than fail a request on the primary key.
    let mut attempts = 0;
    loop {
        let result = tx
            .prepare_cached(
                "INSERT INTO aliases (alias, conversation_id, owner) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![random_alias(), conversation, owner]);
        match result {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation && attempts < 3 =>
            {
                attempts += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}
