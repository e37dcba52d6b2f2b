//! Abuse limits that span sessions: connections per client, message and
//! failed-recipient rates per client, message rate per alias, and a cap on
//! the bytes all sessions may buffer. Client addresses live only here, in
//! memory, as map keys that expire with their window; they are never
//! logged or stored.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::LimitsConfig;
use crate::core::window::WindowCounter;

/// What the per-client limits count by: an IPv4 address, or the /64 of an
/// IPv6 address (one subscriber's usual allocation: rotating addresses
/// inside it must not buy a fresh allowance). An IPv4-mapped IPv6 address
/// counts as its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

/// The /48 of an IPv6 client (a site's usual allocation), None for IPv4:
/// a client with many /64s must not buy a connection allowance per /64.
fn site_of(ip: IpAddr) -> Option<Ipv6Addr> {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            Some(Ipv6Addr::from(u128::from(v6) & !((1u128 << 80) - 1)))
        }
        _ => None,
    }
}

/// Connections one IPv6 /48 may hold, in per-client allowances.
const CONNECTIONS_PER_SITE_IN_CLIENTS: u32 = 4;

/// Bytes buffered by all sessions together (message bodies being received).
/// Reservations are returned when their [`Reservation`] drops.
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn try_reserve(&self, bytes: usize) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let Some(next) = used.checked_add(bytes).filter(|n| *n <= self.limit) else {
                return false;
            };
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => used = actual,
            }
        }
    }
}

/// One session's share of the budget; grows in steps, returned on drop.
/// It draws on the daemon-wide budget and on its client's share of it.
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    client: Option<Arc<MemoryBudget>>,
    /// Bytes held of the daemon-wide budget.
    held: usize,
    /// Of those, bytes also counted against the client's share.
    held_by_client: usize,
}

/// Reservations grow in steps this large, to keep atomics off the per-byte path.
const RESERVE_STEP: usize = 64 * 1024;

impl Reservation {
    pub fn new(budget: Arc<MemoryBudget>) -> Self {
        Self {
            budget,
            client: None,
            held: 0,
            held_by_client: 0,
        }
    }

    /// A reservation that also counts against its client's share.
    pub fn for_client(budget: Arc<MemoryBudget>, client: Arc<MemoryBudget>) -> Self {
        Self {
            budget,
            client: Some(client),
            held: 0,
            held_by_client: 0,
        }
    }

    /// Makes sure `total` bytes are covered; false if the budget (or the
    /// client's share of it) is spent.
    pub fn cover(&mut self, total: usize) -> bool {
        self.grow(total, true)
    }

    /// [`Reservation::cover`] against the daemon-wide budget alone: for the
    /// short-lived working copies of a message whose data has all arrived.
    /// The client's share bounds what a client can hold while it streams
    /// (the slow stranger's weapon); charging the copies to it too would let
    /// many half-received messages of one client keep every one of them
    /// from finishing.
    pub fn cover_outside_share(&mut self, total: usize) -> bool {
        self.grow(total, false)
    }

    fn grow(&mut self, total: usize, from_share: bool) -> bool {
        if total <= self.held {
            return true;
        }
        let wanted = (total - self.held).div_ceil(RESERVE_STEP) * RESERVE_STEP;
        let share = self.client.as_ref().filter(|_| from_share);
        if share.is_some_and(|share| !share.try_reserve(wanted)) {
            return false;
        }
        if !self.budget.try_reserve(wanted) {
            if let Some(share) = share {
                share.used.fetch_sub(wanted, Ordering::AcqRel);
            }
            return false;
        }
        self.held += wanted;
        if share.is_some() {
            self.held_by_client += wanted;
        }
        true
    }
}

impl Reservation {
    /// Gives back what is held beyond `total` bytes (rounded up to a step),
    /// e.g. the unused capacity a growing buffer left behind.
    pub fn shrink_to(&mut self, total: usize) {
        let keep = total.div_ceil(RESERVE_STEP) * RESERVE_STEP;
        if keep < self.held {
            self.budget
                .used
                .fetch_sub(self.held - keep, Ordering::AcqRel);
            self.held = keep;
        }
        if keep < self.held_by_client {
            if let Some(client) = &self.client {
                client
                    .used
                    .fetch_sub(self.held_by_client - keep, Ordering::AcqRel);
            }
            self.held_by_client = keep;
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::AcqRel);
        if let Some(client) = &self.client {
            client.used.fetch_sub(self.held_by_client, Ordering::AcqRel);
        }
    }
}

/// The share of the buffer budget one client (IPv4 address or IPv6 /64)
/// may hold at once: a quarter of it, but never less than one message at
/// the size limit needs. Strangers streaming slow messages from a few
/// addresses cannot hold the memory the partner's message needs.
pub const CLIENT_SHARE_DIVISOR: usize = 4;

