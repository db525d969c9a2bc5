//! Messages and the ephemera around them: send, history, read markers, presence, typing.

use chatroom_protocol::codec::encode_frame;
use chatroom_protocol::{
    ErrorCode, Event, HistoryAnchor, MessageId, MessageKind, PresenceStatus, Response, RoomId,
    RoomKind, SentMessage, Seq, ServerFrame,
};
use std::time::{Duration, Instant};

use super::Conn;
use crate::ai::Job;
use crate::error::{RequestError, RequestResult};
use crate::storage::{Outcome, UserRow, WriteOp, reads, search};

/// Room for the frame header and page fields around a history page's messages.
const HISTORY_FRAME_OVERHEAD: usize = 4096;

impl Conn {
    /// Queues the message for storage and returns at once: the storage completion acknowledges
    /// it (after the commit) and broadcasts it. The connection meanwhile reads its next request,
    /// so a client may have many messages in flight and they share group commits.
    pub(super) async fn send_message(
        &mut self,
        me: &UserRow,
        room: RoomId,
        text: String,
    ) -> RequestResult<Option<Response>> {
        let (view, _) = self.member_room(me, room)?;
        self.require_may_post(&view)?;
        self.check_message_text(&text)?;
        let mention_keys = crate::auth::mentioned_name_keys(&text);
        let mentions = self.mentioned_members(me, room, &mention_keys);
        // Asking the AI bot is decided here, on the connection task, from the mentions already
        // parsed; the bot hears of it only once the message is committed.
        let ai = self
            .shared
            .ai
            .as_ref()
            .filter(|ai| ai.is_asked(&view, me.id, &mention_keys))
            .cloned();
        let direct = view.row.kind == RoomKind::Direct;
        let hub = self.shared.hub.clone();
        let outlet = self.outlet.clone();
        let max_frame = self.shared.config.limits.max_frame_bytes;
        let request_id = self.current_request;
        self.shared
            .storage
            .writer
            .submit(
                WriteOp::InsertMessage {
                    room,
                    sender: me.id,
                    sender_name: me.name.clone(),
                    kind: MessageKind::Text,
                    text,
                    mentions,
                },
                move |result| {
                    let result = match result {
                        Ok(Outcome::Message(message)) => {
                            let ack = SentMessage {
                                room,
                                id: message.id,
                                seq: message.seq,
                                ts: message.ts,
                            };
                            if let Some(ai) = &ai {
                                ai.submit(Job {
                                    room,
                                    direct,
                                    seq: message.seq,
                                    asker: message.sender,
                                    asker_name: message.sender_name.clone(),
                                    text: message.text.clone(),
                                });
                            }
                            if let Some(frame) = hub.encode_event(&Event::Message(message)) {
                                hub.defer_broadcast(room, frame);
                            }
                            Ok(Response::Sent(ack))
                        }
                        Ok(other) => Err(RequestError::Internal(format!(
                            "unexpected outcome {other:?}"
                        ))),
                        Err(e) => Err(RequestError::from(e)),
                    };
                    if let Err(RequestError::Internal(detail)) = &result {
                        tracing::error!(%detail, "storing a message failed");
                    }
                    let frame = ServerFrame::Response {
                        id: request_id,
                        result: result.map_err(|e| e.to_body()),
                    };
                    if let Ok(bytes) = encode_frame(&frame, max_frame) {
                        outlet.push(bytes);
                    }
                },
            )
            .await?;
        Ok(None)
    }

    /// Changes the text of a message I sent; the room hears the message as it is now.
    pub(super) async fn edit_message(
        &mut self,
        me: &UserRow,
        room: RoomId,
        seq: Seq,
        text: String,
    ) -> RequestResult<Response> {
        let (view, _) = self.member_room(me, room)?;
        self.require_may_post(&view)?;
        self.check_message_text(&text)?;
        let mention_keys = crate::auth::mentioned_name_keys(&text);
        let mentions = self.mentioned_members(me, room, &mention_keys);
        let hub = self.shared.hub.clone();
        self.shared
            .storage
            .writer
            .write_then(
                WriteOp::EditMessage {
                    room,
                    seq,
                    editor: me.id,
                    text,
                    mentions,
                },
                move |outcome| {
                    if let Outcome::Edited(Some(message)) = outcome
                        && let Some(frame) =
                            hub.encode_event(&Event::MessageEdited(message.clone()))
                    {
                        hub.defer_broadcast(room, frame);
                    }
                },
            )
            .await?;
        Ok(Response::Done)
    }

