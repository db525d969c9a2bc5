//! `/user …`: what a server admin does to other accounts from the TUI, with the names of
//! `chatroom user …` in the shell: log out, suspend, unsuspend, list the suspended, promote,
//! demote, delete. `/user delete` asks first (as [`super::confirms`] asks): it cannot be undone.
//! `add` and `passwd`, which need a new password typed, stay shell commands.
//!
//! The server decides who may: anyone else is refused with its reason, shown as the error.
//! Answers show as notices in the room shown.

use chatroom_protocol::BanInfo;
use chatroom_protocol::client::{ClientError, ClientHandle};

use super::app::{Action, App};
use super::confirms::Confirming;

/// A `/user` sub-command for the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountAction {
    /// End every session of the account (`/user logout NAME`).
    LogOut(String),
    /// Log it out and refuse its logins until lifted (`/user suspend NAME [REASON]`).
    Suspend {
        /// Whose account.
        user: String,
        /// Why; they are told when they try to log in.
        reason: Option<String>,
    },
    /// Let it log in again (`/user unsuspend NAME`).
    Unsuspend(String),
    /// List the suspended accounts (`/user suspended`).
    Suspensions,
    /// Make it a server admin, or no longer one (`/user promote|demote NAME`).
    SetAdmin {
        /// Whose account.
        user: String,
        /// Promote (true) or demote.
        admin: bool,
    },
    /// Delete it for good (`/user delete NAME`, once confirmed).
    Delete(String),
}

/// What the server did for an [`AccountAction`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountDone {
    /// One line to show.
    Said(String),
    /// The suspended accounts, newest first.
    Suspensions(Vec<BanInfo>),
    /// `user` is (`admin`) or is not a server admin now.
    AdminSet {
        /// As typed.
        user: String,
        /// What it is now.
        admin: bool,
    },
}

/// Asks the server for `action`.
pub async fn perform(
    client: &ClientHandle,
    action: AccountAction,
) -> Result<AccountDone, ClientError> {
    let said = |line: String| Ok(AccountDone::Said(line));
    match action {
        AccountAction::LogOut(user) => {
            client.log_out_user(&user).await?;
            said(format!("{user} is logged out everywhere"))
        }
        AccountAction::Suspend { user, reason } => {
            client.suspend_user(&user, reason.as_deref()).await?;
            said(format!(
                "{user} is suspended: logged out everywhere, and refused at login until \
                 /user unsuspend {user}"
            ))
        }
        AccountAction::Unsuspend(user) => {
            client.unsuspend_user(&user).await?;
            said(format!("{user} may log in again"))
        }
        AccountAction::Suspensions => Ok(AccountDone::Suspensions(client.suspensions().await?)),
        AccountAction::SetAdmin { user, admin } => {
            client.set_server_admin(&user, admin).await?;
            Ok(AccountDone::AdminSet { user, admin })
        }
        AccountAction::Delete(user) => {
            client.delete_account(&user).await?;
            said(format!(
                "deleted {user}'s account: logged out and gone from every room; the messages stay"
            ))
        }
    }
}

/// How many promotions and demotions [`AdminEchoes`] remembers on each side.
const ECHOES_KEPT: usize = 8;

/// My `/user promote|demote` is told once. When the standing changes, everyone online hears
/// `AdminChanged` (me included), and the app says "you made bob a server admin"; when it was
/// so already, no event comes, and the answer says "bob is a server admin". The event and the
/// answer reach the app in either order, so whichever comes first remembers it told, for the
/// other to stay quiet.
#[derive(Clone, Debug, Default)]
pub struct AdminEchoes {
    /// Changes of mine an event told before their answer came.
    heard: Vec<(String, bool)>,
    /// Answers told before any event for them.
    answered: Vec<(String, bool)>,
}

fn take(list: &mut Vec<(String, bool)>, key: &(String, bool)) -> bool {
    let found = list.iter().position(|k| k == key);
    if let Some(i) = found {
        list.remove(i);
    }
    found.is_some()
}

fn keep(list: &mut Vec<(String, bool)>, key: (String, bool)) {
    if list.len() == ECHOES_KEPT {
        list.remove(0);
    }
    list.push(key);
}

impl AdminEchoes {
    /// An `AdminChanged` of mine (`by` me) arrived: whether to tell it (no answer told it).
    pub fn event_tells(&mut self, username: &str, admin: bool) -> bool {
        let key = (username.to_lowercase(), admin);
        if take(&mut self.answered, &key) {
            return false;
        }
        keep(&mut self.heard, key);
        true
    }

    /// The answer to my promotion or demotion arrived: whether to tell it (no event did).
    pub fn answer_tells(&mut self, username: &str, admin: bool) -> bool {
        let key = (username.to_lowercase(), admin);
        if take(&mut self.heard, &key) {
            return false;
        }
        keep(&mut self.answered, key);
        true
    }

