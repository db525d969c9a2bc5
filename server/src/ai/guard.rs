//! What keeps the bot cheap and polite: per-user and per-room rate limits, and the circuit
//! breaker that stops calling a failing model for a while.
//!
//! Both are plain state machines over an `Instant` passed in, so they are tested without
//! sleeping; the bot holds them behind a mutex for short, non-async sections.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Most keys a rate limiter remembers; beyond this, expired windows are swept.
const MAX_KEYS: usize = 10_000;

/// What a rate limiter says about one more question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rate {
    /// Within the limit.
    Allowed,
    /// Over the limit; `notify` is true the first time in this window (tell them once).
    Limited {
        /// When the window ends.
        retry_in: Duration,
        /// Say so (only the first refusal of a window is announced).
        notify: bool,
    },
}

/// At most `limit` events per key per `period` (fixed windows). A limit of 0 means no limit.
#[derive(Debug)]
pub struct RateLimiter<K> {
    limit: u32,
    period: Duration,
    entries: HashMap<K, (Instant, u32, bool)>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter of `limit` per `period`.
    pub fn new(limit: u32, period: Duration) -> Self {
        Self {
            limit,
            period,
            entries: HashMap::new(),
        }
    }

    /// Would one more event for `key` be within the limit? (Nothing is counted.)
    pub fn check(&mut self, key: &K, now: Instant) -> Rate {
        if self.limit == 0 {
            return Rate::Allowed;
        }
        match self.entries.get_mut(key) {
            Some((start, count, noticed)) if now.duration_since(*start) < self.period => {
                if *count < self.limit {
                    Rate::Allowed
                } else {
                    let notify = !*noticed;
                    *noticed = true;
                    Rate::Limited {
                        retry_in: self.period - now.duration_since(*start),
                        notify,
                    }
                }
            }
            _ => Rate::Allowed,
        }
    }

    /// Counts one event for `key`.
    pub fn record(&mut self, key: K, now: Instant) {
        if self.limit == 0 {
            return;
        }
        if self.entries.len() >= MAX_KEYS {
            let period = self.period;
            self.entries
                .retain(|_, (start, _, _)| now.duration_since(*start) < period);
            if self.entries.len() >= MAX_KEYS {
                self.entries.clear();
            }
        }
        let entry = self.entries.entry(key).or_insert((now, 0, false));
        if now.duration_since(entry.0) >= self.period {
            *entry = (now, 0, false);
        }
        entry.1 += 1;
    }
}

/// Says yes to a key at most once per `period`: for notices the bot gives each user once per
/// window ("busy", "unavailable"), however often they ask.
#[derive(Debug)]
pub struct OncePer<K> {
    period: Duration,
    last: HashMap<K, Instant>,
}

impl<K: Hash + Eq> OncePer<K> {
    /// Once per `period` per key.
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            last: HashMap::new(),
        }
    }

    /// True if `key` has not had its turn in the last `period` (and takes it now).
    pub fn first(&mut self, key: K, now: Instant) -> bool {
        if let Some(at) = self.last.get(&key)
            && now.duration_since(*at) < self.period
        {
            return false;
        }
        if self.last.len() >= MAX_KEYS {
            let period = self.period;
            self.last.retain(|_, at| now.duration_since(*at) < period);
            if self.last.len() >= MAX_KEYS {
                // Every key is recent: forgetting them all costs at most one notice each.
                self.last.clear();
            }
        }
        self.last.insert(key, now);
        true
    }
}

/// Whether a call to the model may go ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Call it (when the breaker was open, this call is the probe).
    Go,
    /// The breaker is open: the model is not called for `retry_in`.
    Unavailable {
        /// Until the next probe.
        retry_in: Duration,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    Probing,
}

