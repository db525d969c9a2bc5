//! Session tokens in memory, and their expiry.
//!
//! A login stores the SHA-256 of a random token (`sessions` table) and the hub keeps the same
//! set here, so a resume needs no database read. Each token remembers when it was last used:
//! created, resumed, or held by a connection. A token unused for longer than
//! `limits.session_expiry_secs` no longer resumes (the user logs in again with the password) and
//! its row is deleted. A stolen or forgotten token therefore stops working on its own.
//!
//! An account keeps at most `limits.max_sessions_per_account` sessions, so that a client that
//! logs in again and again without logging out (a bot restarted in a loop) cannot pile up rows
//! and tokens. A login that would go over ends the least recently used sessions beyond it, in
//! the same transaction that stores the new one; `upkeep` does the same for every account (at
//! start-up: a lowered limit, or rows from before the limit). A session held by a connection is
//! never ended for this: if every session is connected, the account has more than the limit,
//! all of them connected. An ended session is remembered ([`ended::beyond_cap`]), so its client
//! hears why when it comes back.
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
    /// Tokens of accounts over the session limit, the least recently used ones beyond it,
    /// already forgotten in memory; to be ended with [`ended::beyond_cap`].
    pub beyond_cap: Vec<TokenHash>,
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

    /// The sessions of `user` to end so that, with the new one a login is about to store (held
    /// by the login's connection), it keeps at most `cap`: the least recently used first, never
    /// one `held` (held by a connection: asked only when the account is at the limit, and not
    /// under this map's lock, which the hub takes under its own). Forgotten here only once the
    /// ending is committed.
    pub fn making_room(
        &self,
        user: UserId,
        cap: usize,
        held: impl FnOnce() -> HashSet<TokenHash>,
    ) -> Vec<TokenHash> {
        let mine: Vec<_> = self
            .map()
            .iter()
            .filter(|(_, entry)| entry.user == user)
            .map(|(hash, entry)| (entry.last_used, *hash))
            .collect();
        if mine.len() < cap {
            return Vec::new();
        }
        least_used_beyond(mine, &held(), cap.saturating_sub(1))
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
    /// tokens past `expiry` and those beyond `cap` per account (see [`Self::making_room`]), and
    /// returns what the database needs to learn.
    pub fn upkeep(
        &self,
        live: &HashSet<TokenHash>,
        now: UnixMillis,
        expiry: Option<Duration>,
        cap: usize,
    ) -> Upkeep {
        let mut found = Upkeep::default();
        let mut map = self.map();
        map.retain(|hash, entry| {
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
        let mut counts: HashMap<UserId, usize> = HashMap::new();
        for entry in map.values() {
            *counts.entry(entry.user).or_default() += 1;
        }
        let mut over: HashMap<UserId, Vec<(UnixMillis, TokenHash)>> = counts
            .into_iter()
            .filter(|&(_, count)| count > cap)
            .map(|(user, _)| (user, Vec::new()))
            .collect();
        if over.is_empty() {
            return found;
        }
        for (hash, entry) in map.iter() {
            if let Some(mine) = over.get_mut(&entry.user) {
                mine.push((entry.last_used, *hash));
            }
        }
        for (_, mine) in over {
            found.beyond_cap.extend(least_used_beyond(mine, live, cap));
        }
        for hash in &found.beyond_cap {
            map.remove(hash);
        }
        let ended: HashSet<&TokenHash> = found.beyond_cap.iter().collect();
        found.used.retain(|(hash, _)| !ended.contains(hash));
        found
    }
}

/// Of one account's sessions (`mine`: last use and token), those beyond the `room` most
/// recently used ones, never one in `held`: a held session counts against `room` but is kept
/// even when the held ones alone fill it.
fn least_used_beyond(
    mine: Vec<(UnixMillis, TokenHash)>,
    held: &HashSet<TokenHash>,
    room: usize,
) -> Vec<TokenHash> {
    let (held_here, mut free): (Vec<_>, Vec<_>) =
        mine.into_iter().partition(|(_, hash)| held.contains(hash));
    let room = room.saturating_sub(held_here.len());
    if free.len() <= room {
        return Vec::new();
    }
    // Most recently used first; the token breaks ties, so the choice does not depend on the
    // map's order.
    free.sort_unstable_by(|a, b| b.cmp(a));
    free.drain(room..).map(|(_, hash)| hash).collect()
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
    let (expiry, cap) = (
        shared.config.limits.session_expiry(),
        shared.config.limits.session_cap(),
    );
    let Upkeep {
        used,
        expired,
        beyond_cap,
    } = shared
        .hub
        .sessions()
        .upkeep(&live, now_millis(), expiry, cap);
    if !expired.is_empty() {
        tracing::info!(count = expired.len(), "expiring unused sessions");
    }
    if !beyond_cap.is_empty() {
        tracing::info!(
            count = beyond_cap.len(),
            cap,
            "ending the least recently used sessions of accounts over the session limit"
        );
    }
    let why = ended::beyond_cap(cap);
    let beyond_cap = beyond_cap
        .chunks(UPKEEP_ROWS_PER_WRITE)
        .map(|chunk| WriteOp::EndSessions {
            tokens: chunk.to_vec(),
            why: why.clone(),
        });
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
    for op in expired.chain(beyond_cap).chain(used) {
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

    /// The account went over `limits.max_sessions_per_account` (`cap`) and this session was
    /// among the least recently used.
    pub fn beyond_cap(cap: usize) -> String {
        let plural = if cap == 1 { "" } else { "s" };
        format!(
            "the account had more than {cap} session{plural} (logins not logged out) and this \
             one was the least recently used"
        )
    }

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
    const NO_CAP: usize = usize::MAX;

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
        let found = tokens.upkeep(&HashSet::new(), u64::MAX, None, NO_CAP);
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
        let mut found = tokens.upkeep(&live, 40 * DAY, EXPIRY, NO_CAP);
        found.used.sort();
        assert_eq!(
            found,
            Upkeep {
                used: vec![(hash(1), 40 * DAY), (hash(3), 25 * DAY)],
                expired: vec![hash(2)],
                beyond_cap: Vec::new(),
            }
        );
        // Nothing new to write; the held token is used again.
        let found = tokens.upkeep(&HashSet::new(), 41 * DAY, EXPIRY, NO_CAP);
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
    fn a_login_makes_room_by_ending_the_least_recently_used_unheld_sessions() {
        let tokens = SessionTokens::new([
            (hash(1), UserId(7), 10),
            (hash(2), UserId(7), 40),
            (hash(3), UserId(7), 20),
            (hash(4), UserId(7), 30),
            (hash(5), UserId(8), 0),
        ]);
        let none = HashSet::new();
        // Room for the new one among 3: the two most recent stay.
        let mut ending = tokens.making_room(UserId(7), 3, || none.clone());
        ending.sort();
        assert_eq!(ending, vec![hash(1), hash(3)]);
        assert!(
            tokens
                .making_room(UserId(7), 5, || unreachable!("under the cap"))
                .is_empty()
        );
        assert_eq!(
            tokens.making_room(UserId(8), 1, || none.clone()),
            vec![hash(5)],
            "a cap of 1 leaves room for the new one only"
        );

        // The oldest is held by a connection: it stays and counts, the next oldest goes.
        let held = HashSet::from([hash(1)]);
        let mut ending = tokens.making_room(UserId(7), 3, || held.clone());
        ending.sort();
        assert_eq!(ending, vec![hash(3), hash(4)]);

        // All held: none ends, even though the account goes over.
        let all = HashSet::from([hash(1), hash(2), hash(3), hash(4)]);
        assert!(tokens.making_room(UserId(7), 2, || all.clone()).is_empty());
        assert_eq!(
            tokens.resume(&hash(1), 50, None),
            TokenCheck::Live(UserId(7)),
            "nothing is forgotten before the ending is committed"
        );
    }

    #[test]
    fn upkeep_ends_the_least_recently_used_sessions_beyond_the_cap_but_no_held_one() {
        let tokens = SessionTokens::new([
            (hash(1), UserId(7), 10),
            (hash(2), UserId(7), 40),
            (hash(3), UserId(7), 20),
            (hash(4), UserId(7), 30),
            (hash(5), UserId(8), 0),
            (hash(6), UserId(8), 0),
        ]);
        tokens.touch(&hash(3), 35);
        let held = HashSet::from([hash(1)]);
        let mut found = tokens.upkeep(&held, 50, None, 2);
        found.beyond_cap.sort();
        found.used.sort();
        assert_eq!(
            found,
            Upkeep {
                used: vec![(hash(1), 50)],
                expired: Vec::new(),
                beyond_cap: vec![hash(3), hash(4)],
            },
            "the held one and the most recent stay; an ended one's use is not written"
        );
        assert_eq!(tokens.resume(&hash(4), 50, None), TokenCheck::Unknown);
        assert_eq!(
            tokens.resume(&hash(2), 50, None),
            TokenCheck::Live(UserId(7))
        );
        assert_eq!(
            tokens.upkeep(&HashSet::new(), 60, None, 2).beyond_cap,
            Vec::<TokenHash>::new(),
            "within the cap now"
        );
    }

    #[test]
    fn the_cap_reason_counts_its_sessions() {
        assert!(ended::beyond_cap(1).contains("more than 1 session ("));
        assert!(ended::beyond_cap(100).contains("more than 100 sessions"));
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
