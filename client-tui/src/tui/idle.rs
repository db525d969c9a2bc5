//! Away by itself: after some minutes without a key, a paste or a mouse event, the server is
//! told this connection is idle (`Request::SetIdle`), and the account shows away once all its
//! connections are; the next input says it is in use again. A new connection starts in use,
//! so after a reconnect the next tick tells the server again if the user is still away from
//! the keyboard. A server too old to know the request closes the connection on it: then this
//! run of the client stops asking ([`Idleness::unsupported`]), rather than lose the
//! connection every time it reconnects.

use chatroom_protocol::UnixMillis;

use super::app::{Action, App, ConnectionState};

/// What the client knows of its user's absence.
#[derive(Clone, Debug, Default)]
pub struct Idleness {
    /// After how long without input the connection counts as idle (`None`: never).
    pub after_ms: Option<u64>,
    /// The last key, paste or mouse event.
    last_input: UnixMillis,
    /// The server was told this connection is idle.
    told: bool,
    /// The server does not know the request: never send it again in this run.
    unsupported: bool,
}

impl Idleness {
    /// Idle after `minutes` without input, counted from `since` (the client's start); 0 never.
    pub fn after_minutes(minutes: u32, since: UnixMillis) -> Self {
        Idleness {
            after_ms: (minutes > 0).then(|| u64::from(minutes) * 60_000),
            last_input: since,
            ..Idleness::default()
        }
    }

    /// Whether the server was told this connection is idle.
    pub fn told(&self) -> bool {
        self.told
    }
}

impl App {
    /// A key, a paste or a mouse event: the user is here. Says so to the server if it was told
    /// otherwise.
    pub fn input_seen(&mut self) -> Vec<Action> {
        self.idleness.last_input = self.now;
        if std::mem::take(&mut self.idleness.told) {
            vec![Action::Idle(false)]
        } else {
            Vec::new()
        }
    }

    /// On every tick: tells the server once the user has been away long enough.
    pub(super) fn idle_tick(&mut self) -> Option<Action> {
        let idle = &mut self.idleness;
        let after = idle.after_ms?;
        let due = self.now.saturating_sub(idle.last_input) >= after;
        if !due || idle.told || idle.unsupported || self.connection != ConnectionState::Connected {
            return None;
        }
        idle.told = true;
        Some(Action::Idle(true))
    }

    /// The connection dropped: a new one starts in use.
    pub(super) fn idle_forget(&mut self) {
        self.idleness.told = false;
    }

    /// The server could not take the request: an older one closes the connection on it.
    pub fn idle_refused(&mut self) {
        self.idleness.unsupported = true;
        self.idleness.told = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::test_support::app_as_me;

    fn app_idle_after(minutes: u32) -> App {
        let mut app = app_as_me();
        app.now = 1_000_000;
        app.idleness = Idleness::after_minutes(minutes, app.now);
        app
    }

    fn tick_at(app: &mut App, now: UnixMillis) -> Vec<Action> {
        app.tick(now)
            .into_iter()
            .filter(|a| matches!(a, Action::Idle(_)))
            .collect()
    }

    #[test]
    fn idle_after_the_minutes_and_back_on_input_each_said_once() {
        let mut app = app_idle_after(10);
        let start = app.now;
        assert_eq!(tick_at(&mut app, start + 9 * 60_000), []);
        assert_eq!(tick_at(&mut app, start + 10 * 60_000), [Action::Idle(true)]);
        assert!(app.idleness.told());
        assert_eq!(tick_at(&mut app, start + 20 * 60_000), [], "said once");
        assert_eq!(app.input_seen(), [Action::Idle(false)]);
        assert_eq!(app.input_seen(), [], "said once");
        let back = app.now;
        assert_eq!(tick_at(&mut app, back + 9 * 60_000), [], "counted anew");
        assert_eq!(tick_at(&mut app, back + 10 * 60_000), [Action::Idle(true)]);
    }

    #[test]
    fn offline_nothing_is_said_and_a_new_connection_is_told_again() {
        let mut app = app_idle_after(5);
        let start = app.now;
        assert_eq!(tick_at(&mut app, start + 5 * 60_000), [Action::Idle(true)]);
        app.disconnected("lost".into(), 0);
        assert_eq!(tick_at(&mut app, start + 6 * 60_000), [], "offline");
        assert_eq!(app.input_seen(), [], "the new connection starts in use");
        let back = app.now;
        app.connection = ConnectionState::Connected;
        assert_eq!(tick_at(&mut app, back + 5 * 60_000), [Action::Idle(true)]);
    }

    #[test]
    fn zero_minutes_or_an_older_server_means_never() {
        let mut app = app_idle_after(0);
        let start = app.now;
        assert_eq!(tick_at(&mut app, start + 1_000 * 60_000), []);

        let mut app = app_idle_after(1);
        app.idle_refused();
        assert_eq!(tick_at(&mut app, start + 60 * 60_000), []);
        assert_eq!(app.input_seen(), []);
    }
}
