//! Request handling: one [`Conn`] per connection holds its session and limits; `handle`
//! dispatches each request to the module for its area and queues exactly one response.
//!
//! - [`accounts`]: register, login, resume, logout, change password.
//! - [`account_admin`]: a server admin resets another account's password or logs it out.
//! - [`rooms`]: room lists, create, join, leave, invite, kick, info, topic, direct chats.
//! - [`messages`]: send, history, read markers, typing, presence, users.
//! - [`files`]: uploads, downloads, file lists, deleting messages.
//! - [`mutes`]: mute, unmute, and the check every way of posting makes.
//!
//! Permission checks read the hub (memory); changes go through the storage writer, whose
//! completions update the hub and fan out events after the commit.

mod account_admin;
mod accounts;
pub(crate) mod files;
mod messages;
mod mutes;
mod rooms;

use bytes::Bytes;
use chatroom_protocol::codec::encode_frame;
use chatroom_protocol::{ErrorBody, ErrorCode, Request, Response, RoomId, ServerFrame};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::Shared;
use crate::auth;
use crate::error::{RequestError, RequestResult};
use crate::hub::{ConnId, SessionConn};
use crate::limits::TokenBucket;
use crate::outbox::Outlet;
use crate::storage::UserRow;

/// A logged-in session on a connection.
#[derive(Debug)]
pub(crate) struct Session {
    pub user: UserRow,
    pub token_hash: Vec<u8>,
}

/// One connection's request-handling state.
#[derive(Debug)]
pub(crate) struct Conn {
    pub id: ConnId,
    pub peer: SocketAddr,
    pub client_name: String,
    pub shared: Arc<Shared>,
    pub outlet: Outlet,
    pub session: Option<Session>,
    /// The id of the request being handled, for responses sent from completions.
    current_request: u32,
    messages: TokenBucket,
    requests: TokenBucket,
    /// Upload chunks and file reads have their own bucket: a transfer is many requests by
    /// design, each already bounded by the chunk size and the window.
    transfers: TokenBucket,
    typing_sent: HashMap<RoomId, Instant>,
    /// Downloaded chunks this connection may have waiting to be sent.
    download_slots: Arc<tokio::sync::Semaphore>,
}

impl Conn {
    pub fn new(id: ConnId, peer: SocketAddr, shared: Arc<Shared>, outlet: Outlet) -> Self {
        let limits = &shared.config.limits;
        let messages = TokenBucket::new(limits.messages_per_second, limits.message_burst);
        // Everything else is bounded too, more loosely: history paging, room lists, typing.
        let requests = TokenBucket::new(
            limits.messages_per_second.saturating_mul(10).max(50),
            limits.message_burst.saturating_mul(10).max(200),
        );
        let download_slots = Arc::new(tokio::sync::Semaphore::new(
            shared.config.files.download_queue_chunks.max(1) as usize,
        ));
        let transfers = TokenBucket::new(
            shared.config.files.chunks_per_second,
            shared.config.files.chunks_per_second,
        );
        Self {
            id,
            peer,
            client_name: String::new(),
            shared,
            outlet,
            session: None,
            current_request: 0,
            messages,
            requests,
            transfers,
            typing_sent: HashMap::new(),
            download_slots,
        }
    }

    /// Encodes and queues a frame for this connection.
    pub fn send_frame(&self, frame: &ServerFrame) {
        match encode_frame(frame, self.shared.config.limits.max_frame_bytes) {
            Ok(bytes) => self.outlet.push(bytes),
            Err(e) => tracing::error!(error = %e, "cannot encode a frame"),
        }
    }

    /// Queues a connection-level error (the caller then closes the connection).
    pub fn send_error(&self, error: ErrorBody) {
        self.send_frame(&ServerFrame::Error(error));
    }

    /// Handles one request and queues its response.
    pub async fn handle(&mut self, id: u32, body: Request) {
        self.shared.metrics.request();
        self.current_request = id;
        let bucket = match body {
            Request::UploadChunk { .. } | Request::ReadFile { .. } => &mut self.transfers,
            _ => &mut self.requests,
        };
        let result = if bucket.try_take() {
            self.dispatch(body).await
        } else {
            Err(RequestError::new(
                ErrorCode::RateLimited,
                "too many requests; slow down",
            ))
        };
        match result {
            Ok(Some(response)) => {
                let frame = ServerFrame::Response {
                    id,
                    result: Ok(response),
                };
                match encode_frame(&frame, self.shared.config.limits.max_frame_bytes) {
                    Ok(bytes) => self.outlet.push(bytes),
                    // Every request gets an answer, even one that cannot be sent whole.
                    Err(e) => {
                        tracing::error!(error = %e, "a response does not fit in a frame");
                        self.send_frame(&ServerFrame::Response {
                            id,
                            result: Err(ErrorBody::new(
                                ErrorCode::FrameTooLarge,
                                "the answer would not fit in a frame; ask for less",
                            )),
                        });
                    }
                }
            }
            // Answered later, from a storage completion (see `messages::send`).
            Ok(None) => {}
            Err(e) => {
                if let RequestError::Internal(detail) = &e {
                    tracing::error!(%detail, "request failed");
                }
                self.send_frame(&ServerFrame::Response {
                    id,
                    result: Err(e.to_body()),
                });
            }
        }
    }

