//! Accounts and sessions: register, login, resume, logout, change password.
//!
//! Password hashing runs on the blocking pool. Wrong password and unknown user give the same
//! error after the same work. Failed logins are counted per address and per account, and
//! registrations per address.

use chatroom_protocol::{ErrorBody, ErrorCode, Response, Session, UserSummary, now_millis};
use std::sync::Arc;

use super::{Conn, internal};
use crate::auth;
use crate::config::RegistrationPolicy;
use crate::error::{RequestError, RequestResult};
use crate::hub::Namespace;
use crate::sessions::{self, TokenCheck, ended};
use crate::storage::ops::AdminGrant;
use crate::storage::{Outcome, UserRow, WriteOp, reads};

fn summary(user: &UserRow) -> UserSummary {
    UserSummary {
        id: user.id,
        username: user.name.clone(),
        is_admin: user.is_admin,
    }
}

impl Conn {
    /// Runs argon2 work on the blocking pool with a permit and pooled working memory.
    async fn with_hash_memory<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut auth::HashMemory) -> T + Send + 'static,
    ) -> RequestResult<T> {
        let _permit = self.shared.hashing.acquire().await.map_err(internal)?;
        let mut memory = self
            .shared
            .hash_memory
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_default();
        let (result, memory) = tokio::task::spawn_blocking(move || {
            let result = work(&mut memory);
            (result, memory)
        })
        .await
        .map_err(internal)?;
        if let Ok(mut pool) = self.shared.hash_memory.lock() {
            pool.push(memory);
        }
        Ok(result)
    }

    pub(super) async fn hash_blocking(&self, password: String) -> RequestResult<String> {
        self.with_hash_memory(move |memory| auth::hash_password_with(&password, memory))
            .await?
            .map_err(RequestError::Internal)
    }

    async fn verify_blocking(
        &self,
        password: String,
        stored: Option<String>,
    ) -> RequestResult<bool> {
        self.with_hash_memory(move |memory| {
            auth::verify_password_with(&password, stored.as_deref(), memory)
        })
        .await
    }

    pub(super) async fn register(
        &mut self,
        username: String,
        password: String,
    ) -> RequestResult<Response> {
        let by_admin = match &self.session {
            // The hub's row: an admin may have been promoted or demoted since this login.
            Some(s) if self.shared.hub.user(s.user.id).is_some_and(|u| u.is_admin) => true,
            Some(s) => {
                return Err(RequestError::new(
                    ErrorCode::AlreadyAuthenticated,
                    format!(
                        "already logged in as {}; log out to register another account \
                         (only a server admin creates accounts while logged in)",
                        s.user.name
                    ),
                ));
            }
            None => false,
        };
        if !by_admin && self.shared.config.registration == RegistrationPolicy::Closed {
            return Err(RequestError::new(
                ErrorCode::RegistrationClosed,
                "registration is closed on this server; ask an admin for an account",
            ));
        }
        let ip = self.peer.ip();
        let shared = Arc::clone(&self.shared);
        let reservation = if by_admin {
            None
        } else {
            match shared.registrations.reserve(ip) {
                Some(reservation) => Some(reservation),
                None => {
                    return Err(RequestError::new(
                        ErrorCode::RateLimited,
                        "too many accounts were registered from this address in the last hour; \
                         try again later or ask an admin",
                    ));
                }
            }
        };
        auth::validate_username(&username)?;
        auth::validate_password(&password)?;
        let ai = &self.shared.config.ai;
        let reserved = ai.backend != crate::config::AiBackendKind::Off
            && auth::name_key(&username) == auth::name_key(&ai.name);
        if reserved || self.shared.hub.user_by_name(&username).is_some() {
            return Err(RequestError::new(
                ErrorCode::UsernameTaken,
                format!("the name {username:?} is taken"),
            ));
        }
        // Held until the hub has the account, across the hash and the write.
        let _claim = self
            .shared
            .hub
            .claim_name(Namespace::Account, &username, None)
            .map_err(|other| {
                let message = if auth::name_key(&other) == auth::name_key(&username) {
                    format!("the name {username:?} is taken")
                } else {
                    format!(
                        "the name {username:?} looks like the account {other:?}; choose another"
                    )
                };
                RequestError::new(ErrorCode::UsernameTaken, message)
            })?;
        let password_hash = self.hash_blocking(password).await?;
        let hub = self.shared.hub.clone();
        let op = WriteOp::CreateUser {
            name: username,
            password_hash,
            admin: AdminGrant::IfFirst,
        };
        let created = self
            .shared
            .storage
            .writer
            .write_then(op, move |outcome| {
                if let Outcome::User(row) = outcome {
                    hub.add_user(row.clone());
                }
            })
            .await?;
        let user = match created {
            Outcome::User(row) => row,
            other => return Err(internal(format!("unexpected outcome {other:?}"))),
        };
        tracing::info!(user = %user.name, admin = user.is_admin, by_admin, "account registered");
        if by_admin {
            return Ok(Response::Done);
        }
        if let Some(reservation) = reservation {
            reservation.keep();
        }
        self.open_session(user).await
    }

    pub(super) async fn login(
        &mut self,
        username: String,
        password: String,
    ) -> RequestResult<Response> {
        if self.session.is_some() {
            return Err(RequestError::new(
                ErrorCode::AlreadyAuthenticated,
                "already logged in",
            ));
        }
        let key = auth::name_key(&username);
        // No account has a name or password outside these bounds; such an attempt still counts
        // against the address, but its name is not remembered (the peer picks its size).
        let possible = auth::validate_username(&username).is_ok()
            && password.len() <= auth::MAX_PASSWORD_BYTES;
        let ip = self.peer.ip();
        if self.shared.logins.blocked(ip, &key) {
            return Err(RequestError::new(
                ErrorCode::RateLimited,
                "too many failed logins; wait a minute",
            ));
        }
        let lookup_key = key.clone();
        let found = self
            .shared
            .storage
            .reads
            .run(move |c| reads::user_for_login(c, &lookup_key))
            .await?;
        let (user, stored) = match found {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        let ok = self.verify_blocking(password, stored).await?;
        let user = match (ok, user) {
            (true, Some(user)) => user,
            _ => {
                self.shared
                    .logins
                    .failed(ip, possible.then_some(key.as_str()));
                // As sshd does; a name outside the rules (any size, any bytes) is not echoed.
                let tried = if possible {
                    username.as_str()
                } else {
                    "(not a valid name)"
                };
                tracing::info!(%ip, user = %tried, "failed login");
                return Err(RequestError::new(
                    ErrorCode::InvalidCredentials,
                    "wrong user name or password",
                ));
            }
        };
        self.shared.logins.succeeded(&key);
        self.open_session(user).await
    }

    /// Issues a token for `user` and starts the session, ending the account's least recently
    /// used sessions beyond `limits.max_sessions_per_account` (never one held by a connection).
    async fn open_session(&mut self, user: UserRow) -> RequestResult<Response> {
        let (token, token_hash) = auth::new_session_token().map_err(RequestError::Internal)?;
        let cap = self.shared.config.limits.session_cap();
        // Chosen before the write: a session resumed in between is still ended (its
        // connection carries on; only a later resume is refused), and two logins at once may
        // both end the same one, leaving one over until the next login or upkeep.
        let hub = &self.shared.hub;
        let ending = hub
            .sessions()
            .making_room(user.id, cap, || hub.live_tokens());
        if !ending.is_empty() {
            tracing::info!(
                user = %user.name,
                count = ending.len(),
                cap,
                "ending the least recently used sessions beyond the session limit"
            );
        }
        let (hub, hash, id) = (self.shared.hub.clone(), token_hash.clone(), user.id);
        let ended = ending.clone();
        self.shared
            .storage
            .writer
            .write_then(
                WriteOp::CreateSession {
                    user: user.id,
                    token_hash: token_hash.clone(),
                    device: self.client_name.clone(),
                    ending,
                    why_ending: ended::beyond_cap(cap),
                },
                move |_| {
                    for hash in &ended {
                        hub.sessions().remove(hash);
                    }
                    hub.sessions().add(&hash, id, now_millis());
                },
            )
            .await?;
        let response = Response::Session(Session {
            user: summary(&user),
            token,
        });
        self.start_session(user, token_hash)?;
        Ok(response)
    }

    pub(super) async fn resume(&mut self, token: String) -> RequestResult<Response> {
        if self.session.is_some() {
            return Err(RequestError::new(
                ErrorCode::AlreadyAuthenticated,
                "already logged in",
            ));
        }
        let token_hash = auth::token_hash(&token);
        let expiry = self.shared.config.limits.session_expiry();
        let check = self
            .shared
            .hub
            .sessions()
            .resume(&token_hash, now_millis(), expiry);
        let user = match check {
            TokenCheck::Live(id) => self.shared.hub.user(id),
            TokenCheck::Expired => {
                let op = WriteOp::DeleteSession {
                    token_hash: token_hash.clone(),
                };
                if let Err(e) = self.shared.storage.writer.write(op).await {
                    tracing::warn!(error = %e, "cannot delete an expired session");
                }
                let unused = expiry.map(sessions::describe).unwrap_or_default();
                return Err(RequestError::new(
                    ErrorCode::InvalidToken,
                    format!("the session expired ({unused} unused); log in again"),
                ));
            }
            TokenCheck::Unknown => {
                let hash = token_hash.clone();
                let why = self
                    .shared
                    .storage
                    .reads
                    .run(move |c| reads::why_session_ended(c, &hash))
                    .await?;
                match why {
                    // As a login would be told: logging in again would not help yet.
                    Some(reads::EndedSession {
                        suspended: Some((by, reason)),
                        ..
                    }) => {
                        return Err(RequestError::new(
                            ErrorCode::Forbidden,
                            ended::while_suspended(&by, reason.as_deref()),
                        ));
                    }
                    Some(end) => {
                        return Err(RequestError::new(
                            ErrorCode::InvalidToken,
                            format!("{}; log in again", end.why),
                        ));
                    }
                    None => {}
                }
                None
            }
        };
        let user = user.ok_or_else(|| {
            RequestError::new(
                ErrorCode::InvalidToken,
                "no such session: it expired, was logged out, or its account was deleted; \
                 log in again",
            )
        })?;
        let response = Response::Session(Session {
            user: summary(&user),
            token,
        });
        self.start_session(user, token_hash)?;
        Ok(response)
    }

    pub(super) async fn logout(&mut self) -> RequestResult<Response> {
        let Some(session) = &self.session else {
            return Err(RequestError::new(
                ErrorCode::NotAuthenticated,
                "log in first",
            ));
        };
        let (user, token_hash) = (session.user.id, session.token_hash.clone());
        let (hub, hash) = (self.shared.hub.clone(), token_hash.clone());
        self.shared
            .storage
            .writer
            .write_then(
                WriteOp::DeleteSession {
                    token_hash: token_hash.clone(),
                },
                move |_| hub.sessions().remove(&hash),
            )
            .await?;
        // Other connections resumed with the same token end too.
        self.shared.hub.close_token(
            user,
            &token_hash,
            self.id,
            &ErrorBody::new(ErrorCode::SessionRevoked, "logged out"),
        );
        self.end_session();
        Ok(Response::Done)
    }

    pub(super) async fn change_password(
        &mut self,
        old_password: String,
        new_password: String,
    ) -> RequestResult<Response> {
        let Some(session) = &self.session else {
            return Err(RequestError::new(
                ErrorCode::NotAuthenticated,
                "log in first",
            ));
        };
        let (user, token_hash) = (session.user.id, session.token_hash.clone());
        auth::validate_password(&new_password)?;
        let stored = self
            .shared
            .storage
            .reads
            .run(move |c| reads::password_hash(c, user))
            .await?;
        if !self.verify_blocking(old_password, stored).await? {
            return Err(RequestError::new(
                ErrorCode::InvalidCredentials,
                "the current password is wrong",
            ));
        }
        let password_hash = self.hash_blocking(new_password).await?;
        let (hub, keep) = (self.shared.hub.clone(), token_hash.clone());
        self.shared
            .storage
            .writer
            .write_then(
                WriteOp::ChangePassword {
                    user,
                    password_hash,
                    keep_session: Some(token_hash),
                },
                move |_| hub.sessions().remove_user(user, Some(&keep)),
            )
            .await?;
        self.shared.hub.close_sessions(
            user,
            Some(self.id),
            &ErrorBody::new(
                ErrorCode::SessionRevoked,
                format!("{}; log in again", ended::BY_PASSWORD_CHANGE),
            ),
        );
        tracing::info!("password changed; other sessions revoked");
        Ok(Response::Done)
    }
}
