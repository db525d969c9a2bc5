//! One answer, start to finish, holding one of the bot's slots: the circuit breaker's
//! admission, the context read from storage, the backend's stream shown to the room as drafts
//! (at most one update per `draft_interval_ms`), then the reply stored once — or, on failure,
//! the draft withdrawn and a short notice posted. The model's text is cleaned as it streams
//! (no control characters but newline and tab reach the room), and an answer stops, its draft
//! withdrawn, once the bot is no longer a member of the room (kicked mid-answer).
//!
//! A reply longer than the server's longest message continues in further messages, up to
//! `max_reply_messages` (see [`super::split`] for where): each part is a draft of its own,
//! stored when the next begins; the last one allowed is cut as before. Parts already stored
//! stay when the answer fails later; only the draft in progress is withdrawn.

use chatroom_ai::clean::ControlFilter;
use chatroom_ai::{AiError, ContextMessage, MemberFact, Presence, Prompt, Reply, RoomFacts};
use chatroom_protocol::{MessageKind, PresenceStatus};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::guard::Admission;
use super::{Inner, Job, Refusal, question_of, speak, split, unavailable_text};
use crate::storage::ai::context;

/// Why an answer did not come.
#[derive(Debug)]
enum Failure {
    /// The backend failed.
    Ai(AiError),
    /// The model said nothing.
    Empty,
    /// The server is shutting down.
    Shutdown,
    /// The bot is no longer a member of the room.
    Removed,
    /// A part of the reply could not be stored.
    Storage,
}

impl Failure {
    /// The underlying error, for the log only (see [`AiError::detail`]).
    fn detail(&self) -> &str {
        match self {
            Failure::Ai(e) => e.detail().unwrap_or("-"),
            _ => "-",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Ai(e) => e.fmt(f),
            Failure::Empty => f.write_str("the model returned an empty answer"),
            Failure::Shutdown => f.write_str("the server is shutting down"),
            Failure::Removed => f.write_str("the bot was removed from the room"),
            Failure::Storage => f.write_str("the answer could not be stored"),
        }
    }
}

/// Answers `job`; the slot is released when this returns.
pub(super) async fn run(inner: Arc<Inner>, job: Job, _slot: OwnedSemaphorePermit) {
    if !inner.is_member(job.room) {
        return; // Removed from the room while the question waited.
    }
    let admitted = inner.breaker().admit(std::time::Instant::now());
    if let Admission::Unavailable { retry_in } = admitted {
        let text = unavailable_text(&inner.bot.name, retry_in);
        inner
            .refuse(job.room, job.asker, Refusal::Unavailable, text)
            .await;
        return;
    }
    let prompt = match prompt(&inner, &job).await {
        Ok(prompt) => prompt,
        Err(detail) => {
            inner.breaker().abandoned();
            tracing::error!(%detail, "reading the AI context failed");
            let text = format!("{}: I could not read this room's history.", inner.bot.name);
            speak::notice(&inner, job.room, text).await;
            return;
        }
    };
    let mut parts = Parts::new(&inner);
    let mut reply = inner.backend.ask(prompt);
    let result = stream(&inner, &job, &mut parts, &mut reply).await;
    drop(reply); // Cancels the request if it is still going.
    let draft = parts.draft;
    match result {
        Ok(text) if text.is_empty() => {
            // The parts already stored hold the whole reply; the next draft was never shown.
            inner.breaker().success();
        }
        Ok(text) => {
            inner.breaker().success();
            speak::post(&inner, job.room, MessageKind::Text, text, Some(draft)).await;
        }
        Err(Failure::Shutdown | Failure::Removed | Failure::Storage) => {
            inner.breaker().abandoned();
            speak::abandon_draft(&inner, job.room, draft);
        }
        Err(failure) => {
            let opened = {
                let mut breaker = inner.breaker();
                breaker.failure(std::time::Instant::now())
            };
            tracing::warn!(
                error = %failure,
                cause = %failure.detail(),
                backend = inner.backend.kind(),
                endpoint = super::endpoint(&inner.backend).unwrap_or("-"),
                breaker_opened = opened,
                "the AI could not answer"
            );
            speak::abandon_draft(&inner, job.room, draft);
            let mut text = if parts.posted == 0 {
                format!(
                    "{}: no answer for {} — {failure}.",
                    inner.bot.name, job.asker_name
                )
            } else {
                format!(
                    "{}: the answer for {} stops here — {failure}.",
                    inner.bot.name, job.asker_name
                )
            };
            if opened {
                text.push_str(&format!(
                    " Pausing the AI for {} s after repeated failures.",
                    Duration::from_millis(inner.config.breaker_cooldown_ms)
                        .as_secs_f32()
                        .ceil() as u64
                ));
            }
            speak::notice(&inner, job.room, text).await;
        }
    }
}

/// Where a reply is in its messages.
struct Parts {
    /// The draft of the part being written.
    draft: u64,
    /// Parts stored so far.
    posted: usize,
    /// Most parts.
    most: usize,
}

impl Parts {
    fn new(inner: &Inner) -> Self {
        Self {
            draft: inner.next_draft.fetch_add(1, Ordering::Relaxed),
            posted: 0,
            most: (inner.config.max_reply_messages as usize).max(1),
        }
    }