    async fn dispatch(&mut self, body: Request) -> RequestResult<Option<Response>> {
        // Requests that work without a session.
        match body {
            Request::Register { username, password } => {
                return self.register(username, password).await.map(Some);
            }
            Request::Login { username, password } => {
                return self.login(username, password).await.map(Some);
            }
            Request::Resume { token } => return self.resume(token).await.map(Some),
            Request::Ping => return Ok(Some(Response::Pong)),
            Request::ServerInfo => return Ok(Some(Response::ServerInfo(self.server_info()))),
            _ => {}
        }
        let Some(session) = &self.session else {
            return Err(RequestError::new(
                ErrorCode::NotAuthenticated,
                "log in first",
            ));
        };
        // The hub's row, not the one from login: an admin may have promoted, demoted or
        // deleted the account since, and that holds from this request on.
        let Some(me) = self.shared.hub.user(session.user.id) else {
            return Err(RequestError::new(
                ErrorCode::SessionRevoked,
                "this account has been deleted",
            ));
        };
        let response = match body {
            Request::Logout => self.logout().await?,
            Request::ChangePassword {
                old_password,
                new_password,
            } => self.change_password(old_password, new_password).await?,
            Request::MyRooms => self.my_rooms(&me).await?,
            Request::PublicRooms => self.public_rooms(&me).await?,
            Request::CreateRoom { name, visibility } => {
                self.create_room(&me, name, visibility).await?
            }
            Request::JoinRoom { name } => self.join_room(&me, name).await?,
            Request::LeaveRoom { room } => self.leave_room(&me, room).await?,
            Request::Invite { room, username } => self.invite(&me, room, username).await?,
            Request::RoomInfo { room } => self.room_info(&me, room).await?,
            Request::SetTopic { room, topic } => self.set_topic(&me, room, topic).await?,
            Request::OpenDirect { username } => self.open_direct(&me, username).await?,
            Request::Kick {
                room,
                username,
                reason,
            } => self.kick(&me, room, username, reason).await?,
            Request::SendMessage { room, text } => return self.send_message(&me, room, text).await,
            Request::History {
                room,
                anchor,
                limit,
            } => self.history(&me, room, anchor, limit).await?,
            Request::Search {
                query,
                room,
                before,
                limit,
            } => self.search(&me, query, room, before, limit).await?,
            Request::Ban {
                room,
                username,
                reason,
            } => self.ban(&me, room, username, reason).await?,
            Request::Unban { room, username } => self.unban(&me, room, username).await?,
            Request::Bans { room } => self.bans(&me, room).await?,
            Request::MarkRead { room, seq } => self.mark_read(&me, room, seq).await?,
            Request::SetPresence { status, message } => self.set_presence(&me, status, message)?,
            Request::SetIdle { idle } => {
                self.shared.hub.set_idle(me.id, self.id, idle);
                Response::Done
            }
            Request::Typing { room } => self.typing(&me, room)?,
            Request::ListUsers => Response::Users(self.shared.hub.users()),
            Request::OfferUpload {
                room,
                name,
                size,
                sha256,
            } => self.offer_upload(&me, room, name, size, sha256).await?,
            Request::UploadChunk {
                upload,
                offset,
                data,
            } => self.upload_chunk(&me, upload, offset, data).await?,
            Request::FinishUpload { upload } => self.finish_upload(&me, upload).await?,
            Request::CancelUpload { upload } => self.cancel_upload(&me, upload).await?,
            Request::FileInfo { file } => self.file_info(&me, file).await?,
            Request::ReadFile { file, offset, len } => {
                return self.read_file(&me, file, offset, len).await;
            }
            Request::ListFiles { room } => self.list_files(&me, room).await?,
            Request::DeleteMessage { room, seq } => self.delete_message(&me, room, seq).await?,
            Request::EditMessage { room, seq, text } => {
                self.edit_message(&me, room, seq, text).await?
            }
            Request::Mute {
                room,
                username,
                secs,
                reason,
            } => self.mute(&me, room, username, secs, reason).await?,
            Request::Unmute { room, username } => self.unmute(&me, room, username).await?,
            Request::Mutes { room } => self.mutes(&me, room).await?,
            Request::RenameRoom { room, name } => self.rename_room(&me, room, name).await?,
            Request::ResetPassword { username, password } => {
                self.reset_password(&me, username, password).await?
            }
            Request::LogOutUser { username } => self.log_out_user(&me, username).await?,
            Request::SuspendUser { username, reason } => {
                self.suspend_user(&me, username, reason).await?
            }
            Request::UnsuspendUser { username } => self.unsuspend_user(&me, username).await?,
            Request::Suspensions => self.suspensions(&me).await?,
            Request::SetServerAdmin { username, admin } => {
                self.set_server_admin(&me, username, admin).await?
            }
            Request::DeleteAccount { username } => self.delete_account(&me, username).await?,
            Request::DeleteMessagesBy {
                room,
                username,
                within_secs,
            } => {
                self.delete_messages_by(&me, room, username, within_secs)
                    .await?
            }
            Request::SetRole {
                room,
                username,
                role,
            } => self.set_role(&me, room, username, role).await?,
            Request::Register { .. }
            | Request::Login { .. }
            | Request::Resume { .. }
            | Request::Ping
            | Request::ServerInfo => {
                return Err(RequestError::new(
                    ErrorCode::AlreadyAuthenticated,
                    "already logged in",
                ));
            }
        };
        Ok(Some(response))
    }

