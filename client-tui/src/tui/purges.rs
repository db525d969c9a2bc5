//! `/purge USER [TIME]` and `chatroom purge`: a room's owner or moderator deletes everything
//! USER posted there lately, in as many requests as it takes, and hears one line about it.
//!
//! The server deletes at most [`MAX_DELETED_AT_ONCE`] messages a request, the newest first;
//! "purge" means all of the window, so [`purge`] asks again while a request took that many, up
//! to [`PURGE_ROUNDS`] requests (a spam run longer than that is said to have more left).

use chatroom_protocol::client::{ClientError, ClientHandle};
use chatroom_protocol::{MAX_DELETED_AT_ONCE, RoomId, duration_words};
use std::time::Duration;

/// How far back a purge reaches when no time is given: an hour.
pub const DEFAULT_PURGE_SECS: u64 = 3600;

/// The most requests one purge makes (10 000 messages at 500 a request): a bound, not a goal.
pub const PURGE_ROUNDS: u32 = 20;

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
    use crate::tui::app::Action;
    use crate::tui::test_support::{app_as_me, public_room};
    use chatroom_protocol::{ErrorBody, ErrorCode, RoomRole};

    fn run(app: &mut crate::tui::app::App, line: &str) -> Vec<Action> {
        app.input.set_text(line);
        app.submit_input()
    }

    /// `/purge` acts on the room I am in, an hour back unless told; a mistyped time sends
    /// nothing and stays to be corrected, and so does the whole line while offline.
    #[test]
    fn purge_acts_on_the_current_room_and_keeps_a_line_it_cannot_send() {
        let mut app = app_as_me();
        app.rooms_loaded(vec![
            public_room(1, "public", 0, RoomRole::Member),
            public_room(2, "dev", 0, RoomRole::Moderator),
        ]);
        app.enter_room(RoomId(2));
        let purge = |user: &str, secs| Action::Purge {
            room: RoomId(2),
            user: user.into(),
            secs,
        };
        assert_eq!(run(&mut app, "/purge @bob"), [purge("bob", 3600)]);
        assert_eq!(run(&mut app, "/purge bob 2h"), [purge("bob", 7200)]);
        assert_eq!(app.input.text(), "", "sent: the input is cleared");

        assert_eq!(run(&mut app, "/purge bob 2y"), []);
        assert_eq!(app.input.text(), "/purge bob 2y");
        let (text, error) = app.flash.clone().unwrap_or_default();
        assert!(
            error && text.starts_with("2y: expected a duration like 90s"),
            "{text}"
        );

        app.disconnected("connection lost".into(), 5_000);
        assert_eq!(run(&mut app, "/purge bob"), []);
        assert_eq!(app.input.text(), "/purge bob", "kept for the reconnect");
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
