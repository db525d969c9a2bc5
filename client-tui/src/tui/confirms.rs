//! What asks before it deletes: `/delete`'s message ([`Deleting`]), `/purge`'s window
//! ([`Purging`]) and `/user delete`'s account wait above the input as one [`Confirming`], a
//! `[y/N]` question: `y` does it; `n`, Enter and Esc drop it (saying nothing went). Enter is a
//! no because it is what was just pressed to ask: a double Enter must not delete. Typing
//! anything else, or pasting, drops it too and goes into the input as usual, and so does
//! entering another room: the question was about the room it was asked in (an account's
//! deletion is asked again rather than carried along). Keys that type nothing (scrolling,
//! F-keys) leave it waiting, so the message can be looked at first. Offline, `y` leaves it
//! waiting for the connection.

use chatroom_protocol::RoomId;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::admin::AccountAction;
use super::app::{Action, App, ConnectionState};
use super::deletes::Deleting;
use super::purges::Purging;

/// A deletion waiting for Enter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirming {
    /// One message (`/delete`, `/delete NAME`).
    Delete(Deleting),
    /// All someone posted in a room lately (`/purge USER [TIME]`).
    Purge(Purging),
    /// Someone's account, for good (`/user delete NAME`).
    DeleteAccount(String),
}

impl Confirming {
    /// The room it deletes in (`None`: an account, in every room).
    pub fn room(&self) -> Option<RoomId> {
        match self {
            Confirming::Delete(deleting) => Some(deleting.room),
            Confirming::Purge(purging) => Some(purging.room),
            Confirming::DeleteAccount(_) => None,
        }
    }
}

impl App {
    /// Shows `confirming` above the input, in place of anything asked before.
    pub(super) fn ask(&mut self, confirming: Confirming) {
        self.confirming = Some(confirming);
    }

    /// A key while something waits to be deleted: what it did, or `None` when the key goes on
    /// as it would have (having dropped the question if it types).
    pub(super) fn confirm_key(&mut self, key: &KeyEvent) -> Option<Vec<Action>> {
        self.confirming.as_ref()?;
        if key
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
        {
            // Ctrl-C quits; Alt-Enter's line break is typing.
            if key.code == KeyCode::Enter {
                self.decline();
            }
            return None;
        }
        match key.code {
            KeyCode::Char('y' | 'Y') => Some(self.confirm()),
            KeyCode::Char('n' | 'N') | KeyCode::Enter => {
                self.decline();
                Some(Vec::new())
            }
            KeyCode::Char(_) | KeyCode::Backspace | KeyCode::Delete => {
                self.decline();
                None
            }
            _ => None,
        }
    }

    /// `y` while something waits to be deleted: deletes it. Offline, it keeps waiting.
    fn confirm(&mut self) -> Vec<Action> {
        let Some(confirming) = self.confirming.clone() else {
            return Vec::new();
        };
        if self.connection != ConnectionState::Connected {
            self.flash(
                "not connected; y deletes it once the connection is back",
                true,
            );
            return Vec::new();
        }
        self.confirming = None;
        match confirming {
            Confirming::Delete(deleting) => self.delete_confirmed(deleting),
            Confirming::Purge(purging) => vec![purging.action()],
            Confirming::DeleteAccount(user) => vec![Action::Account(AccountAction::Delete(user))],
        }
    }

    /// `n`, Enter, Esc or typing while something waits to be deleted: it is dropped, and the
    /// status line says nothing was deleted. Whether anything was waiting.
    pub fn decline(&mut self) -> bool {
        let declined = self.confirming.take().is_some();
        if declined {
            self.flash("cancelled: nothing deleted", false);
        }
        declined
    }

    /// The message waiting for Enter, when it is a `/delete`.
    #[cfg(test)]
    pub(super) fn deleting(&self) -> Option<&Deleting> {
        match &self.confirming {
            Some(Confirming::Delete(deleting)) => Some(deleting),
            _ => None,
        }
    }
}
