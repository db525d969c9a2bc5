//! What a server admin does to other accounts over the connection, with the server running:
//! a new password, every session ended, the account suspended until further notice, made an
//! admin or no longer one, or deleted. Each holds at once for the account's connections
//! already logged in, where `chatroom-server user` needs the server stopped.

use chatroom_protocol::{ErrorBody, ErrorCode, Event, LeaveReason, Response, RoomRole, UserId};

use super::Conn;
use super::rooms::announce_departure;
use crate::auth;
use crate::error::{RequestError, RequestResult};
use crate::sessions::ended;
use crate::storage::{Outcome, UserRow, WriteOp, reads};

impl Conn {
    /// The account an admin names for `act`, if `me` is an admin and it is someone else's.
    fn administered(&self, me: &UserRow, username: &str, act: Act) -> RequestResult<UserRow> {
        if !me.is_admin {
            return Err(RequestError::new(
                ErrorCode::Forbidden,
                format!("only a server admin may {}", act.what()),
            ));
        }
        let user = self.user_named(username)?;
        if user.id == me.id {
            return Err(RequestError::new(
                ErrorCode::BadRequest,
                format!("that is your own account: {}", act.instead()),
            ));
        }
        Ok(user)
    }

    pub(super) async fn reset_password(
        &self,
        me: &UserRow,
        username: String,
        password: String,
    ) -> RequestResult<Response> {
        let user = self.administered(me, &username, Act::ResetPassword)?;
        let id = user.id;
        self.refuse_bot(&user, "it has no password").await?;
        auth::validate_password(&password)?;
        let password_hash = self.hash_blocking(password).await?;
        let op = WriteOp::ChangePassword {
            user: id,
            password_hash,
            keep_session: None,
        };
        let told = format!("{}; log in with it", ended::BY_PASSWORD_RESET);
        self.end_sessions(id, op, told).await?;
        tracing::info!(user = %user.name, by = %me.name, "password reset by an admin; sessions ended");
        Ok(Response::Done)
    }

    /// Stores `op`, which ends every session of `user`: once committed their tokens stop
    /// resuming, and their connections close, `told` why.
    async fn end_sessions(&self, user: UserId, op: WriteOp, told: String) -> RequestResult<()> {
        let hub = self.shared.hub.clone();
        self.shared
            .storage
            .writer
            .write_then(op, move |_| hub.sessions().remove_user(user, None))
            .await?;
        let reason = ErrorBody::new(ErrorCode::SessionRevoked, told);
        self.shared.hub.close_sessions(user, None, &reason);
        Ok(())
    }

    /// Refuses the AI bot's account, saying why not (`because`).
    async fn refuse_bot(&self, user: &UserRow, because: &str) -> RequestResult<()> {
        let id = user.id;
        let is_bot = self
            .shared
            .storage
            .reads
            .run(move |c| crate::storage::ai::is_bot(c, id))
            .await?;
        if is_bot {
            return Err(RequestError::new(
                ErrorCode::BadRequest,
                format!("{} is the AI bot's account; {because}", user.name),
            ));
        }
        Ok(())
    }

    pub(super) async fn log_out_user(
        &self,
        me: &UserRow,
        username: String,
    ) -> RequestResult<Response> {
        let user = self.administered(me, &username, Act::LogOut)?;
        let told = format!("{}; log in again", ended::BY_ADMIN_LOGOUT);
        self.end_sessions(user.id, WriteOp::RevokeSessions { user: user.id }, told)
            .await?;
        tracing::info!(user = %user.name, by = %me.name, "logged out everywhere by an admin");
        Ok(Response::Done)
    }

    pub(super) async fn suspend_user(
        &self,
        me: &UserRow,
        username: String,
        reason: Option<String>,
    ) -> RequestResult<Response> {
        let user = self.administered(me, &username, Act::Suspend)?;
        self.refuse_bot(
            &user,
            "kick it from rooms, or turn the bot off in the server's configuration",
        )
        .await?;
        let reason = auth::clean_reason(reason);
        let op = WriteOp::Suspend {
            user: user.id,
            by_name: me.name.clone(),
            reason: reason.clone(),
        };
        let told = ended::by_suspension(&me.name, reason.as_deref());
        self.end_sessions(user.id, op, told).await?;
        tracing::info!(
            user = %user.name,
            by = %me.name,
            reason = reason.as_deref().unwrap_or(""),
            "account suspended; sessions ended"
        );
        Ok(Response::Done)
    }