    /// The rules every message text follows, new or edited, and the rate limit they share.
    fn check_message_text(&mut self, text: &str) -> RequestResult<()> {
        if text.trim().is_empty() {
            return Err(RequestError::new(
                ErrorCode::MessageEmpty,
                "the message is empty",
            ));
        }
        // Newlines and tabs are text; any other control character (ESC above all) would reach
        // other people's terminals as a command.
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(RequestError::new(
                ErrorCode::BadRequest,
                "a message may not contain control characters other than newline and tab",
            ));
        }
        let max = self.shared.config.limits.max_message_chars as usize;
        let chars = text.chars().count();
        if chars > max {
            return Err(RequestError::new(
                ErrorCode::MessageTooLong,
                format!("the message has {chars} characters; the limit is {max}"),
            ));
        }
        if !self.messages.try_take() {
            return Err(RequestError::new(
                ErrorCode::RateLimited,
                "you are sending messages too fast; slow down",
            ));
        }
        Ok(())
    }

    /// The members of `room` other than me that `mention_keys` name.
    fn mentioned_members(
        &self,
        me: &UserRow,
        room: RoomId,
        mention_keys: &[String],
    ) -> Vec<chatroom_protocol::UserId> {
        if mention_keys.is_empty() {
            return Vec::new();
        }
        let mut ids = self.shared.hub.members_named(room, mention_keys);
        ids.retain(|id| *id != me.id);
        ids
    }

    pub(super) async fn history(
        &self,
        me: &UserRow,
        room: RoomId,
        anchor: HistoryAnchor,
        limit: u32,
    ) -> RequestResult<Response> {
        self.member_room(me, room)?;
        let limit = limit.clamp(1, self.shared.config.limits.max_history_page.max(1));
        let budget = (self.shared.config.limits.max_frame_bytes as usize)
            .saturating_sub(HISTORY_FRAME_OVERHEAD)
            .max(1024);
        let page = self
            .shared
            .storage
            .reads
            .run(move |c| reads::history(c, room, anchor, limit, budget))
            .await?;
        Ok(Response::History(page))
    }

    pub(super) async fn search(
        &self,
        me: &UserRow,
        query: String,
        room: Option<RoomId>,
        before: Option<MessageId>,
        limit: u32,
    ) -> RequestResult<Response> {
        if let Some(room) = room {
            self.member_room(me, room)?;
        }
        let expression = search::fts_expression(&query)
            .map_err(|e| RequestError::new(ErrorCode::BadRequest, e.to_string()))?;
        let limit = limit.clamp(1, self.shared.config.limits.max_history_page.max(1));
        let budget = (self.shared.config.limits.max_frame_bytes as usize)
            .saturating_sub(HISTORY_FRAME_OVERHEAD)
            .max(1024);
        if before.is_none() {
            // The index is brought up to date by the writer in the background; a search waits
            // for it, so that what was acknowledged before it asked is found (a bot that sends,
            // then searches). Later pages go further back, past what that caught up.
            self.shared
                .storage
                .writer
                .write(WriteOp::CatchUpSearchIndex)
                .await?;
        }
        let user = me.id;
        let page = self
            .shared
            .storage
            .reads
            .run(move |c| search::search(c, user, &expression, room, before, limit, budget))
            .await?;
        Ok(Response::SearchResults(page))
    }

    pub(super) async fn mark_read(
        &self,
        me: &UserRow,
        room: RoomId,
        seq: Seq,
    ) -> RequestResult<Response> {
        self.member_room(me, room)?;
        let hub = self.shared.hub.clone();
        let (user, conn) = (me.id, self.id);
        self.shared
            .storage
            .writer
            .write_then(WriteOp::MarkRead { room, user, seq }, move |outcome| {
                // Keep the user's other devices in step.
                if let Outcome::ReadMarker(seq) = outcome
                    && let Some(frame) = hub.encode_event(&Event::ReadMarker { room, seq: *seq })
                {
                    hub.send_to_user(user, Some(conn), &frame);
                }
            })
            .await?;
        Ok(Response::Done)
    }

    pub(super) fn set_presence(
        &self,
        me: &UserRow,
        status: PresenceStatus,
        message: Option<String>,
    ) -> RequestResult<Response> {
        let away = match status {
            PresenceStatus::Online => false,
            PresenceStatus::Away => true,
            PresenceStatus::Offline => {
                return Err(RequestError::new(
                    ErrorCode::BadRequest,
                    "offline is not a status one sets; log out instead",
                ));
            }
        };
        let message = message
            .map(|m| {
                m.chars()
                    .filter(|c| !c.is_control())
                    .take(128)
                    .collect::<String>()
            })
            .filter(|m| !m.is_empty());
        self.shared.hub.set_away(me.id, away, message);
        Ok(Response::Done)
    }

    pub(super) fn typing(&mut self, me: &UserRow, room: RoomId) -> RequestResult<Response> {
        let (view, _) = self.member_room(me, room)?;
        if view.my_mute.is_some() {
            // Nothing they type can be sent: not worth telling the room.
            return Ok(Response::Done);
        }
        let interval =
            Duration::from_millis(u64::from(self.shared.config.limits.typing_interval_ms));
        let now = Instant::now();
        let due = self
            .typing_sent
            .get(&room)
            .is_none_or(|last| now.duration_since(*last) >= interval);
        if due {
            if self.typing_sent.len() > 256 {
                self.typing_sent
                    .retain(|_, t| now.duration_since(*t) < interval);
            }
            self.typing_sent.insert(room, now);
            let event = Event::Typing {
                room,
                user: me.id,
                username: me.name.clone(),
            };
            if let Some(frame) = self.event_bytes(&event) {
                self.shared.hub.broadcast_except(room, me.id, &frame);
            }
        }
        Ok(Response::Done)
    }
}
