//! One user's export and erasure.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::upkeep::checkpoint;
use super::{lock, Database};
use crate::store::{Direction, ExportedConversation, ExportedMessage, StoreError, UserExport};

impl Database {
    pub fn export_user(&self, user: &str) -> Result<Option<UserExport>, StoreError> {
        let email: Option<String> = self.with_reader(|conn| {
            Ok(conn
                .prepare_cached("SELECT email FROM users WHERE id = ?1")?
                .query_row(params![user], |row| row.get(0))
                .optional()?)
        })?;
        let Some(email) = email else {
            return Ok(None);
        };
        let conversations = self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT c.id, c.created_at, c.revoked_at, me.alias, me.display_name, other.alias
                 FROM conversations c
                 JOIN aliases me ON me.conversation_id = c.id
                 JOIN aliases other ON other.conversation_id = c.id AND other.owner <> me.owner
                 WHERE me.owner = ?1 ORDER BY c.created_at, c.id",
            )?;
            let rows = stmt.query_map(params![user], |row| {
                Ok(ExportedConversation {
                    conversation_id: row.get(0)?,
                    created_at: row.get(1)?,
                    revoked_at: row.get(2)?,
                    alias: row.get(3)?,
                    display_name: row.get(4)?,
                    partner_alias: row.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        Ok(Some(UserExport {
            user_id: user.to_owned(),
            email,
            conversations,
            message_log: self.exported_log(user)?,
        }))
    }

    /// The user's log rows with the partner named by alias. A row's alias
    /// is the one the message was addressed to: the partner's when the user
    /// sent it, the user's own when they received it (the partner is then
    /// the other alias of that conversation).
    fn exported_log(&self, user: &str) -> Result<Vec<ExportedMessage>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT l.sent_at, l.sender_id IS ?1, l.subject,
                        CASE WHEN l.sender_id IS ?1 AND addressed.owner <> ?1 THEN addressed.alias
                             WHEN l.recipient_id IS ?1 AND addressed.owner = ?1 THEN other.alias
                        END
                 FROM message_log l
                 LEFT JOIN aliases addressed ON addressed.alias = l.alias
                 LEFT JOIN aliases other ON other.conversation_id = addressed.conversation_id
                                        AND other.owner <> addressed.owner
                 WHERE l.sender_id = ?1 OR l.recipient_id = ?1 ORDER BY l.sent_at, l.id",
            )?;
            let rows = stmt.query_map(params![user], |row| {
                let sent: bool = row.get(1)?;
                Ok(ExportedMessage {
                    sent_at: row.get(0)?,
                    direction: if sent {
                        Direction::Sent
                    } else {
                        Direction::Received
                    },
                    subject: row.get(2)?,
                    partner_alias: row.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Erases a user: their address and every conversation they were in
    /// (so their aliases and their partners' aliases for them stop), their
    /// id in the log becomes NULL and their aliases in it are blanked (a
    /// log row keeps the partner's side only). One transaction; then the
    /// WAL is checkpointed so the erased address leaves no readable copy.
    pub fn delete_user(&self, user: &str) -> Result<bool, StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE message_log SET alias = ''
             WHERE alias IN (SELECT alias FROM aliases WHERE owner = ?1)",
            params![user],
        )?;
        tx.execute(
            "UPDATE message_log SET sender_id = NULL WHERE sender_id = ?1",
            params![user],
        )?;
        tx.execute(
            "UPDATE message_log SET recipient_id = NULL WHERE recipient_id = ?1",
            params![user],
        )?;
        tx.execute(
            "DELETE FROM aliases WHERE conversation_id IN
                 (SELECT id FROM conversations WHERE user_a = ?1 OR user_b = ?1)",
            params![user],
        )?;
        tx.execute(
            "DELETE FROM conversations WHERE user_a = ?1 OR user_b = ?1",
            params![user],
        )?;
        let deleted = tx.execute("DELETE FROM users WHERE id = ?1", params![user])?;
        tx.commit()?;
        // The deletion has happened: reporting a busy checkpoint as a
        // failure would make the caller retry a deletion that is done
        // (and get "no such user"). The next prune pass checkpoints again.
        match checkpoint(&conn) {
            Err(StoreError::CheckpointBusy) => {
                tracing::warn!("user deleted; WAL checkpoint busy, left to the next prune pass");
            }
            other => other?,
        }
        Ok(deleted == 1)
    }
}
