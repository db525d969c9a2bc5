//! Session tokens in memory, and their expiry.
//!
//! A login stores the SHA-256 of a random token (`sessions` table) and the hub keeps the same
//! set here, so a resume needs no database read. Each token remembers when it was last used:
//! created, resumed, or held by a connection. A token unused for longer than
//! `limits.session_expiry_secs` no longer resumes (the user logs in again with the password) and
//! its row is deleted. A stolen or forgotten token therefore stops working on its own.
//!
//! Uses are recorded in memory as they happen and written to SQLite by `upkeep`, which runs at
//! start-up, then every quarter of the expiry (at most hourly), and at shutdown. A crash loses at
//! most one period of recorded uses, which can only make a session expire that much early.

use chatroom_protocol::{UnixMillis, UserId, now_millis};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::storage::{Outcome, WriteOp};

/// A token's SHA-256.
pub type TokenHash = [u8; 32];

#[derive(Clone, Copy, Debug)]
struct TokenEntry {
    user: UserId,
    last_used: UnixMillis,
    /// Used since the last [`SessionTokens::upkeep`] wrote it down.
    unsaved: bool,
}

/// The live session tokens and whose they are.
#[derive(Debug, Default)]
pub struct SessionTokens {
    tokens: Mutex<HashMap<TokenHash, TokenEntry>>,
}

/// What a resume finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenCheck {
    /// A live session of this account; its use is recorded.
    Live(UserId),
    /// The session existed but was unused for too long; it is forgotten here and its row should
    /// be deleted.
    Expired,
    /// No such session (never issued, logged out, or revoked).
    Unknown,
}

/// What [`SessionTokens::upkeep`] found to write.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Upkeep {
    /// Tokens used since the last upkeep, with their latest use.
    pub used: Vec<(TokenHash, UnixMillis)>,
    /// Tokens past their expiry, already forgotten in memory.
    pub expired: Vec<TokenHash>,
}

impl SessionTokens {
    /// The tokens of the database snapshot: hash, account, last use.
    pub fn new(rows: impl IntoIterator<Item = (TokenHash, UserId, UnixMillis)>) -> Self {
        let tokens = rows
            .into_iter()
            .map(|(hash, user, last_used)| {
                let entry = TokenEntry {
                    user,
                    last_used,
                    unsaved: false,
                };
                (hash, entry)
            })
            .collect();
        Self {
            tokens: Mutex::new(tokens),
        }
    }

    // A poisoned lock means a panic elsewhere mid-update of a plain map; it is still usable.
    fn map(&self) -> MutexGuard<'_, HashMap<TokenHash, TokenEntry>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A session was stored at `now`.
    pub fn add(&self, hash: &[u8], user: UserId, now: UnixMillis) {
        if let Ok(hash) = TokenHash::try_from(hash) {
            let entry = TokenEntry {
                user,
                last_used: now,
                unsaved: false,
            };
            self.map().insert(hash, entry);
        }
    }

    /// A session was deleted.
    pub fn remove(&self, hash: &[u8]) {
        if let Ok(hash) = TokenHash::try_from(hash) {
            self.map().remove(&hash);
        }
    }

    /// Whether the session is stored (not logged out, revoked or expired).
    pub fn holds(&self, hash: &[u8]) -> bool {
        TokenHash::try_from(hash).is_ok_and(|hash| self.map().contains_key(&hash))
    }

    /// Every session of `user` but `keep` was deleted.
    pub fn remove_user(&self, user: UserId, keep: Option<&[u8]>) {
        self.map()
            .retain(|hash, entry| entry.user != user || keep.is_some_and(|k| k == hash.as_slice()));
    }

    /// Checks a token presented for a resume at `now`. `expiry` of `None` means sessions never
    /// expire.
    pub fn resume(&self, hash: &[u8], now: UnixMillis, expiry: Option<Duration>) -> TokenCheck {
        let Ok(hash) = TokenHash::try_from(hash) else {
            return TokenCheck::Unknown;
        };
        let mut map = self.map();
        let Some(entry) = map.get_mut(&hash) else {
            return TokenCheck::Unknown;
        };
        if is_expired(entry.last_used, now, expiry) {
            map.remove(&hash);
            return TokenCheck::Expired;
        }
        entry.last_used = entry.last_used.max(now);
        entry.unsaved = true;
        TokenCheck::Live(entry.user)
    }

    /// A connection holding this token ended at `now`: that was a use.
    pub fn touch(&self, hash: &[u8], now: UnixMillis) {
        let Ok(hash) = TokenHash::try_from(hash) else {
            return;
        };
        if let Some(entry) = self.map().get_mut(&hash) {
            entry.last_used = entry.last_used.max(now);
            entry.unsaved = true;
        }
    }

