//! DNS answers for mail-auth, kept in memory with their TTLs and a bound
//! on the number of entries, so a flood of senders with fresh domains
//! cannot grow the daemon without limit. Seeded entries (`[verify]
//! dns_records`) never expire and are never evicted.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

use mail_auth::ResolverCache;

/// Entries per record type; beyond it, expired and then soonest-expiring
/// answers make room.
pub const DEFAULT_CAPACITY: usize = 4096;

struct Entry<V> {
    value: V,
    /// None: a seeded answer that stays.
    valid_until: Option<Instant>,
}

pub struct DnsCache<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
    capacity: usize,
}

impl<K: Hash + Eq, V: Clone> DnsCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// An answer that never expires (offline seeds).
    pub fn seed(&self, key: K, value: V) {
        self.lock().insert(
            key,
            Entry {
                value,
                valid_until: None,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry<V>>> {
        // A panic elsewhere leaves a consistent map: keep using it.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<K: Hash + Eq + Clone, V: Clone> ResolverCache<K, V> for DnsCache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut entries = self.lock();
        let entry = entries.get(name)?;
        match entry.valid_until {
            Some(until) if until <= Instant::now() => {
                entries.remove(name);
                None
            }
            _ => Some(entry.value.clone()),
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut entries = self.lock();
        // Seeds (no expiry) stay: they stand for the whole DNS offline.
        entries.get(name)?.valid_until?;
        entries.remove(name).map(|entry| entry.value)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        let now = Instant::now();
        if valid_until <= now {
            return;
        }
        let mut entries = self.lock();
        if entries.get(&key).is_some_and(|e| e.valid_until.is_none()) {
            return;
        }
        if !entries.contains_key(&key) && entries.len() >= self.capacity {
            entries.retain(|_, e| e.valid_until.is_none_or(|until| until > now));
            if entries.len() >= self.capacity {
                let soonest = entries
                    .iter()
                    .filter_map(|(k, e)| e.valid_until.map(|until| (until, k)))
                    .min_by_key(|(until, _)| *until)
                    .map(|(_, k)| k.clone());
                // Only seeds left: the new answer is simply not kept.
                let Some(soonest) = soonest else {
                    return;
                };
                entries.remove(&soonest);
            }
        }
        entries.insert(
            key,
            Entry {
                value,
                valid_until: Some(valid_until),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn later(secs: u64) -> Instant {
        Instant::now() + Duration::from_secs(secs)
    }

    #[test]
    fn answers_until_the_ttl_runs_out() {
        let cache: DnsCache<Box<str>, u32> = DnsCache::new(8);
        cache.insert("a.".into(), 1, later(3600));
        assert_eq!(cache.get("a."), Some(1));
        // An answer whose TTL has passed is gone (and not stored at all).
        cache.insert("b.".into(), 2, Instant::now());
        assert_eq!(cache.get("b."), None);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn stays_within_its_capacity_evicting_the_soonest_expiry() {
        let cache: DnsCache<Box<str>, u32> = DnsCache::new(3);
        cache.insert("short.".into(), 1, later(10));
        cache.insert("long.".into(), 2, later(3600));
        cache.insert("mid.".into(), 3, later(600));
        cache.insert("new.".into(), 4, later(600));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("short."), None);
        assert_eq!(cache.get("long."), Some(2));
        assert_eq!(cache.get("new."), Some(4));
        for i in 0..100u32 {
            cache.insert(format!("n{i}.").into(), i, later(60 + u64::from(i)));
        }
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn seeds_are_never_evicted_overwritten_or_removed() {
        let cache: DnsCache<Box<str>, u32> = DnsCache::new(2);
        cache.seed("seed.".into(), 7);
        cache.insert("seed.".into(), 8, later(60));
        cache.insert("x.".into(), 1, later(60));
        cache.insert("y.".into(), 2, later(60));
        assert_eq!(cache.get("seed."), Some(7));
        assert_eq!(cache.remove("seed."), None);
        assert_eq!(cache.get("seed."), Some(7));
        assert_eq!(cache.len(), 2);
    }
}
