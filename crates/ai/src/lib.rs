//! # chatroom-ai
//!
//! The language side of the Chat-Room AI bot, with no knowledge of sockets, rooms or storage:
//! a [`Prompt`] goes in (system prompt, recent messages with sender names, the question, and a
//! few facts about the room), and a [`Reply`] comes out — a stream of text deltas that the
//! caller shows as they arrive and stores once complete.
//!
//! Backends ([`Backend`]):
//! - [`builtin`]: the offline default. Honest about what it is: `help`, `summary [N]` (an
//!   extractive summary), `who`, `stats`, and for anything else an explanation of how to
//!   connect a real model.
//! - [`openai`]: any OpenAI-compatible Chat Completions endpoint with streaming (SSE): a LAN
//!   Ollama, llama.cpp's server, vLLM, or a hosted service. HTTP over rustls.
//!
//! Modules, one job each:
//! - [`prompt`]: what a question carries.
//! - [`builtin`]: the offline assistant; [`summary`]: its extractive summariser.
//! - [`openai`]: the HTTP client and its timeouts; [`sse`]: the sans-IO stream parser.
//! - [`clean`]: model text made fit for a room (no control characters but newline and tab).
//!
//! Secrets: the API key lives in an [`openai::ApiKey`], whose `Debug` prints `***` and which
//! has no `Display`; no error of this crate carries it, or any text from the HTTP library.

#![deny(missing_docs)]

pub mod builtin;
pub mod clean;
pub mod openai;
pub mod prompt;
pub mod sse;
pub mod summary;

use std::collections::VecDeque;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use prompt::{ContextMessage, MemberFact, Presence, Prompt, RoomFacts};

/// The system's own words about a transport failure ("Connection refused (os error 111)"):
/// for the server's log, never in a room (see [`AiError::detail`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Detail(pub String);

impl AiError {
    /// The underlying error behind [`AiError::Connect`] and [`AiError::Transport`], for the
    /// log; it holds neither the API key nor a response body.
    pub fn detail(&self) -> Option<&str> {
        match self {
            AiError::Connect(Detail(d)) | AiError::Transport(Detail(d)) if !d.is_empty() => Some(d),
            _ => None,
        }
    }
}

/// Why a reply failed. The messages are short, meant for a chat room, and never contain the
/// API key or the endpoint's response body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AiError {
    /// The configuration cannot work (a bad endpoint URL, say).
    #[error("the AI is misconfigured: {0}")]
    Config(String),
    /// The model server could not be reached.
    #[error("cannot reach the model server")]
    Connect(Detail),
    /// The model server answered with an HTTP error status.
    #[error("the model server answered HTTP {0}")]
    Status(u16),
    /// The model server reported an error inside the stream.
    #[error("the model server reported an error")]
    Api,
    /// The response was not the Chat Completions format.
    #[error("the model server sent something that is not a chat completion")]
    Malformed,
    /// No first token within the first-token timeout.
    #[error("the model did not start answering in time")]
    FirstTokenTimeout,
    /// The stream stopped moving (no token within the first-token timeout after the last).
    #[error("the model stopped answering midway")]
    Stalled,
    /// The answer took longer than the total timeout.
    #[error("the model took too long to answer")]
    TotalTimeout,
    /// The connection broke, or the stream ended before the answer was complete.
    #[error("the connection to the model server broke")]
    Transport(Detail),
    /// The response exceeded the size bound.
    #[error("the model's answer was too large")]
    TooLarge,
}

/// A backend: where answers come from.
#[derive(Debug)]
pub enum Backend {
    /// The offline assistant.
    Builtin(builtin::Builtin),
    /// An OpenAI-compatible endpoint.
    OpenAi(Box<openai::OpenAi>),
}

impl Backend {
    /// A short name: `builtin` or `openai`.
    pub fn kind(&self) -> &'static str {
        match self {
            Backend::Builtin(_) => "builtin",
            Backend::OpenAi(_) => "openai",
        }
    }

    /// The model name (the built-in assistant calls itself `extractive`).
    pub fn model(&self) -> &str {
        match self {
            Backend::Builtin(_) => "extractive",
            Backend::OpenAi(o) => o.model(),
        }
    }

    /// Extra lines for `@ai help` describing what this backend understands.
    pub fn help(&self) -> &'static str {
        match self {
            Backend::Builtin(_) => builtin::COMMANDS_HELP,
            Backend::OpenAi(_) => "Ask anything; I see the room's recent messages.",
        }
    }

    /// Starts answering `prompt`. Must be called inside a tokio runtime (a network backend
    /// spawns its request there). Dropping the [`Reply`] cancels the request.
    pub fn ask(&self, prompt: Prompt) -> Reply {
        match self {
            Backend::Builtin(b) => Reply::ready(b.answer(&prompt)),
            Backend::OpenAi(o) => o.ask(prompt),
        }
    }
}

/// A reply being produced: text deltas in order, then the end (`None`), or an error.
#[derive(Debug)]
pub struct Reply {
    inner: ReplyInner,
}

#[derive(Debug)]
enum ReplyInner {
    Ready(VecDeque<String>),
    Streaming {
        deltas: mpsc::Receiver<Result<String, AiError>>,
        task: JoinHandle<()>,
    },
}

impl Reply {
    /// A reply whose text is known already, delivered in the given pieces.
    pub fn ready(pieces: Vec<String>) -> Self {
        Self {
            inner: ReplyInner::Ready(pieces.into()),
        }
    }

    /// A reply fed by a task through a channel (the task is aborted when the reply is dropped).
    pub fn streaming(
        deltas: mpsc::Receiver<Result<String, AiError>>,
        task: JoinHandle<()>,
    ) -> Self {
        Self {
            inner: ReplyInner::Streaming { deltas, task },
        }
    }

    /// The next delta; `None` once the reply is complete. After an error, `None` follows.
    pub async fn next(&mut self) -> Option<Result<String, AiError>> {
        match &mut self.inner {
            ReplyInner::Ready(pieces) => pieces.pop_front().map(Ok),
            ReplyInner::Streaming { deltas, .. } => deltas.recv().await,
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let ReplyInner::Streaming { task, .. } = &self.inner {
            task.abort();
        }
    }
}

/// Cuts `text` to at most `max_chars` characters, marking the cut with `…`.
pub fn truncate_chars(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_is_by_characters() {
        assert_eq!(truncate_chars("héllo", 10), "héllo");
        assert_eq!(truncate_chars("你好世界", 3), "你好…");
        assert_eq!(truncate_chars("abc", 3), "abc");
    }

    #[tokio::test]
    async fn a_ready_reply_yields_its_pieces_then_ends() {
        let mut reply = Reply::ready(vec!["a".into(), "b".into()]);
        assert_eq!(reply.next().await, Some(Ok("a".into())));
        assert_eq!(reply.next().await, Some(Ok("b".into())));
        assert_eq!(reply.next().await, None);
    }
}
