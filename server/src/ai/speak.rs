//! How the bot speaks: stored messages (answers and notices) go through the storage writer like
//! anyone's, so they are in history and fan out after the commit; streamed drafts are ephemeral
//! events pushed straight to the room's members.

use chatroom_protocol::{Draft, Event, Message, MessageKind, RoomId};

use super::Inner;
use crate::hub::Hub;
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

/// The storage op for a message from the bot: clean, within the limit, with its mentions.
fn insert(inner: &Inner, room: RoomId, kind: MessageKind, text: String) -> WriteOp {
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
    WriteOp::InsertMessage {
        room,
        sender: inner.bot.id,
        sender_name: inner.bot.name.clone(),
        kind,
        text,
        mentions,
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
    let hub = inner.hub.clone();
    let op = insert(inner, room, kind, text);
    let submitted = inner
        .storage
        .writer
        .submit(op, move |result| match result {
            Ok(Outcome::Message(message)) => announce_stored(&hub, room, message, draft),
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

/// Once `message` is committed: it goes to the room, then the end of the `draft` it finishes
/// (with the batch's other events).
fn announce_stored(hub: &Hub, room: RoomId, message: Message, draft: Option<u64>) {
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

/// Why a part of a reply was not stored.
#[derive(Debug)]
pub(super) enum PartLost {
    /// The bot is no longer a member of the room.
    Removed,
    /// Storage refused the message or is shut down (logged here).
    Storage,
}

/// Stores one part of a reply that continues in another message, finishing `draft`, and waits
/// until it is committed and sent: the room has the part and the end of its draft before the
/// next part's first draft. On failure the draft is left open for the caller to withdraw.
pub(super) async fn post_part(
    inner: &Inner,
    room: RoomId,
    text: String,
    draft: u64,
) -> Result<(), PartLost> {
    if !inner.is_member(room) {
        return Err(PartLost::Removed);
    }
    let (stored_tx, stored) = tokio::sync::oneshot::channel();
    let hub = inner.hub.clone();
    let op = insert(inner, room, MessageKind::Text, text);
    let submitted = inner
        .storage
        .writer
        .submit(op, move |result| match result {
            Ok(Outcome::Message(message)) => {
                announce_stored(&hub, room, message, Some(draft));
                // Sent now rather than at the end of the batch: the answer's next draft,
                // sent as soon as this returns, must not overtake them.
                hub.flush_deferred();
                let _ = stored_tx.send(true);
            }
            other => {
                tracing::error!(outcome = ?other.map(|_| ()), "storing an AI message failed");
                let _ = stored_tx.send(false);
            }
        })
        .await;
    if submitted.is_err() {
        tracing::warn!("the AI bot could not post: storage is shut down");
        return Err(PartLost::Storage);
    }
    match stored.await {
        Ok(true) => Ok(()),
        _ => Err(PartLost::Storage),
    }
}
