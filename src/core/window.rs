//! Fixed-window event counters per key (messages per client per minute,
//! failed recipients per hour, hard bounces per alias per week). Memory
//! only: keys expire with their window and are never logged or stored.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Fixed-window counters per key. Entries whose window has passed are
/// dropped on the next sweep, so the map only holds recent clients.
pub struct WindowCounter<K> {
    window: Duration,
    limit: u32,
    entries: Mutex<Entries<K>>,
}

struct Entries<K> {
    map: HashMap<K, (Instant, u32)>,
    /// Sweep stale entries when the map grows to this size; it then doubles
    /// past what survived, so sweeps cost O(1) amortized per event.
    sweep_at: usize,
    /// When the last sweep ran: a full table is swept at most once a second.
    swept: Option<Instant>,
}

/// The smallest map size that triggers a sweep.
const SWEEP_AT: usize = 4096;
/// Keys tracked at most. Beyond it (a flood from more distinct clients
/// than any window should see) a new key counts as over its limit: memory
/// stays bounded, and the answers are temporary (4xx), so real senders
/// retry once the flood's entries expire.
const MAX_TRACKED: usize = 1 << 20;

impl<K: Eq + Hash + Clone> WindowCounter<K> {
    pub fn new(window: Duration, limit: u32) -> Self {
        Self {
            window,
            limit,
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                sweep_at: SWEEP_AT,
                swept: None,
            }),
        }
    }

    fn with_entry<T>(&self, key: &K, now: Instant, f: impl FnOnce(&mut u32) -> T) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entries = &mut *entries;
        let full_and_due = entries.map.len() >= MAX_TRACKED
            && entries
                .swept
                .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1));
        if entries.map.len() >= entries.sweep_at || full_and_due {
            let window = self.window;
            entries
                .map
                .retain(|_, (start, _)| now.duration_since(*start) < window);
            entries.sweep_at = (entries.map.len() * 2).max(SWEEP_AT);
            entries.swept = Some(now);
        }
        if entries.map.len() >= MAX_TRACKED && !entries.map.contains_key(key) {
            let mut full = self.limit;
            return f(&mut full);
        }
        let entry = entries.map.entry(key.clone()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        f(&mut entry.1)
    }

    /// Counts one event; false if the key already used its allowance.
    pub fn try_take(&self, key: &K, now: Instant) -> bool {
        let limit = self.limit;
        self.with_entry(key, now, |count| {
            if *count >= limit {
                false
            } else {
                *count += 1;
                true
            }
        })
    }

    /// Counts one event without refusing it (e.g. a failed RCPT).
    pub fn record(&self, key: &K, now: Instant) {
        self.with_entry(key, now, |count| *count = count.saturating_add(1));
    }

    /// Whether the key has used up its allowance in the current window.
    pub fn exhausted(&self, key: &K, now: Instant) -> bool {
        let limit = self.limit;
        self.with_entry(key, now, |count| *count >= limit)
    }

    pub fn tracked(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counter_limits_and_expires() {
        let counter = WindowCounter::new(Duration::from_secs(60), 2);
        let start = Instant::now();
        assert!(counter.try_take(&1, start));
        assert!(counter.try_take(&1, start));
        assert!(!counter.try_take(&1, start));
        assert!(counter.try_take(&2, start), "other keys are independent");
        assert!(
            counter.try_take(&1, start + Duration::from_secs(61)),
            "a new window"
        );
    }

    #[test]
    fn stale_entries_are_swept() {
        let counter = WindowCounter::new(Duration::from_secs(1), 5);
        let start = Instant::now();
        for key in 0..SWEEP_AT {
            counter.record(&key, start);
        }
        counter.record(&usize::MAX, start + Duration::from_secs(2));
        assert_eq!(counter.tracked(), 1);
    }

    #[test]
    fn sweeps_are_amortized_and_tracking_is_bounded() {
        let counter = WindowCounter::new(Duration::from_secs(60), 5);
        let start = Instant::now();
        // Live keys survive a sweep; the next sweep waits for twice as many.
        for key in 0..SWEEP_AT * 3 {
            counter.record(&key, start);
        }
        let entries = counter.entries.lock().unwrap();
        assert_eq!(entries.map.len(), SWEEP_AT * 3);
        assert!(entries.sweep_at > SWEEP_AT * 3);
    }

    #[test]
    fn a_full_table_refuses_new_keys_instead_of_waving_them_through() {
        let counter = WindowCounter::new(Duration::from_secs(60), 5);
        let start = Instant::now();
        for key in 0..MAX_TRACKED {
            counter.record(&key, start);
        }
        assert!(
            !counter.try_take(&usize::MAX, start),
            "untracked: over the limit"
        );
        assert!(counter.exhausted(&usize::MAX, start));
        assert!(
            counter.try_take(&7, start),
            "tracked keys keep their allowance"
        );
        assert!(
            counter.try_take(&usize::MAX, start + Duration::from_secs(61)),
            "once the flood's window passed, new keys are counted again"
        );
    }
}
