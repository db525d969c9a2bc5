//! What a server admin does to other accounts over the connection, with the server running:
//! a new password, every session ended, or the account suspended until further notice. Each
//! locks someone out at once (their tokens stop resuming and their connections close), where
//! `chatroom-server user` needs the server stopped. Promoting, demoting and deleting stay
//! there: each changes what every connection of the account may do, which the running server
//! learns only at the next login.

use chatroom_protocol::{ErrorBody, ErrorCode, Response};

use super::Conn;
use crate::auth;
use crate::error::{RequestError, RequestResult};
use crate::storage::{UserRow, WriteOp, reads};

impl Conn {
    /// The account an admin names, if `me` is an admin and it is someone else's.
    fn administered(&self, me: &UserRow, username: &str, what: &str) -> RequestResult<UserRow> {
        if !me.is_admin {
            return Err(RequestError::new(
                ErrorCode::Forbidden,
                format!("only a server admin may {what}"),
            ));
        }
        let user = self.user_named(username)?;
        if user.id == me.id {
            return Err(RequestError::new(
                ErrorCode::BadRequest,
                "that is your own account: change your password, or log out, as yourself",
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
        let user = self.administered(me, &username, "set another account's password")?;
        let id = user.id;
        self.refuse_bot(&user, "it has no password").await?;
        auth::validate_password(&password)?;
        let password_hash = self.hash_blocking(password).await?;
        let hub = self.shared.hub.clone();
        self.shared
            .storage
            .writer
            .write_then(
                WriteOp::ChangePassword {
                    user: id,
                    password_hash,
                    keep_session: None,
                },
                move |_| hub.sessions().remove_user(id, None),
            )
            .await?;
        self.shared.hub.close_sessions(
            id,
            None,
            &ErrorBody::new(
                ErrorCode::SessionRevoked,
                "a server admin set a new password for this account; log in with it",
            ),
        );
        tracing::info!(user = %user.name, by = %me.name, "password reset by an admin; sessions ended");
        Ok(Response::Done)
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
        let user = self.administered(me, &username, "log another account out")?;
        let (hub, id) = (self.shared.hub.clone(), user.id);
        self.shared
            .storage
            .writer
            .write_then(WriteOp::RevokeSessions { user: id }, move |_| {
                hub.sessions().remove_user(id, None)
            })
            .await?;
        self.shared.hub.close_sessions(
            id,
            None,
            &ErrorBody::new(
                ErrorCode::SessionRevoked,
                "a server admin logged this account out everywhere; log in again",
            ),
        );
        tracing::info!(user = %user.name, by = %me.name, "logged out everywhere by an admin");
        Ok(Response::Done)
    }

    pub(super) async fn suspend_user(
        &self,
        me: &UserRow,
        username: String,
        reason: Option<String>,
    ) -> RequestResult<Response> {
        let user = self.administered(me, &username, "suspend an account")?;
        self.refuse_bot(
            &user,
            "kick it from rooms, or turn the bot off in the server's configuration",
        )
        .await?;
        let reason = auth::clean_reason(reason);
        let (hub, id) = (self.shared.hub.clone(), user.id);
        self.shared
            .storage
            .writer
            .write_then(
                WriteOp::Suspend {
                    user: id,
                    by_name: me.name.clone(),
                    reason: reason.clone(),
                },
                move |_| hub.sessions().remove_user(id, None),
            )
            .await?;
        let why = reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        self.shared.hub.close_sessions(
            id,
            None,
            &ErrorBody::new(
                ErrorCode::SessionRevoked,
                format!("{} suspended this account{why}", me.name),
            ),
        );
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
        let user = self.administered(me, &username, "lift a suspension")?;
        self.shared
            .storage
            .writer
            .write(WriteOp::Unsuspend { user: user.id })
            .await?;
        tracing::info!(user = %user.name, by = %me.name, "suspension lifted");
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
