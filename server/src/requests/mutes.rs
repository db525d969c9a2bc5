//! Mutes: a room's owner and moderators stop a member from posting there for a while, or until
//! unmuted; every way of posting checks [`Conn::require_may_post`], which also refuses a direct
//! chat whose other account was deleted.

use chatroom_protocol::{ErrorCode, Event, MAX_MUTE_SECS, Response, RoomId, RoomKind, now_millis};

use super::Conn;
use crate::auth;
use crate::error::{RequestError, RequestResult};
use crate::hub::RoomView;
use crate::storage::notices::for_how_long;
use crate::storage::{UserRow, WriteOp, reads};

impl Conn {
    pub(super) async fn mute(
        &self,
        me: &UserRow,
        room: RoomId,
        username: String,
        secs: Option<u64>,
        reason: Option<String>,
    ) -> RequestResult<Response> {
        let (view, _) = self.moderated_room(me, room, "only the owner or a moderator may mute")?;
        if let Some(secs) = secs
            && !(1..=MAX_MUTE_SECS).contains(&secs)
        {
            return Err(RequestError::new(
                ErrorCode::BadRequest,
                format!(
                    "a mute lasts 1 to {MAX_MUTE_SECS} seconds (a year); leave the time out to \
                     mute until unmuted"
                ),
            ));
        }
        let target = self.user_named(&username)?;
        if let Some(ai) = &self.shared.ai
            && crate::auth::name_key(ai.name()) == target.name_key
        {
            return Err(RequestError::new(
                ErrorCode::BadRequest,
                format!("the AI bot cannot be muted; /kick {} instead", ai.name()),
            ));
        }
        let reason = auth::clean_reason(reason);
        let until = secs.map(|s| now_millis().saturating_add(s * 1000));
        let muted = self.event_bytes(&Event::Muted {
            room,
            user: target.id,
            username: target.name.clone(),
            by: me.name.clone(),
            reason: reason.clone(),
            until,
        });
        let hub = self.shared.hub.clone();
        let user = target.id;
        self.shared
            .storage
            .writer
            .write_then(
                WriteOp::Mute {
                    room,
                    user,
                    by: me.id,
                    by_name: me.name.clone(),
                    reason,
                    until,
                },
                move |_| {
                    hub.set_mute(room, user, Some(until));
                    if let Some(frame) = muted {
                        hub.defer_broadcast(room, frame);
                    }
                },
            )
            .await?;
        let how_long = match secs {
            Some(secs) => format!("{secs} s"),
            None => "until unmuted".to_string(),
        };
        tracing::info!(room = %view.row.name, target = %target.name, by = %me.name, %how_long, "member muted");
        Ok(Response::Done)
    }

    pub(super) async fn unmute(
        &self,
        me: &UserRow,
        room: RoomId,
        username: String,
    ) -> RequestResult<Response> {
        let (view, _) =
            self.moderated_room(me, room, "only the owner or a moderator may unmute")?;
        let target = self.user_named(&username)?;
        let unmuted = self.event_bytes(&Event::Unmuted {
            room,
            user: target.id,
            username: target.name.clone(),
            by: me.name.clone(),
        });
        let hub = self.shared.hub.clone();
        let user = target.id;
        self.shared
            .storage
            .writer
            .write_then(
                WriteOp::Unmute {
                    room,
                    user,
                    by: me.id,
                },
                move |_| {
                    hub.set_mute(room, user, None);
                    if let Some(frame) = unmuted {
                        hub.defer_broadcast(room, frame);
                    }
                },
            )
            .await?;
        tracing::info!(room = %view.row.name, target = %target.name, by = %me.name, "member unmuted");
        Ok(Response::Done)
    }

    pub(super) async fn mutes(&self, me: &UserRow, room: RoomId) -> RequestResult<Response> {
        self.member_room(me, room)?;
        let now = now_millis();
        let mutes = self
            .shared
            .storage
            .reads
            .run(move |c| reads::mutes(c, room, now))
            .await?;
        Ok(Response::Mutes(mutes))
    }

    /// Refuses to post where I am muted, saying until when, or in a direct chat whose other
    /// account was deleted.
    pub(super) fn require_may_post(&self, view: &RoomView) -> RequestResult<()> {
        // A direct chat whose other account was deleted keeps its history to read, and nobody
        // is left to read what would be posted there. (Such a chat has one member and keeps
        // the deleted account's name; a chat with myself has one member and no name.)
        if view.row.kind == RoomKind::Direct && view.member_count < 2 && !view.row.name.is_empty() {
            return Err(RequestError::new(
                ErrorCode::Forbidden,
                format!(
                    "{}'s account was deleted; this chat is kept only to read",
                    view.row.name
                ),
            ));
        }
        let Some(until) = view.my_mute else {
            return Ok(());
        };
        let when = match until {
            Some(until) => format!("for {}", for_how_long(until, now_millis())),
            None => "until a moderator unmutes you".to_string(),
        };
        Err(RequestError::new(
            ErrorCode::Forbidden,
            format!("you are muted in #{} {when}", view.row.name),
        ))
    }
}