    pub(super) async fn unsuspend_user(
        &self,
        me: &UserRow,
        username: String,
    ) -> RequestResult<Response> {
        let user = self.administered(me, &username, Act::Unsuspend)?;
        self.shared
            .storage
            .writer
            .write(WriteOp::Unsuspend { user: user.id })
            .await?;
        tracing::info!(user = %user.name, by = %me.name, "suspension lifted");
        Ok(Response::Done)
    }

    pub(super) async fn set_server_admin(
        &self,
        me: &UserRow,
        username: String,
        admin: bool,
    ) -> RequestResult<Response> {
        let user = self.administered(me, &username, Act::SetAdmin)?;
        self.refuse_bot(&user, "it acts only as the bot").await?;
        let (hub, id, by) = (self.shared.hub.clone(), user.id, me.name.clone());
        self.shared
            .storage
            .writer
            .write_then(WriteOp::SetAdmin { user: id, admin }, move |_| {
                hub.set_admin(id, admin, &by)
            })
            .await?;
        tracing::info!(user = %user.name, by = %me.name, admin, "server admin set");
        Ok(Response::Done)
    }

    pub(super) async fn delete_account(
        &self,
        me: &UserRow,
        username: String,
    ) -> RequestResult<Response> {
        let user = self.administered(me, &username, Act::Delete)?;
        self.refuse_bot(
            &user,
            "turn the bot off in the server's configuration instead",
        )
        .await?;
        let (hub, id, name) = (self.shared.hub.clone(), user.id, user.name.clone());
        let reason = ErrorBody::new(
            ErrorCode::SessionRevoked,
            format!("{} deleted this account", me.name),
        );
        self.shared
            .storage
            .writer
            .write_then(WriteOp::DeleteUser { user: id }, move |outcome| {
                hub.sessions().remove_user(id, None);
                let (rooms, directs) = match outcome {
                    Outcome::AccountDeleted { rooms, directs } => {
                        (rooms.as_slice(), directs.as_slice())
                    }
                    _ => (&[][..], &[][..]),
                };
                // Each room hears it left (after its notice), as if it had left each itself;
                // then its connections close and its name is free.
                for (room, heir) in rooms {
                    let heirs = heir.map(|h| vec![(h, RoomRole::Owner)]).unwrap_or_default();
                    let reason = LeaveReason::AccountDeleted;
                    announce_departure(&hub, *room, id, name.clone(), reason, None, heirs);
                }
                hub.forget_user(id, &reason);
                for (other, summary) in directs {
                    let event = Event::RoomUpdated(summary.clone());
                    if let Some(frame) = hub.encode_event(&event) {
                        hub.send_to_user(*other, None, &frame);
                    }
                }
            })
            .await?;
        tracing::info!(user = %user.name, by = %me.name, "account deleted");
        Ok(Response::Done)
    }

    pub(super) async fn suspensions(&self, me: &UserRow) -> RequestResult<Response> {
        if !me.is_admin {
            return Err(RequestError::new(
                ErrorCode::Forbidden,
                "only a server admin may list suspended accounts",
            ));
        }
        let listed = self.shared.storage.reads.run(reads::suspensions).await?;
        Ok(Response::Bans(listed))
    }
}

/// What a server admin does to another account: the words for its refusals.
#[derive(Clone, Copy, Debug)]
enum Act {
    ResetPassword,
    LogOut,
    Suspend,
    Unsuspend,
    SetAdmin,
    Delete,
}

impl Act {
    /// "only a server admin may …"
    fn what(self) -> &'static str {
        match self {
            Act::ResetPassword => "set another account's password",
            Act::LogOut => "log another account out",
            Act::Suspend => "suspend an account",
            Act::Unsuspend => "lift a suspension",
            Act::SetAdmin => "make or unmake server admins",
            Act::Delete => "delete an account",
        }
    }

    /// "that is your own account: …"
    fn instead(self) -> &'static str {
        match self {
            Act::ResetPassword => "change your password as yourself, with the current one",
            Act::LogOut => "log out as yourself",
            Act::Suspend => "no admin suspends themselves",
            Act::Unsuspend => "it is not suspended, or you could not be logged in",
            Act::SetAdmin => "another server admin must do that, so that the server keeps one",
            Act::Delete => "another server admin must delete it",
        }
    }
}
