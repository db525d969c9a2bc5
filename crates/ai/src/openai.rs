//! Any OpenAI-compatible Chat Completions endpoint, streamed: a LAN Ollama
//! (`http://host:11434/v1`), llama.cpp's server (`http://host:8080/v1`), vLLM, or a hosted API.
//!
//! The request is `POST {endpoint}/chat/completions` with `stream: true`; the answer is read
//! as server-sent events (see [`crate::sse`]) and handed out delta by delta through a bounded
//! channel. Everything is bounded: connecting ([`Timeouts::connect`]), the wait for the first
//! token and between tokens ([`Timeouts::first_token`]), the whole answer ([`Timeouts::total`]),
//! and the bytes read ([`OpenAiConfig::max_response_bytes`]).
//!
//! The conversation is sent as chat messages: the system prompt first, then the room's recent
//! messages — the bot's own as `assistant`, everyone else's as `user` prefixed with their name —
//! then the question.

use serde::Serialize;
use std::fmt;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::prompt::Prompt;
use crate::sse::{Decoder, Event};
use crate::{AiError, Detail, Reply};

/// Deltas buffered between the HTTP reader and the consumer.
const DELTA_BUFFER: usize = 64;
/// Longest SSE line accepted.
const MAX_LINE: usize = 256 * 1024;

/// An API key. Its `Debug` prints `***`; it has no `Display`, so it cannot slip into a log
/// line or a message by formatting.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key (surrounding whitespace, such as a file's trailing newline, is dropped).
    /// An empty key is `None`.
    pub fn new(key: &str) -> Option<Self> {
        let key = key.trim();
        (!key.is_empty()).then(|| Self(key.to_string()))
    }

    /// The key itself, for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// How long each stage may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// To establish the connection (TCP and TLS).
    pub connect: Duration,
    /// From sending the request to the first token, and then between tokens.
    pub first_token: Duration,
    /// From sending the request to the end of the answer.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            first_token: Duration::from_secs(30),
            total: Duration::from_secs(120),
        }
    }
}

/// Where the model is and how to talk to it.
#[derive(Clone, Debug)]
pub struct OpenAiConfig {
    /// The API's base URL, e.g. `http://127.0.0.1:11434/v1`; `/chat/completions` is appended
    /// unless the URL already ends with it.
    pub endpoint: String,
    /// The model name, e.g. `llama3.2`.
    pub model: String,
    /// Sent as a bearer token when set.
    pub api_key: Option<ApiKey>,
    /// Stage timeouts.
    pub timeouts: Timeouts,
    /// Most bytes read from one response.
    pub max_response_bytes: usize,
    /// Sampling temperature, if the operator wants one.
    pub temperature: Option<f32>,
}

impl OpenAiConfig {
    /// A configuration with default timeouts and bounds.
    pub fn new(endpoint: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            model: model.into(),
            api_key: None,
            timeouts: Timeouts::default(),
            max_response_bytes: 4 * 1024 * 1024,
            temperature: None,
        }
    }
}

/// The OpenAI-compatible backend.
#[derive(Debug)]
pub struct OpenAi {
    http: reqwest::Client,
    url: reqwest::Url,
    config: OpenAiConfig,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    stream: bool,
    messages: Vec<ChatMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
}

/// One message of the conversation sent to the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    /// The text.
    pub content: String,
}

