//! Rate and count limits: a token bucket for messages, a failure window for logins, and the
//! connection counter. All of them are bounded in memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A token bucket: `rate` tokens per second, holding at most `burst`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: f64::from(rate.max(1)),
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes a token if one is there.
    pub fn try_take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Counts events per key within a window that starts at the key's first event.
#[derive(Debug)]
struct FailureWindow<K> {
    limit: u32,
    window: Duration,
    entries: HashMap<K, (Instant, u32)>,
}

const MINUTE: Duration = Duration::from_secs(60);

/// Most keys remembered; beyond this, expired entries are swept and, failing that, the table is
/// cleared (an attacker cycling through addresses cannot grow memory without bound).
const MAX_TRACKED: usize = 100_000;

impl<K: Hash + Eq + Clone> FailureWindow<K> {
    fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            entries: HashMap::new(),
        }
    }

    fn blocked(&mut self, key: &K) -> bool {
        if self.limit == 0 {
            return false;
        }
        match self.entries.get(key) {
            Some((start, count)) if start.elapsed() < self.window => *count >= self.limit,
            Some(_) => {
                self.entries.remove(key);
                false
            }
            None => false,
        }
    }

    fn record(&mut self, key: K) {
        if self.entries.len() >= MAX_TRACKED {
            let window = self.window;
            self.entries
                .retain(|_, (start, _)| start.elapsed() < window);
            if self.entries.len() >= MAX_TRACKED {
                self.entries.clear();
            }
        }
        let now = Instant::now();
        let entry = self.entries.entry(key).or_insert((now, 0));
        if entry.0.elapsed() >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// Takes back one [`record`](Self::record) still inside the window.
    fn unrecord(&mut self, key: &K) {
        if let Some((start, count)) = self.entries.get_mut(key)
            && start.elapsed() < self.window
        {
            *count = count.saturating_sub(1);
        }
    }

    fn clear(&mut self, key: &K) {
        self.entries.remove(key);
    }
}

/// Refuses logins from an address or for an account after too many recent failures.
#[derive(Debug)]
pub struct LoginLimiter {
    per_ip: Mutex<FailureWindow<IpAddr>>,
    per_account: Mutex<FailureWindow<String>>,
}

impl LoginLimiter {
    /// Failure limits per minute (0 = unlimited).
    pub fn new(per_ip: u32, per_account: u32) -> Self {
        Self {
            per_ip: Mutex::new(FailureWindow::new(per_ip, MINUTE)),
            per_account: Mutex::new(FailureWindow::new(per_account, MINUTE)),
        }
    }

    /// Whether a login attempt must be refused now.
    pub fn blocked(&self, ip: IpAddr, account_key: &str) -> bool {
        let ip_blocked = self
            .per_ip
            .lock()
            .map(|mut w| w.blocked(&ip))
            .unwrap_or(false);
        let account_blocked = self
            .per_account
            .lock()
            .map(|mut w| w.blocked(&account_key.to_string()))
            .unwrap_or(false);
        ip_blocked || account_blocked
    }

    /// Records a failed attempt, against the account too when the name could be one (a name no
    /// account can have is not kept: the peer chooses its length).
    pub fn failed(&self, ip: IpAddr, account_key: Option<&str>) {
        if let Ok(mut w) = self.per_ip.lock() {
            w.record(ip);
        }
        if let Some(key) = account_key
            && let Ok(mut w) = self.per_account.lock()
        {
            w.record(key.to_string());
        }
    }

    /// Forgets an account's failures after a successful login.
    pub fn succeeded(&self, account_key: &str) {
        if let Ok(mut w) = self.per_account.lock() {
            w.clear(&account_key.to_string());
        }
    }
}

/// Refuses registrations from an address that created too many accounts within the hour, so one
/// machine on the LAN cannot flood the server (and `public`) with accounts. Admins creating
/// accounts are not counted.
#[derive(Debug)]
pub struct RegistrationLimiter {
    per_ip: Mutex<FailureWindow<IpAddr>>,
}

impl RegistrationLimiter {
    /// At most `per_hour` accounts per address per hour (0 = unlimited).
    pub fn new(per_hour: u32) -> Self {
        Self {
            per_ip: Mutex::new(FailureWindow::new(per_hour, Duration::from_secs(3600))),
        }
    }

    /// Takes one of `ip`'s registrations for the hour, or `None` when it has none left. It is
    /// counted at once, so registrations racing on parallel connections cannot exceed the
    /// limit; dropping the reservation without [`RegistrationReservation::keep`] gives it back.
    pub fn reserve(&self, ip: IpAddr) -> Option<RegistrationReservation<'_>> {
        let mut w = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if w.blocked(&ip) {
            return None;
        }
        w.record(ip);
        Some(RegistrationReservation {
            limiter: self,
            ip,
            kept: false,
        })
    }
}