/// After `threshold` consecutive failures the breaker opens: no calls for `cooldown`, then one
/// probe; its success closes the breaker, its failure opens it again. A threshold of 0
/// disables the breaker.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    failures: u32,
    state: State,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold,
            cooldown,
            failures: 0,
            state: State::Closed,
        }
    }

    /// Whether new questions should be turned away right now (without changing state).
    pub fn blocks(&self, now: Instant) -> Option<Duration> {
        match self.state {
            State::Open { until } if now < until => Some(until - now),
            State::Probing => Some(Duration::ZERO),
            _ => None,
        }
    }

    /// Asks to call the model now.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            State::Closed => Admission::Go,
            State::Open { until } if now >= until => {
                self.state = State::Probing;
                Admission::Go
            }
            State::Open { until } => Admission::Unavailable {
                retry_in: until - now,
            },
            State::Probing => Admission::Unavailable {
                retry_in: Duration::ZERO,
            },
        }
    }

    /// A call succeeded.
    pub fn success(&mut self) {
        self.failures = 0;
        self.state = State::Closed;
    }

    /// A call failed. Returns true if this failure opened the breaker.
    pub fn failure(&mut self, now: Instant) -> bool {
        self.failures = self.failures.saturating_add(1);
        let open = match self.state {
            State::Probing => true,
            State::Closed => self.threshold > 0 && self.failures >= self.threshold,
            State::Open { .. } => false,
        };
        if open {
            self.state = State::Open {
                until: now + self.cooldown,
            };
        }
        open
    }

    /// A call ended with neither success nor failure (cancelled at shutdown).
    pub fn abandoned(&mut self) {
        if self.state == State::Probing {
            self.state = State::Open {
                until: Instant::now(),
            };
        }
    }

    /// For `@ai status`.
    pub fn describe(&self, now: Instant) -> String {
        match self.state {
            State::Closed if self.failures == 0 => "healthy".to_string(),
            State::Closed => format!(
                "healthy, {} recent failure{}",
                self.failures,
                if self.failures == 1 { "" } else { "s" }
            ),
            State::Open { until } => format!(
                "unavailable after {} failures in a row; next try in {} s",
                self.failures,
                until.saturating_duration_since(now).as_secs_f32().ceil() as u64
            ),
            State::Probing => "checking whether the model is back".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_count_per_key_and_announce_once_per_window() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(2, Duration::from_secs(60));
        for _ in 0..2 {
            assert_eq!(limiter.check(&"alice", t0), Rate::Allowed);
            limiter.record("alice", t0);
        }
        assert!(matches!(
            limiter.check(&"alice", t0),
            Rate::Limited { notify: true, .. }
        ));
        assert!(matches!(
            limiter.check(&"alice", t0),
            Rate::Limited { notify: false, .. }
        ));
        assert_eq!(limiter.check(&"bob", t0), Rate::Allowed, "per key");
        let later = t0 + Duration::from_secs(61);
        assert_eq!(
            limiter.check(&"alice", later),
            Rate::Allowed,
            "a new window"
        );
        let mut unlimited = RateLimiter::new(0, Duration::from_secs(60));
        for _ in 0..100 {
            unlimited.record("x", t0);
        }
        assert_eq!(unlimited.check(&"x", t0), Rate::Allowed);
    }

    #[test]
    fn once_per_says_yes_once_per_key_and_period() {
        let t0 = Instant::now();
        let mut once = OncePer::new(Duration::from_secs(60));
        assert!(once.first("alice", t0));
        assert!(!once.first("alice", t0 + Duration::from_secs(59)));
        assert!(once.first("bob", t0), "per key");
        assert!(
            once.first("alice", t0 + Duration::from_secs(60)),
            "a new period"
        );
        let mut many = OncePer::new(Duration::from_secs(60));
        for i in 0..MAX_KEYS + 10 {
            assert!(many.first(i, t0));
        }
        assert!(many.last.len() <= MAX_KEYS, "bounded");
    }

    #[test]
    fn the_breaker_opens_after_repeated_failures_and_probes_after_the_cooldown() {
        let t0 = Instant::now();
        let cooldown = Duration::from_secs(30);
        let mut b = Breaker::new(3, cooldown);
        assert!(!b.failure(t0));
        assert!(!b.failure(t0));
        assert_eq!(b.admit(t0), Admission::Go, "still closed");
        assert!(b.failure(t0), "the third failure opens it");
        assert!(matches!(b.admit(t0), Admission::Unavailable { .. }));
        assert!(b.blocks(t0).is_some());
        assert!(b.describe(t0).starts_with("unavailable"));
        let after = t0 + cooldown;
        assert_eq!(b.admit(after), Admission::Go, "the probe");
        assert!(
            matches!(b.admit(after), Admission::Unavailable { .. }),
            "one probe at a time"
        );
        assert!(b.failure(after), "a failed probe opens it again");
        let later = after + cooldown;
        assert_eq!(b.admit(later), Admission::Go);
        b.success();
        assert_eq!(b.admit(later), Admission::Go);
        assert_eq!(b.describe(later), "healthy");
        assert!(b.blocks(later).is_none());
    }
}