    /// The connection dropped: an event still owed will not come.
    pub fn forget(&mut self) {
        self.heard.clear();
        self.answered.clear();
    }
}

/// The question `/user delete NAME` asks.
pub fn delete_question(user: &str) -> String {
    format!("delete {user}'s account? It cannot be undone · y deletes it · n cancels")
}

impl App {
    /// `/user …` typed: `/user delete` asks first; the rest go to the server.
    pub(super) fn account_command(&mut self, action: AccountAction) -> Vec<Action> {
        match action {
            AccountAction::Delete(user) => {
                self.ask(Confirming::DeleteAccount(user));
                Vec::new()
            }
            other => vec![Action::Account(other)],
        }
    }

    /// The server did a `/user …`: said in the room shown.
    pub fn account_done(&mut self, done: AccountDone) {
        match done {
            AccountDone::Said(line) => self.account_notice(line),
            AccountDone::Suspensions(list) if list.is_empty() => {
                self.account_notice("no account is suspended".to_string());
            }
            AccountDone::Suspensions(list) if self.current.is_none() => {
                // The status line keeps one line: the names, and where the rest shows.
                let names: Vec<&str> = list.iter().map(|s| s.username.as_str()).collect();
                self.flash(
                    format!(
                        "suspended: {} (open a room to see by whom and why)",
                        names.join(", ")
                    ),
                    false,
                );
            }
            AccountDone::Suspensions(list) => {
                for s in list {
                    let when = super::ui::when(self, s.since);
                    let line = match &s.reason {
                        Some(why) => {
                            format!("suspended: {}, by {} ({when}): {why}", s.username, s.by)
                        }
                        None => format!("suspended: {}, by {} ({when})", s.username, s.by),
                    };
                    self.account_notice(line);
                }
            }
            AccountDone::AdminSet { user, admin } => {
                if self.admin_echoes.answer_tells(&user, admin) {
                    self.account_notice(if admin {
                        format!("{user} is a server admin")
                    } else {
                        format!("{user} is not a server admin")
                    });
                }
            }
        }
    }

