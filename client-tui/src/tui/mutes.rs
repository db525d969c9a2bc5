//! `/mute`, `/unmute`, `/mutes`: a room's moderators keep a member from posting there; what the
//! room (and the member) see when it happens.

use chatroom_protocol::{MuteInfo, RoomId, UnixMillis, UserId};

use super::app::App;
use super::ui::when;

impl App {
    /// `Event::Muted`: the member list marks them; a flash when it is me (the room's notice
    /// comes as a message).
    pub fn muted(
        &mut self,
        room: RoomId,
        user: UserId,
        username: String,
        by: &str,
        reason: Option<&str>,
        until: Option<UnixMillis>,
    ) {
        let me = self.me.as_ref().is_some_and(|me| me.id == user);
        let how_long = match until {
            Some(t) => format!("until {}", when(self, t)),
            None => "until unmuted".to_string(),
        };
        let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        r.muted.insert(username, until);
        let label = r.label();
        if me {
            self.flash(format!("{by} muted you in {label} {how_long}{why}"), true);
        }
    }

    /// `Event::Unmuted`: the member list no longer marks them; a flash when it is me.
    pub fn unmuted(&mut self, room: RoomId, user: UserId, username: &str, by: &str) {
        let me = self.me.as_ref().is_some_and(|me| me.id == user);
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        r.muted.remove(username);
        let label = r.label();
        if me {
            self.flash(format!("{by} unmuted you in {label}"), false);
        }
    }

    /// A room's mutes as they are now (with its member list, or from `/mutes`).
    pub fn mutes_known(&mut self, room: RoomId, mutes: &[MuteInfo]) {
        if let Some(r) = self.rooms.get_mut(&room) {
            r.muted = mutes
                .iter()
                .map(|m| (m.username.clone(), m.until))
                .collect();
        }
    }

    /// Whether `username` is muted in `room` at this moment (a mute that ran out sends no
    /// event: it ends here when its time has passed).
    pub fn is_muted(&self, room: RoomId, username: &str) -> bool {
        self.rooms
            .get(&room)
            .and_then(|r| r.muted.get(username))
            .is_some_and(|until| until.is_none_or(|t| t > self.now))
    }

