//! Erasing metadata older than the retention: at `serve` start, then every
//! `interval_secs`, and on demand through `anonrelay prune` (systemd timer).

use std::sync::Arc;
use std::time::Duration;

pub use crate::config::RetentionConfig;
use crate::core::clock::now_unix;
use crate::store::{Store, StoreError};

const SECONDS_PER_DAY: i64 = 86_400;
/// A failed pass is tried again this soon, not a whole interval later.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

impl RetentionConfig {
    /// Rows with `sent_at` before this are older than the retention.
    pub fn cutoff(&self, now: i64) -> i64 {
        now - i64::from(self.days) * SECONDS_PER_DAY
    }
}

/// One pass at wall-clock time `now`; returns the number of rows erased.
pub async fn prune_once(
    store: &Arc<dyn Store>,
    config: &RetentionConfig,
    now: i64,
) -> Result<usize, StoreError> {
    let cutoff = config.cutoff(now);
    let batch = config.batch_rows;
    store.prune_log(cutoff, batch).await
}

/// Prunes now and then every interval, until the task is dropped.
pub async fn run(store: Arc<dyn Store>, config: RetentionConfig) {
    run_with_clock(store, config, now_unix).await
}

/// [`run`] with the wall clock passed in, so a test can move it together
/// with tokio's paused timer.
pub async fn run_with_clock(store: Arc<dyn Store>, config: RetentionConfig, now: impl Fn() -> i64) {
    let mut ticks = tokio::time::interval(Duration::from_secs(config.interval_secs));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match prune_once(&store, &config, now()).await {
            Ok(erased) => tracing::info!(erased, days = config.days, "retention pass done"),
            Err(err) => {
                // Not a day later: erased rows may still sit in the WAL.
                tracing::error!(error = %err, "retention pass failed; retrying in a minute");
                ticks.reset_after(RETRY_AFTER_FAILURE);
            }
        }
    }
}

/// How often the WAL is folded back and truncated between retention passes.
pub const WAL_TRUNCATE_INTERVAL: Duration = Duration::from_secs(60);

/// Keeps the write-ahead log small: every [`WAL_TRUNCATE_INTERVAL`], a
/// TRUNCATE checkpoint, off the answer path. One blocked by a reader (a
/// long `anonrelay log` or export) simply runs again next time, so the WAL
/// a long reader let grow is given back soon after it ends, not at the next
/// retention pass.
pub async fn keep_wal_small(store: Arc<dyn Store>) {
    let mut ticks = tokio::time::interval(WAL_TRUNCATE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match store.compact().await {
            Ok(true) => {}
            Ok(false) => tracing::debug!("WAL checkpoint blocked by a reader; next time"),
            Err(err) => tracing::warn!(error = %err, "WAL checkpoint failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_key() {
        assert!(RetentionConfig::default().validate().is_ok());
        let bad = RetentionConfig {
            days: 0,
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "retention.days");
        let bad = RetentionConfig {
            interval_secs: 2 * 86_400,
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "retention.interval_secs");
    }

    #[test]
    fn the_interval_is_read_under_either_name() {
        for text in [
            "days = 30\ninterval = 3600",
            "days = 30\ninterval_secs = 3600",
        ] {
            let config: RetentionConfig = toml::from_str(text).unwrap();
            assert_eq!(config.interval_secs, 3600, "{text}");
        }
    }

    /// The timer's passes on a moving clock: at start the rows older than
    /// 90 days go; a day later the row that was exactly 90 days old goes too.
    #[tokio::test(start_paused = true)]
    async fn serve_timer_erases_what_ages_past_the_retention_on_each_pass() {
        use crate::core::address::EmailAddress;
        use crate::store::{LogEntry, Participant, UserId};
        use std::sync::atomic::{AtomicI64, Ordering};

        const NOW: i64 = 1_800_000_000;
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(crate::store::SqliteStore::open(&dir.path().join("relay.db")).unwrap());
        let db = store.database();
        let person = |id: &str, email: &str| Participant {
            user_id: UserId::parse(id).unwrap(),
            email: EmailAddress::parse(email).unwrap(),
            display_name: None,
        };
        db.create_conversation(
            &person("a", "alice@a.example"),
            &person("b", "bob@b.example"),
            NOW,
        )
        .unwrap();
        for days in [89, 90, 91] {
            db.log_message(&LogEntry {
                sent_at: NOW - days * SECONDS_PER_DAY,
                sender_id: Some("b".into()),
                recipient_id: Some("a".into()),
                alias: "someali".into(),
                subject: format!("{days} days"),
            })
            .unwrap();
        }
        let subjects = |store: &crate::store::SqliteStore| -> Vec<String> {
            store
                .database()
                .log_for_user("a")
                .unwrap()
                .into_iter()
                .map(|row| row.subject)
                .collect()
        };
        let wall = Arc::new(AtomicI64::new(NOW));
        let clock = Arc::clone(&wall);
        let config = RetentionConfig {
            interval_secs: SECONDS_PER_DAY as u64,
            ..Default::default()
        };
        let dyn_store: Arc<dyn Store> = store.clone();
        let timer = tokio::spawn(run_with_clock(dyn_store, config, move || {
            clock.load(Ordering::SeqCst)
        }));

        let until = |want: usize| {
            let store = Arc::clone(&store);
            async move {
                // The pass runs on the blocking pool: yield until it landed.
                for _ in 0..10_000 {
                    if subjects(&store).len() == want {
                        return;
                    }
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                panic!("no pass left {want} rows");
            }
        };
        until(2).await;
        assert_eq!(subjects(&store), ["90 days", "89 days"]);

        wall.store(NOW + SECONDS_PER_DAY, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(SECONDS_PER_DAY as u64)).await;
        until(1).await;
        assert_eq!(subjects(&store), ["89 days"]);
        timer.abort();
    }

    #[test]
    fn cutoff_counts_whole_days() {
        let config = RetentionConfig::default();
        assert_eq!(config.cutoff(100 * SECONDS_PER_DAY), 10 * SECONDS_PER_DAY);
    }
}