    /// A notice in the room shown, or in the status line when no room is.
    fn account_notice(&mut self, line: String) {
        if self.current.is_some() {
            self.notice(line);
        } else {
            self.flash(line, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::test_support::{app_as_me, key, public_room, run};
    use chatroom_protocol::{Event, RoomId, RoomRole, UserId};
    use ratatui::crossterm::event::KeyCode;

    /// Me (an admin, as far as the client cares: the server decides) in `public`.
    fn in_public() -> App {
        let mut app = app_as_me();
        app.rooms_loaded(vec![public_room(1, "public", 0, RoomRole::Member)]);
        app.enter_room(RoomId(1));
        app
    }

    fn notices(app: &App) -> Vec<String> {
        app.rooms[&RoomId(1)]
            .timeline
            .values()
            .filter_map(|e| match e {
                crate::tui::app::Entry::Notice { text, .. } => Some(text.clone()),
                crate::tui::app::Entry::Message(_) => None,
            })
            .collect()
    }

    /// `/user delete bob` asks, saying it cannot be undone; Esc cancels with nothing sent;
    /// `y` is what sends it, once, and a double Enter sends nothing.
    #[test]
    fn deleting_an_account_asks_first() {
        let mut app = in_public();
        assert_eq!(run(&mut app, "/user delete @bob"), [], "nothing before y");
        assert_eq!(app.input.text(), "", "the line is taken");
        assert_eq!(
            app.confirming,
            Some(Confirming::DeleteAccount("bob".into()))
        );
        assert!(delete_question("bob").contains("cannot be undone"));
        assert_eq!(key(&mut app, KeyCode::Esc), []);
        assert_eq!(app.confirming, None, "Esc");
        assert_eq!(
            app.flash,
            Some(("cancelled: nothing deleted".into(), false))
        );
        assert_eq!(key(&mut app, KeyCode::Enter), [], "nothing waits");

        run(&mut app, "/user delete bob");
        assert_eq!(key(&mut app, KeyCode::Enter), [], "Enter is a no");
        assert_eq!(app.confirming, None);

        run(&mut app, "/user delete bob");
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [Action::Account(AccountAction::Delete("bob".into()))]
        );
        assert_eq!(app.confirming, None, "done");

        run(&mut app, "/user delete bob");
        app.disconnected("connection lost".into(), 5_000);
        assert_eq!(key(&mut app, KeyCode::Char('y')), [], "offline");
        assert!(app.confirming.is_some(), "still waiting");
    }

    /// The other sub-commands go to the server at once; `add` and `passwd` point to the shell
    /// and stay in the input.
    #[test]
    fn the_other_user_commands_go_at_once() {
        let mut app = in_public();
        let account = |action| vec![Action::Account(action)];
        assert_eq!(
            run(&mut app, "/user suspend bob spam"),
            account(AccountAction::Suspend {
                user: "bob".into(),
                reason: Some("spam".into())
            })
        );
        assert_eq!(
            run(&mut app, "/user promote bob"),
            account(AccountAction::SetAdmin {
                user: "bob".into(),
                admin: true
            })
        );
        assert_eq!(
            run(&mut app, "/user suspended"),
            account(AccountAction::Suspensions)
        );
        assert_eq!(app.confirming, None, "nothing asked");
        assert_eq!(run(&mut app, "/user add carol"), []);
        assert_eq!(app.input.text(), "/user add carol");
        let (text, error) = app.flash.clone().unwrap_or_default();
        assert!(
            error && text.ends_with("in a shell: chatroom user add carol"),
            "{text}"
        );
    }

    /// The answers are notices in the room shown; the suspensions one per line.
    #[test]
    fn answers_show_in_the_room() {
        let mut app = in_public();
        app.account_done(AccountDone::Said("bob is logged out everywhere".into()));
        app.account_done(AccountDone::Suspensions(Vec::new()));
        let suspended = |name: &str, reason: Option<&str>| BanInfo {
            username: name.into(),
            by: "me".into(),
            since: 0,
            reason: reason.map(Into::into),
        };
        app.account_done(AccountDone::Suspensions(vec![
            suspended("carol", Some("spam")),
            suspended("dave", None),
        ]));
        assert_eq!(
            notices(&app),
            [
                "bob is logged out everywhere",
                "no account is suspended",
                "suspended: carol, by me (00:00): spam",
                "suspended: dave, by me (00:00)",
            ]
        );
    }

    /// With no room open, the suspended accounts are named in the status line, all of them
    /// on its one line rather than each replacing the one before.
    #[test]
    fn suspensions_with_no_room_open_fit_the_status_line() {
        let mut app = app_as_me();
        let suspended = |name: &str| BanInfo {
            username: name.into(),
            by: "me".into(),
            since: 0,
            reason: Some("spam".into()),
        };
        app.account_done(AccountDone::Suspensions(vec![
            suspended("carol"),
            suspended("dave"),
        ]));
        assert_eq!(
            app.flash,
            Some((
                "suspended: carol, dave (open a room to see by whom and why)".into(),
                false
            ))
        );
    }

    fn changed(username: &str, admin: bool, by: &str) -> Event {
        Event::AdminChanged {
            user: UserId(2),
            username: username.into(),
            admin,
            by: by.into(),
        }
    }

    fn set(user: &str, admin: bool) -> AccountDone {
        AccountDone::AdminSet {
            user: user.into(),
            admin,
        }
    }

    /// My promotion is told once, whether its event or its answer comes first; with no event
    /// (bob was one already) the answer tells it. Another admin's is told as it comes.
    #[test]
    fn a_promotion_of_mine_is_told_once_in_either_order() {
        let mut app = in_public();
        app.on_event(changed("bob", true, "me"));
        app.account_done(set("bob", true));
        assert_eq!(
            notices(&app),
            ["you made bob a server admin"],
            "event first"
        );

        let mut app = in_public();
        app.account_done(set("Bob", false));
        app.on_event(changed("bob", false, "me"));
        assert_eq!(notices(&app), ["Bob is not a server admin"], "answer first");

        let mut app = in_public();
        app.account_done(set("bob", true));
        app.account_done(set("bob", true));
        assert_eq!(
            notices(&app),
            ["bob is a server admin", "bob is a server admin"],
            "no event: each answer tells"
        );

        let mut app = in_public();
        app.account_done(set("bob", true));
        app.on_event(changed("bob", true, "alice"));
        app.on_event(changed("bob", false, "me"));
        app.account_done(set("bob", false));
        assert_eq!(
            notices(&app),
            [
                "bob is a server admin",
                "alice made bob a server admin",
                "you took away bob's server admin role",
            ]
        );
    }

    /// Tab after `/user` completes the sub-command, then the user (no rooms).
    #[test]
    fn tab_completes_the_sub_command_then_the_user() {
        let mut app = in_public();
        app.rooms_loaded(vec![
            public_room(1, "public", 0, RoomRole::Member),
            public_room(2, "bobs-room", 0, RoomRole::Member),
        ]);
        app.on_event(Event::Presence(vec![chatroom_protocol::PresenceUpdate {
            user: UserId(2),
            username: "bob".into(),
            status: chatroom_protocol::PresenceStatus::Online,
            status_message: None,
        }]));
        app.input.set_text("/user pro");
        app.complete();
        assert_eq!(app.input.text(), "/user promote ");
        app.end_completion();
        app.input.set_text("/user promote bo");
        app.complete();
        app.complete();
        assert_eq!(
            app.input.text(),
            "/user promote bob ",
            "bob only: no #bobs-room to cycle to"
        );
    }
}
