//! The open connections: how many each client address holds, which of them has a request
//! in flight, and which idle one to close when a new connection needs its place.
//! One client may not fill the cap, and idle sockets may not keep the IdP out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::ConnectionStats;

/// Whom a connection belongs to for the per-client share: an IPv4 address, or an IPv6 /64
/// (one host's interface or one customer's network: a client owns the whole prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    V4(u32),
    V6Prefix(u64),
}

impl ClientKey {
    pub fn of(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(v4) => ClientKey::V4(v4.into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(v4.into()),
                None => ClientKey::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// All open connections of one listener.
pub struct Registry {
    max_connections: usize,
    /// 0: no per-client share.
    max_per_client: usize,
    inner: Mutex<Inner>,
    /// Signalled when a connection ends or goes idle: the accept loop may find room.
    room: Notify,
    /// The accept loop waits for room: only then does a request's end signal `room` (the
    /// claims path's requests end by the thousand a second, the cap is rarely reached).
    waiting: AtomicBool,
    stats: Arc<ConnectionStats>,
}

#[derive(Default)]
struct Inner {
    open: HashMap<u64, Arc<Conn>>,
    per_client: HashMap<ClientKey, usize>,
    next_id: u64,
}

/// What the registry knows of one open connection, shared with its task and its requests.
pub struct Conn {
    opened: Instant,
    /// Milliseconds since `opened` of the last byte read or written.
    last_ms: AtomicU64,
    in_flight: AtomicU32,
    /// A whole request head arrived (the service was called once).
    first_request: AtomicBool,
    /// Chosen to make room; set once, so that it is not chosen twice.
    evicted: AtomicBool,
    /// Wakes the connection's task when it is evicted.
    evict: Notify,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            first_request: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
        }
    }

    pub fn opened(&self) -> Instant {
        self.opened
    }

    /// Notes that a byte moved now.
    pub fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// When the connection last moved a byte.
    pub fn last_activity(&self) -> Instant {
        self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    pub fn has_had_request(&self) -> bool {
        self.first_request.load(Ordering::Relaxed)
    }

    pub fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
    }

    /// Resolves once the registry chose this connection to make room.
    pub async fn evicted(&self) {
        self.evict.notified().await
    }
}

/// Why a connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its client address already holds its share of the cap.
    OverShare,
    /// The listener is shutting down.
    ShuttingDown,
}

