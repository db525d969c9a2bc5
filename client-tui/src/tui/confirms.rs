//! What asks before it deletes: `/delete`'s message ([`Deleting`]), `/purge`'s window
//! ([`Purging`]) and `/user delete`'s account wait above the input as one [`Confirming`] until
//! Enter on the empty input does it or Esc drops it (saying nothing went). A line typed instead
//! goes as it would have and drops it too, and so does entering another room: the question was
//! about the room it was asked in (an account's deletion is asked again rather than carried
//! along). Offline, Enter leaves it waiting for the connection.

use chatroom_protocol::RoomId;

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

    /// Enter on an empty input while something waits to be deleted: deletes it. Offline, it
    /// keeps waiting.
    pub(super) fn confirm(&mut self) -> Vec<Action> {
        let Some(confirming) = self.confirming.clone() else {
            return Vec::new();
        };
        if self.connection != ConnectionState::Connected {
            self.flash(
                "not connected; Enter deletes it once the connection is back",
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

    /// Esc while something waits to be deleted: it stays, and the status line says so.
    /// Whether anything was waiting.
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