    /// Records a use at `now` of every token in `live` (held by a connection), forgets the
    /// tokens past `expiry`, and returns what the database needs to learn.
    pub fn upkeep(
        &self,
        live: &HashSet<TokenHash>,
        now: UnixMillis,
        expiry: Option<Duration>,
    ) -> Upkeep {
        let mut found = Upkeep::default();
        self.map().retain(|hash, entry| {
            if live.contains(hash) {
                entry.last_used = entry.last_used.max(now);
                entry.unsaved = true;
            } else if is_expired(entry.last_used, now, expiry) {
                found.expired.push(*hash);
                return false;
            }
            if entry.unsaved {
                entry.unsaved = false;
                found.used.push((*hash, entry.last_used));
            }
            true
        });
        found
    }
}

fn is_expired(last_used: UnixMillis, now: UnixMillis, expiry: Option<Duration>) -> bool {
    expiry.is_some_and(|expiry| {
        let expiry = u64::try_from(expiry.as_millis()).unwrap_or(u64::MAX);
        now.saturating_sub(last_used) > expiry
    })
}

/// An expiry in the largest whole unit, for messages: "30 days", "2 hours", "90 seconds".
pub fn describe(expiry: Duration) -> String {
    let secs = expiry.as_secs();
    let (n, unit) = match secs {
        s if s >= 86_400 && s % 86_400 == 0 => (s / 86_400, "day"),
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{plural}")
}

/// How often [`upkeep`] runs for a given expiry: a quarter of it, between 250 ms and an hour.
fn upkeep_period(expiry: Option<Duration>) -> Duration {
    let hour = Duration::from_secs(3600);
    expiry.map_or(hour, |e| (e / 4).clamp(Duration::from_millis(250), hour))
}

/// Writes recorded uses and deletes expired sessions: once at start-up (sessions that expired
/// while the server was down go at once), then periodically, and a last time at `shutdown` so a
/// clean stop loses no recorded use.
pub(crate) async fn upkeep(shared: Arc<Shared>, shutdown: CancellationToken) {
    let period = upkeep_period(shared.config.limits.session_expiry());
    loop {
        upkeep_once(&shared).await;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(period) => {}
        }
    }
    upkeep_once(&shared).await;
}

/// Rows one upkeep write touches at most, so that thousands of connected sessions are written
/// as many short transactions between message batches, not one long stall of the writer.
const UPKEEP_ROWS_PER_WRITE: usize = 256;

async fn upkeep_once(shared: &Shared) {
    let live = shared.hub.live_tokens();
    let expiry = shared.config.limits.session_expiry();
    let Upkeep { used, expired } = shared.hub.sessions().upkeep(&live, now_millis(), expiry);
    if !expired.is_empty() {
        tracing::info!(count = expired.len(), "expiring unused sessions");
    }
    let expired = expired
        .chunks(UPKEEP_ROWS_PER_WRITE)
        .map(|chunk| WriteOp::SessionUpkeep {
            used: Vec::new(),
            expired: chunk.to_vec(),
        });
    let used = used
        .chunks(UPKEEP_ROWS_PER_WRITE)
        .map(|chunk| WriteOp::SessionUpkeep {
            used: chunk.to_vec(),
            expired: Vec::new(),
        });
    for op in expired.chain(used) {
        match shared.storage.writer.write(op).await {
            Ok(Outcome::Done) => {}
            Ok(other) => tracing::error!(?other, "unexpected outcome of session upkeep"),
            Err(e) => tracing::warn!(error = %e, "cannot record session use"),
        }
    }
}

/// Why a session ended when someone else ended it: told to its connections as they close, and
/// kept (`ended_sessions`) for a client that comes back with the token later.
pub mod ended {
    /// A server admin logged the account out everywhere.
    pub const BY_ADMIN_LOGOUT: &str = "a server admin logged this account out everywhere";
    /// A server admin set a new password.
    pub const BY_PASSWORD_RESET: &str = "a server admin set a new password for this account";
    /// The account changed its own password, on another device.
    pub const BY_PASSWORD_CHANGE: &str = "the password was changed";

    /// `by_name` suspended the account, maybe saying why.
    pub fn by_suspension(by_name: &str, reason: Option<&str>) -> String {
        match reason.filter(|r| !r.is_empty()) {
            Some(reason) => format!("{by_name} suspended this account: {reason}"),
            None => format!("{by_name} suspended this account"),
        }
    }