    /// Whether the part being written is the last one allowed.
    fn at_last(&self) -> bool {
        self.posted + 1 >= self.most
    }

    /// Stores `text` as the part being written, and starts the next.
    async fn post(&mut self, inner: &Inner, job: &Job, text: &str) -> Result<(), Failure> {
        speak::post_part(inner, job.room, text.to_string(), self.draft)
            .await
            .map_err(|lost| match lost {
                speak::PartLost::Removed => Failure::Removed,
                speak::PartLost::Storage => Failure::Storage,
            })?;
        self.posted += 1;
        self.draft = inner.next_draft.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Reads the reply, sending drafts as it grows and storing each part that fills a message;
/// returns the text of the last part (empty if the stored parts hold it all), cut to the
/// server's message limit if it is the last one allowed.
async fn stream(
    inner: &Inner,
    job: &Job,
    parts: &mut Parts,
    reply: &mut Reply,
) -> Result<String, Failure> {
    let interval = Duration::from_millis(inner.config.draft_interval_ms.max(1));
    let max = inner.max_chars;
    let mut filter = ControlFilter::new();
    let mut text = String::new();
    let mut chars = 0usize;
    let mut last_sent: Option<Instant> = None;
    let mut flush_at: Option<Instant> = None;
    loop {
        let due = flush_at;
        tokio::select! {
            biased;
            _ = inner.shutdown.cancelled() => return Err(Failure::Shutdown),
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                if !inner.is_member(job.room) {
                    return Err(Failure::Removed);
                }
                // A part just stored may have left nothing of the next one yet.
                if !text.is_empty() {
                    speak::draft(inner, job.room, parts.draft, &text);
                    last_sent = Some(Instant::now());
                }
                flush_at = None;
            }
            next = reply.next() => match next {
                None => break,
                Some(Err(e)) => return Err(Failure::Ai(e)),
                Some(Ok(delta)) => {
                    if !inner.is_member(job.room) {
                        return Err(Failure::Removed);
                    }
                    let cleaned = filter.push(&delta);
                    // A part starts with its first words, not with the space before them.
                    let piece = if text.is_empty() {
                        cleaned.trim_start()
                    } else {
                        cleaned.as_str()
                    };
                    text.push_str(piece);
                    chars += piece.chars().count();
                    while chars > max && !parts.at_last() {
                        // Inside a code block, the rest starts by reopening it: so do
                        // its drafts.
                        let Some(split) = split::split_off(&text, max) else {
                            break;
                        };
                        parts.post(inner, job, &split.message).await?;
                        text = split.rest;
                        chars = text.chars().count();
                    }
                    if chars > max {
                        // Keep one character beyond the limit, so the cut is visible.
                        text = text.chars().take(max + 1).collect();
                        break;
                    }
                    if flush_at.is_none() && !text.trim().is_empty() {
                        let now = Instant::now();
                        match last_sent {
                            // The first words go out at once; later ones at most every interval.
                            Some(t) if now < t + interval => flush_at = Some(t + interval),
                            _ => {
                                speak::draft(inner, job.room, parts.draft, &text);
                                last_sent = Some(now);
                            }
                        }
                    }
                }
            },
        }
    }
    if !inner.is_member(job.room) {
        return Err(Failure::Removed);
    }
    let text = split::cut_last(&text, max);
    if text.is_empty() && parts.posted == 0 {
        return Err(Failure::Empty);
    }
    Ok(text)
}

/// The prompt for `job`: the system prompt, the room's recent messages from storage (after its
/// `/ai clear` point, within the count and character budget), the question, and the room.
async fn prompt(inner: &Inner, job: &Job) -> Result<Prompt, String> {
    let (room, before) = (job.room, job.seq);
    let limit = inner.config.context_messages;
    let budget = inner.config.context_chars as usize;
    let rows = inner
        .storage
        .reads
        .run(move |c| context(c, room, before, limit, budget))
        .await
        .map_err(|e| e.to_string())?;
    let bot = &inner.bot;
    let history = rows
        .into_iter()
        .map(|r| ContextMessage {
            from_bot: r.sender == bot.id,
            sender: r.sender_name,
            text: r.text,
            ts: r.ts,
        })
        .collect();
    let view = inner.hub.room_view(room, bot.id);
    let members = inner
        .hub
        .members(room)
        .into_iter()
        .map(|m| MemberFact {
            name: m.user.username,
            presence: match m.status {
                PresenceStatus::Online => Presence::Online,
                PresenceStatus::Away => Presence::Away,
                PresenceStatus::Offline => Presence::Offline,
            },
        })
        .collect();
    Ok(Prompt {
        system: inner.config.system_prompt.clone(),
        bot_name: bot.name.clone(),
        asker: job.asker_name.clone(),
        question: question_of(&job.text, &bot.name_key),
        history,
        room: RoomFacts {
            name: if job.direct {
                job.asker_name.clone()
            } else {
                view.map(|v| v.row.name).unwrap_or_default()
            },
            direct: job.direct,
            members,
            total_messages: job.seq,
        },
    })
}