/// The clients' shares of the buffer budget, held weakly: a share lives as
/// long as a reservation uses it. Dead entries are swept when the map has
/// doubled since the last sweep, so the work stays amortized constant.
#[derive(Default)]
struct Shares {
    map: HashMap<ClientKey, std::sync::Weak<MemoryBudget>>,
    sweep_at: usize,
}

impl Shares {
    fn get_or_create(&mut self, client: ClientKey, limit: usize) -> Arc<MemoryBudget> {
        if let Some(share) = self.map.get(&client).and_then(std::sync::Weak::upgrade) {
            return share;
        }
        if self.map.len() >= self.sweep_at.max(1024) {
            self.map.retain(|_, share| share.strong_count() > 0);
            self.sweep_at = self.map.len() * 2;
        }
        let share = MemoryBudget::new(limit);
        self.map.insert(client, Arc::downgrade(&share));
        share
    }
}

/// All cross-session limits of one listener.
pub struct Limits {
    pub per_client_connections: u32,
    connections: Mutex<HashMap<ClientKey, u32>>,
    /// Connections per IPv6 /48, under the same lock order (connections
    /// first).
    sites: Mutex<HashMap<Ipv6Addr, u32>>,
    pub client_messages: WindowCounter<ClientKey>,
    pub client_failed_rcpts: WindowCounter<ClientKey>,
    pub alias_messages: WindowCounter<String>,
    pub memory: Arc<MemoryBudget>,
    /// Each client's share of `memory`, while it holds any.
    client_memory: Mutex<Shares>,
    client_share: usize,
}

impl Limits {
    /// `one_message`: what one message at the size limit holds while it is
    /// forwarded (a client's share is never less).
    pub fn from_config(config: &LimitsConfig, one_message: usize) -> Arc<Self> {
        Arc::new(Self {
            per_client_connections: config.max_connections_per_client,
            connections: Mutex::new(HashMap::new()),
            sites: Mutex::new(HashMap::new()),
            client_messages: WindowCounter::new(
                Duration::from_secs(60),
                config.max_messages_per_client_per_minute,
            ),
            client_failed_rcpts: WindowCounter::new(
                Duration::from_secs(3600),
                config.max_failed_rcpts_per_client_per_hour,
            ),
            alias_messages: WindowCounter::new(
                Duration::from_secs(3600),
                config.max_messages_per_alias_per_hour,
            ),
            memory: MemoryBudget::new(config.max_buffered_bytes),
            client_memory: Mutex::new(Shares::default()),
            client_share: (config.max_buffered_bytes / CLIENT_SHARE_DIVISOR)
                .max(one_message.min(config.max_buffered_bytes)),
        })
    }

    /// A new reservation for a message from `client`: against the budget
    /// and the client's share of it.
    pub fn reserve_for(&self, client: ClientKey) -> Reservation {
        let mut shares = self.client_memory.lock().unwrap_or_else(|p| p.into_inner());
        let share = shares.get_or_create(client, self.client_share);
        Reservation::for_client(Arc::clone(&self.memory), share)
    }

    /// Admits one more connection from `client`, or None over the limit.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Option<ConnectionSlot> {
        let key = ClientKey::from(client);
        let site = site_of(client);
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        if connections.get(&key).copied().unwrap_or(0) >= self.per_client_connections {
            return None;
        }
        if let Some(site) = site {
            let per_site = self
                .per_client_connections
                .saturating_mul(CONNECTIONS_PER_SITE_IN_CLIENTS);
            let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
            let count = sites.entry(site).or_insert(0);
            if *count >= per_site {
                if *count == 0 {
                    sites.remove(&site);
                }
                return None;
            }
            *count += 1;
        }
        *connections.entry(key).or_insert(0) += 1;
        Some(ConnectionSlot {
            limits: Arc::clone(self),
            client: key,
            site,
        })
    }
}

