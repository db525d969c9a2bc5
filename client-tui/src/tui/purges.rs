//! `/purge USER [TIME]` and `chatroom purge`: a room's owner or moderator deletes everything
//! USER posted there lately, in as many requests as it takes, and hears one line about it.
//!
//! In the TUI, `/purge` asks first ([`Purging`], as [`super::confirms`] asks): a typo in the
//! name or the time would erase history for good, so the question says whose messages, in
//! which room and how far back, and `y` is what sends it. `chatroom purge`
//! is for scripts and does not ask.
//!
//! The server deletes at most [`MAX_DELETED_AT_ONCE`] messages a request, the newest first;
//! "purge" means all of the window, so [`purge`] asks again while a request took that many, up
//! to [`PURGE_ROUNDS`] requests (a spam run longer than that is said to have more left).

use chatroom_protocol::client::{ClientError, ClientHandle};
use chatroom_protocol::{MAX_DELETED_AT_ONCE, RoomId, duration_words};
use std::time::Duration;

use super::app::{Action, App};
use super::confirms::Confirming;

/// How far back a purge reaches when no time is given: an hour.
pub const DEFAULT_PURGE_SECS: u64 = 3600;

/// The most requests one purge makes (10 000 messages at 500 a request): a bound, not a goal.
pub const PURGE_ROUNDS: u32 = 20;

/// A `/purge` waiting for Enter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purging {
    /// Where (the room I was in).
    pub room: RoomId,
    /// Whose messages, as typed.
    pub user: String,
    /// How far back, in seconds.
    pub secs: u64,
}

impl Purging {
    /// What goes, for the question: `everything bob posted in #dev over the last 1 day`. No
    /// count: the messages loaded here need not be all of them, and more may come meanwhile.
    pub fn what(&self, room_label: &str) -> String {
        format!(
            "everything {} posted in {room_label} over the last {}",
            self.user,
            duration_words(self.secs)
        )
    }

    /// What Enter sends.
    pub(super) fn action(self) -> Action {
        Action::Purge {
            room: self.room,
            user: self.user,
            secs: self.secs,
        }
    }
}

impl App {
    /// `/purge USER [TIME]` in `room`: asks before anything goes.
    pub(super) fn ask_to_purge(&mut self, room: RoomId, user: String, secs: u64) {
        self.ask(Confirming::Purge(Purging { room, user, secs }));
    }
}

/// What a purge did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Purged {
    /// How many messages went.
    pub deleted: u64,
    /// The last request still took all it could after [`PURGE_ROUNDS`] of them: there may be
    /// more in the window.
    pub more_left: bool,
}

/// A purge the server stopped, maybe after some requests went through.
#[derive(Debug)]
pub struct PurgeFailed {
    /// How many messages went before the refusal.
    pub deleted: u64,
    /// Why it stopped.
    pub error: ClientError,
}

/// Deletes what `user` posted in `room` over the last `secs` seconds: request after request
/// while each takes [`MAX_DELETED_AT_ONCE`], at most [`PURGE_ROUNDS`].
pub async fn purge(
    client: &ClientHandle,
    room: RoomId,
    user: &str,
    secs: u64,
) -> Result<Purged, PurgeFailed> {
    let within = Duration::from_secs(secs);
    let mut deleted = 0;
    for _ in 0..PURGE_ROUNDS {
        let count = client
            .delete_messages_by(room, user, within)
            .await
            .map_err(|error| PurgeFailed { deleted, error })?;
        deleted += u64::from(count);
        if count < MAX_DELETED_AT_ONCE {
            return Ok(Purged {
                deleted,
                more_left: false,
            });
        }
    }
    Ok(Purged {
        deleted,
        more_left: true,
    })
}

/// ` in #dev from the last 1 h` (` in #dev` when `room` is given): where and how far back a
/// purge reached, to follow whose messages it was about.
fn where_and_when(room: Option<&str>, secs: u64) -> String {
    let room = room.map(|label| format!(" in {label}")).unwrap_or_default();
    format!("{room} from the last {}", duration_words(secs))
}

/// `12 messages`, `1 message`.
fn messages(count: u64) -> String {
    match count {
        1 => "1 message".to_string(),
        n => format!("{n} messages"),
    }
}

impl Purged {
    /// The one line that says what went: `deleted 12 messages of bob's from the last 1 h`, or
    /// `nothing of bob's to delete from the last 1 h`; `room`, when given, is named before how
    /// far back (`… in #dev from the last 1 h`).
    pub fn line(&self, user: &str, room: Option<&str>, secs: u64) -> String {
        let reach = where_and_when(room, secs);
        if self.deleted == 0 {
            return format!("nothing of {user}'s to delete{reach}");
        }
        let line = format!("deleted {} of {user}'s{reach}", messages(self.deleted));
        if self.more_left {
            format!("{line}; there may be more: purge again")
        } else {
            line
        }
    }
}

