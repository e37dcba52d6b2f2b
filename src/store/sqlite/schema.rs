//! The schema (`schema.sql`, applied in `-- step N` sections above
//! `PRAGMA user_version`) and the pragmas every connection gets.

use rusqlite::{params, Connection};

use super::{BUSY_WAIT, WAL_SIZE_LIMIT};
use crate::core::address::EmailAddress;
use crate::store::StoreError;

pub(super) const SCHEMA: &str = include_str!("schema.sql");

pub(super) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_WAIT)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;
         PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};"
    ))?;
    keep_temporary_data_in_memory(conn)
}

/// SQLite's statement journals, sorts and transient indices go to files in
/// the temp directory by default (the bundled build sets no
/// SQLITE_TEMP_STORE): subjects and aliases would land on disk outside the
/// database and be erased by nobody. Every connection keeps them in memory.
pub(super) fn keep_temporary_data_in_memory(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("PRAGMA temp_store = MEMORY;")
}

/// Applies the `-- step N` sections of schema.sql above `user_version`.
pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let steps = schema_steps();
    let known = steps.len() as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for (index, sql) in steps.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        if version == RENORMALIZE_ADDRESSES_STEP {
            renormalize_addresses(&tx)?;
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

/// The schema step whose work is done by [`renormalize_addresses`].
const RENORMALIZE_ADDRESSES_STEP: i64 = 4;

/// Rewrites every stored address into today's canonical form
/// ([`EmailAddress::parse`]): one registered as `carol@xn--bcher-kva.example`
/// before IDNA mapping becomes `carol@bücher.example`, which the sender check
/// compares with. A value that no longer parses is left as it was.
fn renormalize_addresses(conn: &Connection) -> Result<(), StoreError> {
    let users: Vec<(String, String)> = conn
        .prepare("SELECT id, email FROM users")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = conn.prepare("UPDATE users SET email = ?2 WHERE id = ?1")?;
    for (id, email) in users {
        if let Ok(canonical) = EmailAddress::parse(&email) {
            if canonical.as_str() != email {
                update.execute(params![id, canonical.as_str()])?;
            }
        }
    }
    Ok(())
}

/// The SQL of each step, in order: the text after a line that is exactly
/// `-- step N` up to the next such line. The numbers must count 1, 2, 3…
/// (checked by a test), so a comment can never become a step.
pub(super) fn schema_steps() -> Vec<&'static str> {
    numbered_steps(SCHEMA)
        .into_iter()
        .map(|(_, sql)| sql)
        .collect()
}

pub(super) fn numbered_steps(schema: &str) -> Vec<(u32, &str)> {
    let mut steps: Vec<(u32, &str)> = Vec::new();
    let mut current: Option<(u32, usize)> = None;
    let mut offset = 0;
    for line in schema.split_inclusive('\n') {
        let number = line
            .trim_end()
            .strip_prefix("-- step ")
            .and_then(|n| n.parse::<u32>().ok());
        if let Some(number) = number {
            if let Some((previous, start)) = current {
                steps.push((previous, &schema[start..offset]));
            }
            current = Some((number, offset + line.len()));
        }
        offset += line.len();
    }
    if let Some((last, start)) = current {
        steps.push((last, &schema[start..]));
    }
    steps
}
