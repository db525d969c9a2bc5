//! How the bot speaks: stored messages (answers and notices) go through the storage writer like
//! anyone's, so they are in history and fan out after the commit; streamed drafts are ephemeral
//! events pushed straight to the room's members.

use chatroom_protocol::{Draft, Event, MessageKind, RoomId};

use super::Inner;
use crate::storage::{Outcome, WriteOp};

/// Sends the draft's text so far to the room (`text` is clean: the answer filters it).
pub(super) fn draft(inner: &Inner, room: RoomId, draft: u64, text: &str) {
    let event = Event::DraftUpdated(Draft {
        room,
        draft,
        sender: inner.bot.id,
        sender_name: inner.bot.name.clone(),
        text: text.to_string(),
    });
    if let Some(frame) = inner.hub.encode_event(&event) {
        inner.hub.broadcast(room, &frame);
    }
}

/// Tells the room a draft is over without a stored message.
pub(super) fn abandon_draft(inner: &Inner, room: RoomId, draft: u64) {
    if let Some(frame) = inner.hub.encode_event(&Event::DraftEnded {
        room,
        draft,
        seq: None,
    }) {
        inner.hub.broadcast(room, &frame);
    }
}

/// A short system notice from the bot (rate limits, failures, "busy").
pub(super) async fn notice(inner: &Inner, room: RoomId, text: String) {
    post(inner, room, MessageKind::System, text, None).await;
}

/// Stores a message from the bot; once committed it goes to the room as an ordinary message,
/// followed by the end of `draft` (if the message finishes one).
pub(super) async fn post(
    inner: &Inner,
    room: RoomId,
    kind: MessageKind,
    text: String,
    draft: Option<u64>,
) {
    if !inner.is_member(room) {
        // Removed from the room (kicked while answering): it no longer speaks there.
        if let Some(draft) = draft {
            abandon_draft(inner, room, draft);
        }
        return;
    }
    // Stored text holds no control characters but newline and tab, whoever wrote it.
    let text = chatroom_ai::truncate_chars(&chatroom_ai::clean::clean(&text), inner.max_chars);
    let mentions = if kind == MessageKind::Text {
        let keys = crate::auth::mentioned_name_keys(&text);
        let mut ids = inner.hub.members_named(room, &keys);
        ids.retain(|id| *id != inner.bot.id);
        ids
    } else {
        Vec::new()
    };
    let hub = inner.hub.clone();
    let op = WriteOp::InsertMessage {
        room,
        sender: inner.bot.id,
        sender_name: inner.bot.name.clone(),
        kind,
        text,
        mentions,
    };
    let submitted = inner
        .storage
        .writer
        .submit(op, move |result| match result {
            Ok(Outcome::Message(message)) => {
                let seq = message.seq;
                if let Some(frame) = hub.encode_event(&Event::Message(message)) {
                    hub.defer_broadcast(room, frame);
                }
                if let Some(draft) = draft
                    && let Some(frame) = hub.encode_event(&Event::DraftEnded {
                        room,
                        draft,
                        seq: Some(seq),
                    })
                {
                    hub.defer_broadcast(room, frame);
                }
            }
            other => {
                tracing::error!(outcome = ?other.map(|_| ()), "storing an AI message failed");
                if let Some(draft) = draft
                    && let Some(frame) = hub.encode_event(&Event::DraftEnded {
                        room,
                        draft,
                        seq: None,
                    })
                {
                    hub.broadcast(room, &frame);
                }
            }
        })
        .await;
    if submitted.is_err() {
        tracing::warn!("the AI bot could not post: storage is shut down");
    }
}
