//! `[retention]`: how long metadata rows are kept and how they are erased.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Log rows older than this many days are erased.
    #[serde(default = "defaults::days")]
    pub days: u32,
    /// Seconds between passes inside `serve`; the policy allows at most a day.
    /// DESIGN.md names the key `interval`; both spellings are read.
    #[serde(default = "defaults::interval_secs", alias = "interval")]
    pub interval_secs: u64,
    /// Rows deleted per transaction, so SMTP never waits long for the writer.
    #[serde(default = "defaults::batch_rows")]
    pub batch_rows: usize,
}

mod defaults {
    pub fn days() -> u32 {
        90
    }
    pub fn interval_secs() -> u64 {
        86_400
    }
    pub fn batch_rows() -> usize {
        2_000
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            days: defaults::days(),
            interval_secs: defaults::interval_secs(),
            batch_rows: defaults::batch_rows(),
        }
    }
}

impl RetentionConfig {
    /// Returns the offending key and what is wrong with it.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1..=3650).contains(&self.days) {
            return Err((
                "retention.days",
                format!("{} is not between 1 and 3650", self.days),
            ));
        }
        if !(60..=86_400).contains(&self.interval_secs) {
            return Err((
                "retention.interval_secs",
                format!(
                    "{} is not between 60 and 86400 (the policy promises a pass at least daily)",
                    self.interval_secs
                ),
            ));
        }
        if !(100..=100_000).contains(&self.batch_rows) {
            return Err((
                "retention.batch_rows",
                format!("{} is not between 100 and 100000", self.batch_rows),
            ));
        }
        Ok(())
    }
}