/// A client's connection slot; released (and forgotten at zero) on drop.
pub struct ConnectionSlot {
    limits: Arc<Limits>,
    pub client: ClientKey,
    site: Option<Ipv6Addr>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut connections = self
            .limits
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = connections.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                connections.remove(&self.client);
            }
        }
        if let Some(site) = self.site {
            let mut sites = self.limits.sites.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(count) = sites.get_mut(&site) {
                *count -= 1;
                if *count == 0 {
                    sites.remove(&site);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let key = |s: &str| ClientKey::from(s.parse::<IpAddr>().unwrap());
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
        let limits = Limits::from_config(
            &LimitsConfig {
                max_connections_per_client: 1,
                ..LimitsConfig::default()
            },
            0,
        );
        let _held = limits.admit("2001:db8::1".parse().unwrap()).unwrap();
        assert!(limits.admit("2001:db8::2".parse().unwrap()).is_none());
    }

    #[test]
    fn a_clients_share_bounds_what_it_streams_not_the_copies_of_a_finished_message() {
        let limits = Limits::from_config(
            &LimitsConfig {
                max_buffered_bytes: 1024 * 1024,
                ..LimitsConfig::default()
            },
            0,
        );
        let client = ClientKey::from("192.0.2.1".parse::<IpAddr>().unwrap());
        let mut first = limits.reserve_for(client);
        assert!(first.cover(256 * 1024), "a quarter of the budget");
        let mut second = limits.reserve_for(client);
        assert!(!second.cover(64 * 1024), "the share is spent");
        let mut other = limits.reserve_for(ClientKey::from("192.0.2.2".parse::<IpAddr>().unwrap()));
        assert!(other.cover(256 * 1024), "another client has its own");
        // The finished message's working copies come from the budget alone.
        assert!(first.cover_outside_share(512 * 1024));
        assert_eq!(limits.memory.used(), 768 * 1024);
        first.shrink_to(128 * 1024);
        assert!(
            second.cover(128 * 1024),
            "what the first gave back is the client's again"
        );
        drop((first, second, other));
        assert_eq!(limits.memory.used(), 0);
        assert!(limits.reserve_for(client).cover(256 * 1024));
    }

    #[test]
    fn shares_of_clients_gone_are_swept() {
        let limits = Limits::from_config(&LimitsConfig::default(), 0);
        let held = limits.reserve_for(ClientKey::from("192.0.2.1".parse::<IpAddr>().unwrap()));
        for i in 0..5000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            drop(limits.reserve_for(ClientKey::from(ip)));
        }
        let tracked = limits.client_memory.lock().unwrap().map.len();
        assert!(tracked <= 1025, "{tracked} shares tracked");
        drop(held);
    }

    #[test]
    fn an_ipv6_site_gets_four_clients_worth_of_connections() {
        let limits = Limits::from_config(
            &LimitsConfig {
                max_connections_per_client: 2,
                ..LimitsConfig::default()
            },
            0,
        );
        let admit = |ip: &str| limits.admit(ip.parse().unwrap());
        // Eight /64s of one /48: two connections each would be sixteen.
        let mut held = Vec::new();
        for net in 0..8 {
            for host in 1..=2 {
                if let Some(slot) = admit(&format!("2001:db8:7:{net}::{host}")) {
                    held.push(slot);
                }
            }
        }
        assert_eq!(held.len(), 8, "four clients' worth for the /48");
        assert!(
            admit("2001:db8:8::1").is_some(),
            "another /48 is another site"
        );
        assert!(admit("192.0.2.1").is_some());
        held.pop();
        assert!(
            admit("2001:db8:7:9::1").is_some(),
            "a freed slot is usable again"
        );
        drop(held);
        assert!(limits.sites.lock().unwrap().is_empty());
    }

    #[test]
    fn memory_budget_is_shared_and_returned() {
        let budget = MemoryBudget::new(RESERVE_STEP * 2);
        let mut a = Reservation::new(Arc::clone(&budget));
        let mut b = Reservation::new(Arc::clone(&budget));
        assert!(a.cover(10));
        assert!(a.cover(RESERVE_STEP));
        assert!(b.cover(RESERVE_STEP));
        assert!(!b.cover(RESERVE_STEP + 1), "budget spent");
        drop(a);
        assert!(b.cover(RESERVE_STEP + 1));
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_reservation_gives_back_what_it_no_longer_needs() {
        let budget = MemoryBudget::new(RESERVE_STEP * 4);
        let mut a = Reservation::new(Arc::clone(&budget));
        assert!(a.cover(RESERVE_STEP * 4));
        assert!(!Reservation::new(Arc::clone(&budget)).cover(1));
        a.shrink_to(RESERVE_STEP + 1);
        assert_eq!(budget.used(), RESERVE_STEP * 2, "rounded up to a step");
        a.shrink_to(RESERVE_STEP * 3);
        assert_eq!(budget.used(), RESERVE_STEP * 2, "shrinking never grows");
        assert!(Reservation::new(Arc::clone(&budget)).cover(RESERVE_STEP * 2));
        drop(a);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn connection_slots_count_per_client() {
        let limits = Limits::from_config(
            &LimitsConfig {
                max_connections_per_client: 2,
                ..LimitsConfig::default()
            },
            0,
        );
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let one = limits.admit(ip).unwrap();
        let _two = limits.admit(ip).unwrap();
        assert!(limits.admit(ip).is_none());
        assert!(limits.admit("192.0.2.2".parse().unwrap()).is_some());
        drop(one);
        assert!(limits.admit(ip).is_some());
    }
}