/// One registration counted against an address; see [`RegistrationLimiter::reserve`].
#[derive(Debug)]
pub struct RegistrationReservation<'a> {
    limiter: &'a RegistrationLimiter,
    ip: IpAddr,
    kept: bool,
}

impl RegistrationReservation<'_> {
    /// The account was created: the registration stays counted.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for RegistrationReservation<'_> {
    fn drop(&mut self) {
        if !self.kept {
            let mut w = self
                .limiter
                .per_ip
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            w.unrecord(&self.ip);
        }
    }
}

/// Counts open connections, in total and per address.
#[derive(Debug)]
pub struct ConnectionLimiter {
    max_total: u32,
    max_per_ip: u32,
    counts: Mutex<(u32, HashMap<IpAddr, u32>)>,
}

/// Holds one connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct ConnectionSlot {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl ConnectionLimiter {
    /// Limits of 0 mean unlimited.
    pub fn new(max_total: u32, max_per_ip: u32) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_ip,
            counts: Mutex::new((0, HashMap::new())),
        })
    }

    /// A place for a connection from `ip`, or `None` when a limit is reached.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut counts = self.counts.lock().ok()?;
        let (total, per_ip) = &mut *counts;
        let from_ip = per_ip.get(&ip).copied().unwrap_or(0);
        if (self.max_total != 0 && *total >= self.max_total)
            || (self.max_per_ip != 0 && from_ip >= self.max_per_ip)
        {
            return None;
        }
        *total += 1;
        per_ip.insert(ip, from_ip + 1);
        Some(ConnectionSlot {
            limiter: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.limiter.counts.lock() {
            let (total, per_ip) = &mut *counts;
            *total = total.saturating_sub(1);
            if let Some(n) = per_ip.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    per_ip.remove(&self.ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_refuses() {
        let mut bucket = TokenBucket::new(1, 3);
        assert!(bucket.try_take());
        assert!(bucket.try_take());
        assert!(bucket.try_take());
        assert!(!bucket.try_take());
    }

    #[test]
    fn login_failures_block_the_account_and_success_clears_it() {
        let limiter = LoginLimiter::new(100, 2);
        let ip: IpAddr = [127, 0, 0, 1].into();
        assert!(!limiter.blocked(ip, "bob"));
        limiter.failed(ip, Some("bob"));
        limiter.failed(ip, Some("bob"));
        assert!(limiter.blocked(ip, "bob"));
        assert!(!limiter.blocked(ip, "alice"));
        limiter.succeeded("bob");
        assert!(!limiter.blocked(ip, "bob"));
    }

    #[test]
    fn login_failure_limits_of_zero_mean_unlimited() {
        let limiter = LoginLimiter::new(0, 0);
        let ip: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..100 {
            limiter.failed(ip, Some("bob"));
        }
        assert!(!limiter.blocked(ip, "bob"), "0: no limit, as documented");
    }

    #[test]
    fn names_no_account_can_have_are_not_remembered() {
        let limiter = LoginLimiter::new(1000, 2);
        let ip: IpAddr = [127, 0, 0, 1].into();
        for i in 0..100 {
            limiter.failed(ip, None);
            limiter.failed(ip, Some(&format!("user{i}")));
        }
        let tracked = limiter.per_account.lock().map(|w| w.entries.len());
        assert_eq!(tracked.ok(), Some(100), "only the possible names");
    }

    #[test]
    fn registrations_are_counted_per_address_and_zero_means_unlimited() {
        let limiter = RegistrationLimiter::new(2);
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let first = limiter.reserve(a).expect("first");
        // Counted while the account is being created, so a parallel registration sees it.
        let second = limiter.reserve(a).expect("second");
        assert!(
            limiter.reserve(a).is_none(),
            "two in flight use up the hour"
        );
        drop(second);
        first.keep();
        let second = limiter
            .reserve(a)
            .expect("a failed registration gave its place back");
        second.keep();
        assert!(limiter.reserve(a).is_none());
        assert!(
            limiter.reserve(b).is_some(),
            "other addresses are not affected"
        );
        let unlimited = RegistrationLimiter::new(0);
        for _ in 0..100 {
            unlimited.reserve(a).expect("unlimited").keep();
        }
        assert!(unlimited.reserve(a).is_some());
    }

    #[test]
    fn connection_slots_are_counted_and_freed() {
        let limiter = ConnectionLimiter::new(0, 2);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let a = limiter.acquire(ip).expect("first");
        let _b = limiter.acquire(ip).expect("second");
        assert!(limiter.acquire(ip).is_none());
        assert!(limiter.acquire([10, 0, 0, 2].into()).is_some());
        drop(a);
        assert!(limiter.acquire(ip).is_some());
    }
}