    /// A room's mutes, from `/mutes`: one notice per mute (newest first, as the server sends
    /// them), or a notice that there are none.
    pub fn mutes_loaded(&mut self, room: RoomId, mutes: Vec<MuteInfo>) {
        self.mutes_known(room, &mutes);
        let lines: Vec<String> = mutes
            .iter()
            .map(|m| {
                let until = match m.until {
                    Some(t) => format!("until {}", when(self, t)),
                    None => "until unmuted".to_string(),
                };
                let why = m
                    .reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                format!(
                    "muted: {}, by {} ({}) {until}{why}",
                    m.username,
                    m.by,
                    when(self, m.since)
                )
            })
            .collect();
        self.notices_in(room, lines, |label| format!("no one is muted in {label}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::{Action, Entry};
    use crate::tui::test_support::run;
    use chatroom_protocol::{Event, RoomKind, RoomRole, RoomSummary, UserSummary};

    /// Now: 2023-11-14 22:13:20 UTC.
    const NOW: UnixMillis = 1_700_000_000_000;

    fn app_in_dev() -> App {
        let mut app = App::new("h:1", None);
        app.logged_in(UserSummary {
            id: UserId(1),
            username: "me".into(),
            is_admin: false,
        });
        let room = |id: u64, name: &str| RoomSummary {
            id: RoomId(id),
            kind: RoomKind::Public,
            name: name.into(),
            topic: String::new(),
            member_count: 3,
            latest_seq: 0,
            last_read_seq: 0,
            unread: 0,
            mentions: 0,
            my_role: Some(RoomRole::Moderator),
        };
        app.rooms_loaded(vec![room(1, "public"), room(2, "dev")]);
        app.enter_room(RoomId(2));
        app.tick(NOW);
        app
    }

    fn notices(app: &App, room: u64) -> Vec<String> {
        app.rooms[&RoomId(room)]
            .timeline
            .values()
            .filter_map(|e| match e {
                Entry::Notice { text, .. } => Some(text.clone()),
                Entry::Message(_) => None,
            })
            .collect()
    }

    #[test]
    fn mute_commands_act_on_the_current_room() {
        let mut app = app_in_dev();
        assert_eq!(
            run(&mut app, "/mute bob 10m flooding"),
            [Action::Mute {
                room: RoomId(2),
                user: "bob".into(),
                secs: Some(600),
                reason: Some("flooding".into())
            }]
        );
        assert_eq!(
            run(&mut app, "/unmute bob"),
            [Action::Unmute {
                room: RoomId(2),
                user: "bob".into()
            }]
        );
        assert_eq!(run(&mut app, "/mutes"), [Action::Mutes(RoomId(2))]);
        assert_eq!(run(&mut app, "/unmute"), [], "a usage error sends nothing");
    }

    /// `/mute bob 5y` is a mistyped time, not a mute until unmuted with the reason "5y": it is
    /// refused here, saying what a time looks like, and the line stays to be corrected.
    #[test]
    fn a_time_that_is_no_duration_is_refused_and_the_line_kept() {
        let mut app = app_in_dev();
        for line in ["/mute bob 5y", "/mute bob -5m too loud", "/mute bob 30sec"] {
            assert_eq!(run(&mut app, line), [], "{line} sends nothing");
            assert_eq!(app.input.text(), line);
            let (text, error) = app.flash.clone().unwrap_or_default();
            assert!(
                error && text.contains("expected a duration like 90s, 10m"),
                "{text}"
            );
            app.input.set_text("");
        }
    }

    #[test]
    fn the_member_is_told_of_their_mute_and_its_end() {
        let mut app = app_in_dev();
        app.on_event(Event::Muted {
            room: RoomId(2),
            user: UserId(3),
            username: "bob".into(),
            by: "alice".into(),
            reason: Some("flooding".into()),
            until: Some(NOW + 600_000),
        });
        assert_eq!(app.flash, None, "someone else's mute is the room's notice");
        app.on_event(Event::Muted {
            room: RoomId(2),
            user: UserId(1),
            username: "me".into(),
            by: "alice".into(),
            reason: None,
            until: None,
        });
        assert_eq!(
            app.flash,
            Some(("alice muted you in #dev until unmuted".into(), true))
        );
        app.on_event(Event::Unmuted {
            room: RoomId(2),
            user: UserId(1),
            username: "me".into(),
            by: "alice".into(),
        });
        assert_eq!(app.flash, Some(("alice unmuted you in #dev".into(), false)));
        // The room hears of it from the server's notice, a message: no notice of our own.
        assert!(notices(&app, 2).is_empty(), "{:?}", notices(&app, 2));
    }

    #[test]
    fn who_is_muted_is_kept_from_the_list_and_the_events_until_the_time_is_up() {
        let mut app = app_in_dev();
        let mute = |username: &str, until| MuteInfo {
            username: username.into(),
            by: "alice".into(),
            reason: None,
            since: NOW - 1_000,
            until,
        };
        app.mutes_known(RoomId(2), &[mute("bob", Some(NOW + 60_000))]);
        assert!(app.is_muted(RoomId(2), "bob"));
        assert!(!app.is_muted(RoomId(1), "bob"), "only in its room");
        app.on_event(Event::Muted {
            room: RoomId(2),
            user: UserId(4),
            username: "carol".into(),
            by: "alice".into(),
            reason: None,
            until: None,
        });
        assert!(app.is_muted(RoomId(2), "carol"));
        app.on_event(Event::Unmuted {
            room: RoomId(2),
            user: UserId(4),
            username: "carol".into(),
            by: "alice".into(),
        });
        assert!(!app.is_muted(RoomId(2), "carol"));
        // No event comes when a mute runs out.
        app.tick(NOW + 60_000);
        assert!(!app.is_muted(RoomId(2), "bob"));
        // `/mutes` answers with the room's mutes as they are.
        app.mutes_loaded(RoomId(2), vec![mute("dave", None)]);
        assert!(
            app.is_muted(RoomId(2), "dave") && !app.rooms[&RoomId(2)].muted.contains_key("bob")
        );
    }

    #[test]
    fn mutes_are_listed_in_the_room_asked_about() {
        let mut app = app_in_dev();
        app.enter_room(RoomId(1));
        app.mutes_loaded(
            RoomId(2),
            vec![
                MuteInfo {
                    username: "bob".into(),
                    by: "alice".into(),
                    reason: Some("flooding".into()),
                    since: NOW - 60_000,
                    until: Some(NOW + 2 * 86_400_000),
                },
                MuteInfo {
                    username: "carol".into(),
                    by: "me".into(),
                    reason: None,
                    since: NOW - 120_000,
                    until: None,
                },
            ],
        );
        assert_eq!(
            notices(&app, 2),
            [
                "muted: bob, by alice (22:12) until Nov 16 22:13: flooding",
                "muted: carol, by me (22:11) until unmuted",
            ]
        );
        app.mutes_loaded(RoomId(2), Vec::new());
        assert_eq!(
            notices(&app, 2).last().map(String::as_str),
            Some("no one is muted in #dev")
        );
        app.mutes_loaded(RoomId(9), Vec::new());
    }
}