    /// Joins the hub as `user` with a session token, unless the token was revoked meanwhile.
    ///
    /// An admin's logout or suspension removes the tokens, then closes the connections the
    /// hub has. A login or resume that checked its token before the removal but joins the hub
    /// after the closing would escape both, so the token is looked at again once joined.
    fn start_session(&mut self, user: UserRow, token_hash: Vec<u8>) -> RequestResult<()> {
        tracing::Span::current().record("user", user.name.as_str());
        self.shared.hub.attach(
            user.id,
            SessionConn {
                conn: self.id,
                outlet: self.outlet.clone(),
                token_hash: token_hash.clone(),
                idle: false,
            },
        );
        if self.session.replace(Session { user, token_hash }).is_none() {
            self.shared.metrics.session_started();
        }
        let still_held = self
            .session
            .as_ref()
            .is_some_and(|s| self.shared.hub.sessions().holds(&s.token_hash));
        if !still_held {
            self.end_session();
            return Err(RequestError::new(
                ErrorCode::InvalidToken,
                "this session was ended as it started (logged out or suspended by an admin); \
                 log in again",
            ));
        }
        Ok(())
    }

    /// Leaves the hub (logout or disconnect).
    pub fn end_session(&mut self) {
        if let Some(session) = self.session.take() {
            self.shared.hub.detach(session.user.id, self.id);
            self.shared.metrics.session_ended();
        }
    }

    /// What the server offers beyond `Welcome`.
    fn server_info(&self) -> chatroom_protocol::ServerInfo {
        chatroom_protocol::ServerInfo {
            ai_bot: self.shared.ai.as_ref().map(|ai| ai.name().to_owned()),
        }
    }

    /// Encodes an event for this server's frame limit.
    fn event_bytes(&self, event: &chatroom_protocol::Event) -> Option<Bytes> {
        self.shared.hub.encode_event(event)
    }

    /// The account named `name` (any case), or `UserNotFound`.
    fn user_named(&self, name: &str) -> RequestResult<crate::storage::UserRow> {
        self.shared
            .hub
            .user_by_name(name)
            .ok_or_else(|| user_not_found(name))
    }
}

/// The error for a room that does not exist or that the user may not see.
fn room_not_found() -> RequestError {
    RequestError::new(ErrorCode::RoomNotFound, "no such room")
}

fn user_not_found(name: &str) -> RequestError {
    // The name is the peer's and unchecked: echo only a short prefix of it.
    const SHOWN: usize = auth::MAX_USERNAME_CHARS;
    // As typed, not in Rust's debug quotes; a control character shows as its escape.
    let shown: String = name
        .chars()
        .take(SHOWN)
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    let more = if name.chars().nth(SHOWN).is_some() {
        "…"
    } else {
        ""
    };
    RequestError::new(
        ErrorCode::UserNotFound,
        format!("no user named {shown}{more}"),
    )
}

fn internal(e: impl std::fmt::Display) -> RequestError {
    RequestError::Internal(e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unknown_name_is_echoed_as_typed_with_control_characters_escaped() {
        assert_eq!(
            super::user_not_found("carol").to_string(),
            "no user named carol"
        );
        assert_eq!(
            super::user_not_found("car\u{1b}[2Jol").to_string(),
            "no user named car\\u{1b}[2Jol"
        );
    }
}
