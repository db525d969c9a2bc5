//! What a server admin does to other accounts over the connection, with the server running:
//! a new password, or every session ended. Both lock someone out at once (their tokens stop
//! resuming and their connections close), where `chatroom-server user` needs the server
//! stopped. Promoting, demoting and deleting stay there: each changes what every connection of
//! the account may do, which the running server learns only at the next login.

use chatroom_protocol::{ErrorBody, ErrorCode, Response};

use super::Conn;
use crate::auth;
use crate::error::{RequestError, RequestResult};
use crate::storage::{UserRow, WriteOp};

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
        let is_bot = self
            .shared
            .storage
            .reads
            .run(move |c| crate::storage::ai::is_bot(c, id))
            .await?;
        if is_bot {
            return Err(RequestError::new(
                ErrorCode::BadRequest,
                format!("{} is the AI bot's account; it has no password", user.name),
            ));
        }
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
}
