//! A sans-IO parser for the Chat Completions streaming format: server-sent events whose
//! `data:` lines each carry one JSON chunk, ending with `data: [DONE]`.
//!
//! Bytes go in as they arrive, split anywhere (even inside a UTF-8 character); [`Event`]s come
//! out. Each `data:` line is taken as one event, as every OpenAI-compatible server sends them;
//! comments (`:`), `event:`, `id:` and `retry:` lines and blank lines are skipped. A line longer
//! than the bound is an error, so a peer cannot make the buffer grow without limit.

use serde::Deserialize;

use crate::AiError;

/// Something the stream said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// More text of the answer.
    Delta(String),
    /// The model finished (a `finish_reason` was given); `[DONE]` may still follow.
    Finished,
    /// `data: [DONE]`: the stream is over.
    Done,
}

/// The parser's state: the unfinished last line.
#[derive(Debug)]
pub struct Decoder {
    line: Vec<u8>,
    max_line: usize,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

impl Decoder {
    /// A parser that refuses lines longer than `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        Self {
            line: Vec::new(),
            max_line,
        }
    }

    /// Feeds bytes; returns the events completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, AiError> {
        let mut events = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut self.line);
                parse_line(&line, &mut events)?;
            } else {
                if self.line.len() >= self.max_line {
                    return Err(AiError::TooLarge);
                }
                self.line.push(b);
            }
        }
        Ok(events)
    }

    /// The stream ended: parses a last line that had no newline.
    pub fn finish(&mut self) -> Result<Vec<Event>, AiError> {
        let line = std::mem::take(&mut self.line);
        let mut events = Vec::new();
        parse_line(&line, &mut events)?;
        Ok(events)
    }
}

/// Parses one line, adding what it says to `events`.
fn parse_line(line: &[u8], events: &mut Vec<Event>) -> Result<(), AiError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(data) = line.strip_prefix(b"data:") else {
        // Blank lines, comments, and fields we do not use.
        return Ok(());
    };
    let data = data.strip_prefix(b" ").unwrap_or(data);
    if data == b"[DONE]" {
        events.push(Event::Done);
        return Ok(());
    }
    parse_chunk(data, events)
}

/// Parses one JSON chunk of a streamed completion: its text (if any), then [`Event::Finished`]
/// if it also carries a `finish_reason` — many servers send the last words and the reason in
/// one chunk.
fn parse_chunk(data: &[u8], events: &mut Vec<Event>) -> Result<(), AiError> {
    let chunk: Chunk = serde_json::from_slice(data).map_err(|_| AiError::Malformed)?;
    if chunk.error.is_some() {
        return Err(AiError::Api);
    }
    let mut text = String::new();
    let mut finished = false;
    for choice in chunk.choices {
        if let Some(content) = choice.delta.and_then(|d| d.content) {
            text.push_str(&content);
        }
        finished |= choice.finish_reason.is_some();
    }
    // Role announcements, usage reports, keep-alives: nothing to show, but still an event (the
    // stream is alive).
    if !text.is_empty() || !finished {
        events.push(Event::Delta(text));
    }
    if finished {
        events.push(Event::Finished);
    }
    Ok(())
}

/// The answer in a non-streamed completion (`choices[0].message.content`), for servers that
/// ignore `stream: true`.
pub fn parse_whole(body: &[u8]) -> Result<String, AiError> {
    #[derive(Deserialize)]
    struct Whole {
        #[serde(default)]
        choices: Vec<WholeChoice>,
        #[serde(default)]
        error: Option<serde_json::Value>,
    }
    #[derive(Deserialize)]
    struct WholeChoice {
        message: WholeMessage,
    }
    #[derive(Deserialize)]
    struct WholeMessage {
        #[serde(default)]
        content: Option<String>,
    }
    let whole: Whole = serde_json::from_slice(body).map_err(|_| AiError::Malformed)?;
    if whole.error.is_some() {
        return Err(AiError::Api);
    }
    whole
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message.content)
        .ok_or(AiError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(text: &str) -> String {
        format!(
            "data: {}\n\n",
            serde_json::json!({"choices":[{"index":0,"delta":{"content":text}}]})
        )
    }

    #[test]
    fn deltas_arrive_in_order_across_arbitrary_splits() {
        let stream = format!(
            ": keep-alive\n\ndata: {{\"choices\":[{{\"delta\":{{\"role\":\"assistant\"}}}}]}}\n\n{}{}{}data: {{\"choices\":[{{\"delta\":{{}},\"finish_reason\":\"stop\"}}]}}\r\n\r\ndata: [DONE]\n\n",
            chunk("Hel"),
            chunk("lo, 世"),
            chunk("界")
        );
        let bytes = stream.as_bytes();
        // Every split point, including inside the multi-byte characters.
        for split in 0..bytes.len() {
            let mut d = Decoder::new(4096);
            let mut events = d.push(&bytes[..split]).expect("first half");
            events.extend(d.push(&bytes[split..]).expect("second half"));
            let text: String = events
                .iter()
                .filter_map(|e| match e {
                    Event::Delta(t) => Some(t.as_str()),
                    _ => None,
                })
                .collect();
            assert_eq!(text, "Hello, 世界");
            assert_eq!(events.last(), Some(&Event::Done));
            assert!(events.contains(&Event::Finished));
        }
    }

    #[test]
    fn bad_json_errors_and_in_stream_errors_are_reported() {
        let mut d = Decoder::new(4096);
        assert_eq!(d.push(b"data: {not json\n"), Err(AiError::Malformed));
        let mut d = Decoder::new(4096);
        assert_eq!(
            d.push(b"data: {\"error\":{\"message\":\"overloaded\"}}\n"),
            Err(AiError::Api)
        );
    }

    #[test]
    fn long_lines_are_refused() {
        let mut d = Decoder::new(16);
        assert_eq!(d.push(&[b'x'; 17]), Err(AiError::TooLarge));
    }

    #[test]
    fn a_last_line_without_newline_counts() {
        let mut d = Decoder::new(64);
        assert!(d.push(b"data: [DONE]").expect("push").is_empty());
        assert_eq!(d.finish(), Ok(vec![Event::Done]));
    }

    #[test]
    fn a_chunk_with_text_and_a_finish_reason_gives_both() {
        let line = br#"data: {"choices":[{"delta":{"content":"42."},"finish_reason":"stop"}]}"#;
        // With its newline, then the stream closes (no [DONE]).
        let mut d = Decoder::new(4096);
        let mut events = d.push(line).expect("push");
        events.extend(d.push(b"\n\n").expect("push"));
        events.extend(d.finish().expect("finish"));
        assert_eq!(events, [Event::Delta("42.".into()), Event::Finished]);
        // As the last line, without a newline.
        let mut d = Decoder::new(4096);
        assert!(d.push(line).expect("push").is_empty());
        assert_eq!(
            d.finish(),
            Ok(vec![Event::Delta("42.".into()), Event::Finished])
        );
    }

    #[test]
    fn whole_completions_parse() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":"hi"}}]}"#;
        assert_eq!(parse_whole(body), Ok("hi".into()));
        assert_eq!(parse_whole(b"{}"), Err(AiError::Malformed));
    }
}