impl PurgeFailed {
    /// What went before the refusal, as a prefix for its reason: `None` when nothing did (the
    /// refusal is all there is to say), else `deleted 500 messages of bob's from the last 1 h,
    /// then stopped`.
    pub fn partly_done(&self, user: &str, room: Option<&str>, secs: u64) -> Option<String> {
        (self.deleted > 0).then(|| {
            format!(
                "deleted {} of {user}'s{}, then stopped",
                messages(self.deleted),
                where_and_when(room, secs)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::test_support::{app_as_me, key, public_room, run};
    use chatroom_protocol::{ErrorBody, ErrorCode, RoomRole};
    use ratatui::crossterm::event::KeyCode;

    /// In `dev` as a moderator, with `public` (where I am a member) to switch to.
    fn moderator_in_dev() -> App {
        let mut app = app_as_me();
        app.rooms_loaded(vec![
            public_room(1, "public", 0, RoomRole::Member),
            public_room(2, "dev", 0, RoomRole::Moderator),
        ]);
        app.enter_room(RoomId(2));
        app
    }

    fn purge(user: &str, secs: u64) -> Action {
        Action::Purge {
            room: RoomId(2),
            user: user.into(),
            secs,
        }
    }

    /// `/purge` asks first about the room I am in, an hour back unless told; `y` is what
    /// purges, once, and Enter is a no.
    #[test]
    fn purge_asks_first_and_y_sends_it() {
        let mut app = moderator_in_dev();
        assert_eq!(run(&mut app, "/purge @bob"), [], "nothing before y");
        assert_eq!(app.input.text(), "", "the line is taken");
        assert_eq!(
            app.confirming,
            Some(Confirming::Purge(Purging {
                room: RoomId(2),
                user: "bob".into(),
                secs: 3600
            }))
        );
        assert_eq!(key(&mut app, KeyCode::Char('y')), [purge("bob", 3600)]);
        assert_eq!(app.confirming, None, "done");

        run(&mut app, "/purge bob 2h");
        assert_eq!(key(&mut app, KeyCode::Enter), [], "Enter is a no");
        assert_eq!(app.confirming, None);
        run(&mut app, "/purge bob 2h");
        assert_eq!(key(&mut app, KeyCode::Char('y')), [purge("bob", 7200)]);
    }

    /// Esc declines: nothing is sent and the status line says so. A line sent instead goes
    /// as it is, and entering another room drops the question, which was about this one.
    #[test]
    fn esc_a_typed_line_or_another_room_purges_nothing() {
        let mut app = moderator_in_dev();
        run(&mut app, "/purge bob 1d");
        assert_eq!(key(&mut app, KeyCode::Esc), []);
        assert_eq!(app.confirming, None, "Esc");
        assert_eq!(
            app.flash,
            Some(("cancelled: nothing deleted".into(), false))
        );
        assert_eq!(key(&mut app, KeyCode::Enter), [], "nothing waits");

        run(&mut app, "/purge bob 1d");
        assert_eq!(
            run(&mut app, "oops, not bob"),
            [Action::Send {
                room: RoomId(2),
                text: "oops, not bob".into()
            }],
            "a line typed instead is sent as it is"
        );
        assert_eq!(app.confirming, None);

        run(&mut app, "/purge bob 1d");
        app.enter_room(RoomId(1));
        assert_eq!(app.confirming, None, "another room");
        assert_eq!(key(&mut app, KeyCode::Enter), []);
    }

    /// A mistyped time asks nothing and stays to be corrected, and so does the whole line while
    /// offline; a question asked before the connection went waits for it.
    #[test]
    fn purge_keeps_a_line_it_cannot_send_and_waits_offline() {
        let mut app = moderator_in_dev();
        assert_eq!(run(&mut app, "/purge bob 2y"), []);
        assert_eq!(app.confirming, None);
        assert_eq!(app.input.text(), "/purge bob 2y");
        let (text, error) = app.flash.clone().unwrap_or_default();
        assert!(
            error && text.starts_with("2y: expected a duration like 90s"),
            "{text}"
        );

        run(&mut app, "/purge bob");
        app.disconnected("connection lost".into(), 5_000);
        assert_eq!(key(&mut app, KeyCode::Char('y')), [], "offline");
        assert!(app.confirming.is_some(), "still waiting");
        assert_eq!(run(&mut app, "/purge carol"), []);
        assert_eq!(app.input.text(), "/purge carol", "kept for the reconnect");
        assert_eq!(app.confirming, None, "a line typed instead drops it");
    }

    #[test]
    fn the_question_says_whose_where_and_how_far_back() {
        let purging = |secs| Purging {
            room: RoomId(2),
            user: "bob".into(),
            secs,
        };
        assert_eq!(
            purging(86_400).what("#dev"),
            "everything bob posted in #dev over the last 1 day"
        );
        assert_eq!(
            purging(3600).what("#dev"),
            "everything bob posted in #dev over the last 1 h"
        );
    }

    #[test]
    fn the_line_says_how_many_whose_and_how_far_back() {
        let done = |deleted, more_left| Purged { deleted, more_left };
        assert_eq!(
            done(12, false).line("bob", None, 3600),
            "deleted 12 messages of bob's from the last 1 h"
        );
        assert_eq!(
            done(1, false).line("bob", Some("#dev"), 90),
            "deleted 1 message of bob's in #dev from the last 1 min 30 s"
        );
        assert_eq!(
            done(0, false).line("bob", None, 600),
            "nothing of bob's to delete from the last 10 min"
        );
        assert_eq!(
            done(0, false).line("bob", Some("#dev"), 3600),
            "nothing of bob's to delete in #dev from the last 1 h"
        );
        assert_eq!(
            done(10_000, true).line("bob", Some("#dev"), 86_400),
            "deleted 10000 messages of bob's in #dev from the last 1 day; there may be more: \
             purge again"
        );
        let failed = |deleted| PurgeFailed {
            deleted,
            error: ClientError::Server(ErrorBody {
                code: ErrorCode::Forbidden,
                message: "no".into(),
            }),
        };
        assert_eq!(failed(0).partly_done("bob", None, 3600), None);
        assert_eq!(
            failed(500)
                .partly_done("bob", Some("#dev"), 3600)
                .as_deref(),
            Some("deleted 500 messages of bob's in #dev from the last 1 h, then stopped")
        );
    }
}