impl Registry {
    pub fn new(max_connections: usize, max_per_client: usize, stats: Arc<ConnectionStats>) -> Arc<Registry> {
        Arc::new(Registry {
            max_connections: max_connections.max(1),
            max_per_client,
            inner: Mutex::new(Inner::default()),
            room: Notify::new(),
            waiting: AtomicBool::new(false),
            stats,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain counters behind, still usable.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Admits a connection from `client`: refused at once over its share, else waits for
    /// a place under the cap, closing the connection idle the longest to make one.
    pub async fn admit(self: &Arc<Self>, client: ClientKey, shutdown: &CancellationToken) -> Result<Entry, Refusal> {
        {
            let mut inner = self.lock();
            let held = inner.per_client.entry(client).or_insert(0);
            if self.max_per_client > 0 && *held >= self.max_per_client {
                return Err(Refusal::OverShare);
            }
            *held += 1;
        }
        // From here the share is counted: the entry (or this guard) gives it back.
        let mut pending = Pending {
            registry: Arc::clone(self),
            client,
            armed: true,
        };
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered, and said to wait, before looking: a place freed or a connection
            // gone idle meanwhile is not missed (SeqCst with `went_idle`'s side).
            room.as_mut().enable();
            self.waiting.store(true, Ordering::SeqCst);
            if let Some(entry) = self.try_place(&pending) {
                self.waiting.store(false, Ordering::SeqCst);
                // The share now belongs to the entry.
                pending.armed = false;
                return Ok(entry);
            }
            tokio::select! {
                _ = room => {}
                _ = shutdown.cancelled() => {
                    self.waiting.store(false, Ordering::SeqCst);
                    return Err(Refusal::ShuttingDown);
                }
            }
        }
    }

    /// A place if there is one under the cap; else asks the idlest connection to close.
    fn try_place(self: &Arc<Self>, pending: &Pending) -> Option<Entry> {
        let mut inner = self.lock();
        if inner.open.len() < self.max_connections {
            let id = inner.next_id;
            inner.next_id += 1;
            let conn = Arc::new(Conn::new());
            inner.open.insert(id, Arc::clone(&conn));
            self.stats.open.store(inner.open.len() as u64, Ordering::Relaxed);
            return Some(Entry {
                registry: Arc::clone(self),
                client: pending.client,
                id,
                conn,
            });
        }
        let victim = inner
            .open
            .values()
            .filter(|conn| conn.is_idle() && !conn.evicted.load(Ordering::Relaxed))
            .min_by_key(|conn| conn.last_activity());
        if let Some(victim) = victim {
            victim.evicted.store(true, Ordering::Relaxed);
            self.stats.evicted.fetch_add(1, Ordering::Relaxed);
            // A permit is stored if its task is not waiting yet: it will see it.
            victim.evict.notify_one();
        }
        None
    }

    /// Called when a connection's last request in flight finished: the accept loop may be
    /// waiting for an idle connection to close.
    pub fn went_idle(&self) {
        if self.waiting.load(Ordering::SeqCst) {
            self.room.notify_one();
        }
    }
}

/// The share taken by a connection still waiting for a place.
struct Pending {
    registry: Arc<Registry>,
    client: ClientKey,
    /// Cleared once an entry holds the share.
    armed: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.armed {
            release_share(&mut self.registry.lock(), self.client);
        }
    }
}

fn release_share(inner: &mut Inner, client: ClientKey) {
    if let Some(held) = inner.per_client.get_mut(&client) {
        *held -= 1;
        if *held == 0 {
            inner.per_client.remove(&client);
        }
    }
}

/// One admitted connection: its place and its share, given back when dropped.
pub struct Entry {
    registry: Arc<Registry>,
    client: ClientKey,
    id: u64,
    conn: Arc<Conn>,
}

impl Entry {
    pub fn conn(&self) -> &Arc<Conn> {
        &self.conn
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn stats(&self) -> &ConnectionStats {
        &self.registry.stats
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        {
            let mut inner = self.registry.lock();
            inner.open.remove(&self.id);
            self.registry
                .stats
                .open
                .store(inner.open.len() as u64, Ordering::Relaxed);
            release_share(&mut inner, self.client);
        }
        self.registry.room.notify_one();
    }
}

/// A request in flight on a connection, from its head to the end of its answer's body.
pub struct InFlight {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl InFlight {
    pub fn enter(conn: &Arc<Conn>, registry: &Arc<Registry>) -> InFlight {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.first_request.store(true, Ordering::Relaxed);
        InFlight {
            conn: Arc::clone(conn),
            registry: Arc::clone(registry),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.conn.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.registry.went_idle();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::of(a), ClientKey::of(b));
        assert_ne!(ClientKey::of(a), ClientKey::of(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let plain: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(ClientKey::of(mapped), ClientKey::of(plain));
        assert_ne!(ClientKey::of(plain), ClientKey::of("192.0.2.8".parse().unwrap()));
    }

    #[tokio::test]
    async fn a_client_over_its_share_is_refused_and_its_share_comes_back() {
        let registry = Registry::new(8, 2, Arc::default());
        let shutdown = CancellationToken::new();
        let client = ClientKey::of("192.0.2.1".parse().unwrap());
        let first = registry.admit(client, &shutdown).await.unwrap();
        let _second = registry.admit(client, &shutdown).await.unwrap();
        assert_eq!(registry.admit(client, &shutdown).await.err(), Some(Refusal::OverShare));
        let other = ClientKey::of("192.0.2.2".parse().unwrap());
        assert!(registry.admit(other, &shutdown).await.is_ok());
        drop(first);
        assert!(registry.admit(client, &shutdown).await.is_ok());
    }

    #[tokio::test]
    async fn at_the_cap_the_idlest_connection_is_asked_to_close_and_busy_ones_are_not() {
        let registry = Registry::new(2, 0, Arc::default());
        let shutdown = CancellationToken::new();
        let client = ClientKey::of("192.0.2.1".parse().unwrap());
        let busy = registry.admit(client, &shutdown).await.unwrap();
        let _request = InFlight::enter(busy.conn(), busy.registry());
        let idle = registry.admit(client, &shutdown).await.unwrap();
        let waiting = tokio::spawn({
            let registry = Arc::clone(&registry);
            let shutdown = shutdown.clone();
            async move { registry.admit(client, &shutdown).await.map(|_| ()) }
        });
        // The idle connection is told to close; the busy one never is.
        tokio::time::timeout(Duration::from_secs(5), idle.conn().evicted())
            .await
            .expect("the idle connection was asked to close");
        assert!(!busy.conn().evicted.load(Ordering::Relaxed));
        assert!(!waiting.is_finished());
        drop(idle);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("admitted once the idle connection closed")
            .unwrap()
            .unwrap();
    }
}