    /// What a login, or a client coming back with a session the suspension ended, is told
    /// while the account is still suspended: "log in again" would not work.
    pub fn while_suspended(by_name: &str, reason: Option<&str>) -> String {
        match reason.filter(|r| !r.is_empty()) {
            Some(reason) => {
                format!("this account is suspended (by {by_name}: {reason}); ask a server admin")
            }
            None => format!("this account is suspended (by {by_name}); ask a server admin"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600 * 1000;
    const EXPIRY: Option<Duration> = Some(Duration::from_secs(30 * 24 * 3600));

    fn hash(n: u8) -> TokenHash {
        [n; 32]
    }

    #[test]
    fn a_resume_within_the_expiry_is_a_use_and_one_after_it_is_refused() {
        let tokens = SessionTokens::new([(hash(1), UserId(7), 0), (hash(2), UserId(8), 0)]);
        assert_eq!(
            tokens.resume(&hash(1), 30 * DAY, EXPIRY),
            TokenCheck::Live(UserId(7)),
            "exactly the expiry is still live"
        );
        // That resume counts as a use: 30 more days from there.
        assert_eq!(
            tokens.resume(&hash(1), 60 * DAY, EXPIRY),
            TokenCheck::Live(UserId(7))
        );
        assert_eq!(
            tokens.resume(&hash(2), 30 * DAY + 1, EXPIRY),
            TokenCheck::Expired
        );
        assert_eq!(
            tokens.resume(&hash(2), 30 * DAY + 1, EXPIRY),
            TokenCheck::Unknown,
            "an expired token is forgotten"
        );
        assert_eq!(tokens.resume(&hash(3), 0, EXPIRY), TokenCheck::Unknown);
        assert_eq!(tokens.resume(&[1, 2, 3], 0, EXPIRY), TokenCheck::Unknown);
    }

    #[test]
    fn without_an_expiry_a_token_lives_until_it_is_removed() {
        let tokens = SessionTokens::new([(hash(1), UserId(7), 0)]);
        assert_eq!(
            tokens.resume(&hash(1), u64::MAX, None),
            TokenCheck::Live(UserId(7))
        );
        let found = tokens.upkeep(&HashSet::new(), u64::MAX, None);
        assert!(found.expired.is_empty());
        tokens.remove(&hash(1));
        assert_eq!(tokens.resume(&hash(1), 0, None), TokenCheck::Unknown);
    }

    #[test]
    fn upkeep_keeps_held_tokens_alive_and_reports_each_use_once() {
        let tokens = SessionTokens::new([
            (hash(1), UserId(7), 0),
            (hash(2), UserId(7), 0),
            (hash(3), UserId(8), 20 * DAY),
        ]);
        tokens.touch(&hash(3), 25 * DAY);
        let live = HashSet::from([hash(1)]);
        let mut found = tokens.upkeep(&live, 40 * DAY, EXPIRY);
        found.used.sort();
        assert_eq!(
            found,
            Upkeep {
                used: vec![(hash(1), 40 * DAY), (hash(3), 25 * DAY)],
                expired: vec![hash(2)],
            }
        );
        // Nothing new to write; the held token is used again.
        let found = tokens.upkeep(&HashSet::new(), 41 * DAY, EXPIRY);
        assert_eq!(found, Upkeep::default());
        assert_eq!(
            tokens.resume(&hash(1), 70 * DAY, EXPIRY),
            TokenCheck::Live(UserId(7))
        );
        assert_eq!(
            tokens.resume(&hash(3), 56 * DAY, EXPIRY),
            TokenCheck::Expired
        );
    }

    #[test]
    fn removing_a_users_tokens_can_keep_one() {
        let tokens = SessionTokens::new([
            (hash(1), UserId(7), 0),
            (hash(2), UserId(7), 0),
            (hash(3), UserId(8), 0),
        ]);
        tokens.remove_user(UserId(7), Some(&hash(2)));
        assert_eq!(tokens.resume(&hash(1), 0, None), TokenCheck::Unknown);
        assert_eq!(
            tokens.resume(&hash(2), 0, None),
            TokenCheck::Live(UserId(7))
        );
        assert_eq!(
            tokens.resume(&hash(3), 0, None),
            TokenCheck::Live(UserId(8))
        );
    }

    #[test]
    fn expiries_are_described_in_their_largest_whole_unit() {
        let d = |s| describe(Duration::from_secs(s));
        assert_eq!(d(30 * 86_400), "30 days");
        assert_eq!(d(86_400), "1 day");
        assert_eq!(d(7200), "2 hours");
        assert_eq!(d(90), "90 seconds");
        assert_eq!(d(1), "1 second");
    }

    #[test]
    fn the_upkeep_period_is_a_quarter_of_the_expiry_within_bounds() {
        assert_eq!(upkeep_period(None), Duration::from_secs(3600));
        assert_eq!(upkeep_period(EXPIRY), Duration::from_secs(3600));
        assert_eq!(
            upkeep_period(Some(Duration::from_secs(2))),
            Duration::from_millis(500)
        );
        assert_eq!(
            upkeep_period(Some(Duration::from_millis(1))),
            Duration::from_millis(250)
        );
    }
}