impl OpenAi {
    /// Checks the endpoint URL and builds the HTTP client.
    pub fn new(config: OpenAiConfig) -> Result<Self, AiError> {
        let base = config.endpoint.trim().trim_end_matches('/');
        let full = if base.ends_with("/chat/completions") {
            base.to_string()
        } else {
            format!("{base}/chat/completions")
        };
        let url = reqwest::Url::parse(&full)
            .map_err(|_| AiError::Config("the endpoint is not a URL".into()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(AiError::Config(
                "the endpoint must be http:// or https://".into(),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(AiError::Config(
                "put credentials in the API key, not in the endpoint URL".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeouts.connect)
            .user_agent(concat!("chatroom-ai/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| AiError::Config("cannot set up the HTTP client".into()))?;
        Ok(Self { http, url, config })
    }

    /// The model name.
    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// The full URL requests go to.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Starts the request on the current tokio runtime.
    pub fn ask(&self, prompt: Prompt) -> Reply {
        let (tx, rx) = mpsc::channel(DELTA_BUFFER);
        let body = ChatRequest {
            model: &self.config.model,
            stream: true,
            messages: messages(&prompt),
            temperature: self.config.temperature,
        };
        let body = match serde_json::to_vec(&body) {
            Ok(body) => body,
            Err(_) => {
                let _ = tx.try_send(Err(AiError::Config("cannot encode the request".into())));
                return Reply::streaming(rx, tokio::spawn(async {}));
            }
        };
        let mut request = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .body(body);
        if let Some(key) = &self.config.api_key {
            // bearer_auth marks the header sensitive, so the HTTP stack never prints it.
            request = request.bearer_auth(key.expose());
        }
        let timeouts = self.config.timeouts;
        let max_bytes = self.config.max_response_bytes;
        let task = tokio::spawn(async move {
            if let Err(e) = stream(request, timeouts, max_bytes, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        Reply::streaming(rx, task)
    }
}

/// The chat messages for `prompt`.
pub fn messages(prompt: &Prompt) -> Vec<ChatMessage> {
    let mut system = prompt.system.trim().to_string();
    let place = if prompt.room.direct {
        format!("a direct chat with {}", prompt.asker)
    } else {
        format!("the chat room #{}", prompt.room.name)
    };
    if !system.is_empty() {
        system.push_str("\n\n");
    }
    system.push_str(&format!(
        "You are {}, a member of {place}. Messages from people are given as \"name: text\".",
        prompt.bot_name
    ));
    let mut out = vec![ChatMessage {
        role: "system",
        content: system,
    }];
    for m in &prompt.history {
        if m.from_bot {
            out.push(ChatMessage {
                role: "assistant",
                content: m.text.clone(),
            });
        } else {
            out.push(ChatMessage {
                role: "user",
                content: format!("{}: {}", m.sender, m.text),
            });
        }
    }
    out.push(ChatMessage {
        role: "user",
        content: format!("{}: {}", prompt.asker, prompt.question),
    });
    out
}

fn transport_error(e: &reqwest::Error) -> AiError {
    // The library's own text may name the URL; ours names only what happened. Its causes
    // ("Connection refused") go along as the detail, for the log.
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if !detail.is_empty() {
            detail.push_str(": ");
        }
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    if e.is_connect() {
        AiError::Connect(Detail(detail))
    } else {
        AiError::Transport(Detail(detail))
    }
}

async fn stream(
    request: reqwest::RequestBuilder,
    timeouts: Timeouts,
    max_bytes: usize,
    tx: &mpsc::Sender<Result<String, AiError>>,
) -> Result<(), AiError> {
    let started = Instant::now();
    let deadline = started + timeouts.total;
    let first_deadline = (started + timeouts.first_token).min(deadline);
    let timed_out = |now: Instant, got_first: bool| {
        if now >= deadline {
            AiError::TotalTimeout
        } else if got_first {
            AiError::Stalled
        } else {
            AiError::FirstTokenTimeout
        }
    };
    let mut response = match tokio::time::timeout_at(first_deadline, request.send()).await {
        Err(_) => return Err(timed_out(Instant::now(), false)),
        Ok(Err(e)) => return Err(transport_error(&e)),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if !status.is_success() {
        return Err(AiError::Status(status.as_u16()));
    }
    let whole_json = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut decoder = Decoder::new(MAX_LINE);
    let mut body = Vec::new();
    let mut read = 0usize;
    let mut got_first = false;
    let mut last_token = started;
    let mut finished = false;
    loop {
        // Measured from the last text, not the last bytes: keep-alive comments and empty
        // deltas from a model that has stopped producing do not hold the answer open.
        let wait_until = if got_first {
            (last_token + timeouts.first_token).min(deadline)
        } else {
            first_deadline
        };
        let chunk = match tokio::time::timeout_at(wait_until, response.chunk()).await {
            Err(_) => return Err(timed_out(Instant::now(), got_first)),
            Ok(Err(e)) => return Err(transport_error(&e)),
            Ok(Ok(chunk)) => chunk,
        };
        let Some(bytes) = chunk else {
            break;
        };
        read += bytes.len();
        if read > max_bytes {
            return Err(AiError::TooLarge);
        }
        if whole_json {
            body.extend_from_slice(&bytes);
            continue;
        }
        for event in decoder.push(&bytes)? {
            match event {
                Event::Delta(text) if text.is_empty() => {}
                Event::Delta(text) => {
                    got_first = true;
                    last_token = Instant::now();
                    if tx.send(Ok(text)).await.is_err() {
                        return Ok(()); // Nobody is listening any more.
                    }
                }
                Event::Finished => finished = true,
                Event::Done => return Ok(()),
            }
        }
    }
    if whole_json {
        let text = crate::sse::parse_whole(&body)?;
        let _ = tx.send(Ok(text)).await;
        return Ok(());
    }
    let mut done = false;
    for event in decoder.finish()? {
        match event {
            Event::Delta(text) if text.is_empty() => {}
            Event::Delta(text) => {
                if tx.send(Ok(text)).await.is_err() {
                    return Ok(());
                }
            }
            Event::Finished => finished = true,
            Event::Done => done = true,
        }
    }
    // A stream that closes after the model said it finished is complete; one that closes
    // before is cut short.
    if done || finished {
        Ok(())
    } else {
        Err(AiError::Transport(Detail(
            "the stream ended before the answer was complete".into(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::{ContextMessage, RoomFacts};

    #[test]
    fn keys_do_not_print() {
        let key = ApiKey::new(" sk-secret-123\n").expect("key");
        assert_eq!(key.expose(), "sk-secret-123");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        let config = OpenAiConfig {
            api_key: Some(key),
            ..OpenAiConfig::new("http://127.0.0.1:1/v1", "m")
        };
        assert!(!format!("{config:?}").contains("sk-secret"));
        assert_eq!(ApiKey::new("  "), None);
    }

    #[test]
    fn endpoints_are_checked_and_completed() {
        let ok =
            OpenAi::new(OpenAiConfig::new("http://10.0.0.5:11434/v1/", "llama3.2")).expect("valid");
        assert_eq!(ok.url(), "http://10.0.0.5:11434/v1/chat/completions");
        let full = OpenAi::new(OpenAiConfig::new(
            "https://api.example.invalid/v4/chat/completions",
            "glm",
        ))
        .expect("valid");
        assert_eq!(
            full.url(),
            "https://api.example.invalid/v4/chat/completions"
        );
        assert!(OpenAi::new(OpenAiConfig::new("not a url", "m")).is_err());
        assert!(OpenAi::new(OpenAiConfig::new("ftp://host/v1", "m")).is_err());
        assert!(OpenAi::new(OpenAiConfig::new("http://u:p@host/v1", "m")).is_err());
    }

    #[test]
    fn the_conversation_keeps_names_and_roles() {
        let prompt = Prompt {
            system: "Be brief.".into(),
            bot_name: "ai".into(),
            asker: "alice".into(),
            question: "what did bob say?".into(),
            history: vec![
                ContextMessage {
                    sender: "bob".into(),
                    text: "ship it".into(),
                    ts: 1,
                    from_bot: false,
                },
                ContextMessage {
                    sender: "ai".into(),
                    text: "Shipped.".into(),
                    ts: 2,
                    from_bot: true,
                },
            ],
            room: RoomFacts {
                name: "dev".into(),
                ..RoomFacts::default()
            },
        };
        let m = messages(&prompt);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].role, "system");
        assert!(m[0].content.starts_with("Be brief."));
        assert!(m[0].content.contains("#dev"));
        assert_eq!((m[1].role, m[1].content.as_str()), ("user", "bob: ship it"));
        assert_eq!(
            (m[2].role, m[2].content.as_str()),
            ("assistant", "Shipped.")
        );
        assert_eq!(
            (m[3].role, m[3].content.as_str()),
            ("user", "alice: what did bob say?")
        );
    }
}
