//! Full-text search: the query language, the search itself, and the indexer.
//!
//! Message text is indexed in an external-content FTS5 table, `messages_fts` (migration 7).
//! The writer thread indexes new messages in batches of its own, in a transaction that does
//! not wait for `fsync` (see [`Indexer`]), instead of in each message's transaction: indexing
//! there cut committed messages per second to a third (`ingest --senders 100`: 88 k/s →
//! 29 k/s). A message becomes searchable a moment after it is acknowledged — at once when the
//! server has time, within [`Indexer::BUSY_INTERVAL`] of load otherwise — and a search first
//! has the writer catch the index up, so it finds every message acknowledged before it.
//!
//! Users type words, not FTS5 syntax: [`fts_expression`] quotes every word, so nothing a user
//! types is an FTS5 operator or can make the query fail.
//!
//! Chinese, Japanese and Korean are written without spaces between words, and the `unicode61`
//! tokenizer keeps a run of such characters as one token: `明天` would find only a message that
//! is exactly that run. So the index holds [`index_text`], in which each of those characters is
//! a token of its own, and a query's words go through the same function: a CJK word becomes a
//! phrase of its characters (`"明 天"`), found wherever they stand together in that order.
//! Text without them is indexed and searched exactly as typed. Where the indexed text differs
//! from the message's own (migration 11), it is kept in `search_text`, because taking a message
//! out of an external-content index needs the very text that was indexed, and the triggers
//! that do it cannot compute it (SQLite has no such function, and a function of ours would have
//! to be registered on every connection that deletes a message, `sqlite3` by hand included).
//! An edit to CJK text is indexed as typed by the trigger and queued in `search_pending` for
//! the indexer to redo.

use chatroom_protocol::{MAX_SEARCH_QUERY_CHARS, MessageId, RoomId, SearchPage, UserId};
use rusqlite::{Connection, OptionalExtension, params};
use std::borrow::Cow;
use std::time::{Duration, Instant};

use super::StorageError;
use super::reads::{MESSAGE_COLUMNS, encoded_size_estimate, message_from_row};

/// Candidates (messages containing the words, in any room) one search looks at. Bounds the work
/// of a request whose words are common but mostly in rooms the user is not in: it answers with
/// what it found and a `next` to go on from.
pub const CANDIDATES_PER_SEARCH: u32 = 5000;
/// Most words in one query.
const MAX_TERMS: usize = 16;

/// Why a query cannot be searched for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Longer than [`MAX_SEARCH_QUERY_CHARS`].
    #[error("a search is at most {MAX_SEARCH_QUERY_CHARS} characters")]
    TooLong,
    /// No letters or digits to look for.
    #[error("search for at least one word")]
    NoWords,
    /// More than `MAX_TERMS` words and phrases.
    #[error("a search has at most {MAX_TERMS} words and phrases")]
    TooManyTerms,
}

/// Whether `c` belongs to a script written without spaces between words, which the index
/// splits into one token per character: Han (with the radicals, the iteration and Hangzhou
/// marks), Hiragana, Katakana (with the half-width forms and the kana supplements), Bopomofo
/// and Hangul (syllables and jamo). Keep in step with `cjk_glob!` in `schema` (a test checks).
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF // Hangul Jamo
        | 0x2E80..=0x2FDF // CJK Radicals Supplement, Kangxi Radicals
        | 0x3005..=0x3007 // 々 〆 〇
        | 0x3021..=0x3029 // Hangzhou numerals
        | 0x3031..=0x3035 // kana repeat marks
        | 0x3038..=0x303C // 〸 〹 〺 〻 〼
        | 0x3040..=0x30FF // Hiragana, Katakana
        | 0x3100..=0x318F // Bopomofo, Hangul Compatibility Jamo
        | 0x31A0..=0x31BF // Bopomofo Extended
        | 0x31F0..=0x31FF // Katakana Phonetic Extensions
        | 0x3400..=0x4DBF // CJK Unified Ideographs Extension A
        | 0x4E00..=0x9FFF // CJK Unified Ideographs
        | 0xA960..=0xA97F // Hangul Jamo Extended-A
        | 0xAC00..=0xD7FF // Hangul Syllables, Hangul Jamo Extended-B
        | 0xF900..=0xFAFF // CJK Compatibility Ideographs
        | 0xFF66..=0xFFDC // Half-width Katakana and Hangul
        | 0x1AFF0..=0x1B16F // Kana Extended-B, Kana Supplement, Kana Extended-A, Small Kana
        | 0x20000..=0x323AF // Extensions B to I, Compatibility Ideographs Supplement
    )
}

/// A combining mark, which stays with the character before it: kana voicing marks (`か` +
/// U+3099 is `が`), ideographic variation selectors, accents.
fn is_joining_mark(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F
        | 0x1AB0..=0x1AFF
        | 0x1DC0..=0x1DFF
        | 0x20D0..=0x20FF
        | 0x302A..=0x302F
        | 0x3099..=0x309A
        | 0xFE00..=0xFE0F
        | 0xFE20..=0xFE2F
        | 0xFF9E..=0xFF9F
        | 0xE0100..=0xE01EF
    )
}

/// The text the index holds for `text`, and the form a query's word takes before it is
/// quoted: every CJK character (see `is_cjk`) set apart by spaces, with the marks that follow
/// it. Text without one comes back as it is, so it is indexed and searched as before.
pub fn index_text(text: &str) -> Cow<'_, str> {
    // Every character it splits is encoded from byte 0xE1 on: most text is passed at once.
    if !text.bytes().any(|b| b >= 0xE1) {
        return Cow::Borrowed(text);
    }
    let Some(first) = text.find(|c: char| is_cjk(c) && !is_joining_mark(c)) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    out.push_str(&text[..first]);
    // Whether the last character pushed was a CJK one (a word of its own).
    let mut after_cjk = false;
    for c in text[first..].chars() {
        if is_joining_mark(c) {
            out.push(c);
        } else if is_cjk(c) {
            if !out.is_empty() && !out.ends_with(char::is_whitespace) {
                out.push(' ');
            }
            out.push(c);
            after_cjk = true;
        } else {
            if after_cjk && !c.is_whitespace() {
                out.push(' ');
            }
            out.push(c);
            after_cjk = false;
        }
    }
    // Only spaces are ever added: the same length is the same text ("我" alone).
    if out.len() == text.len() {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(out)
    }
}

/// Turns what a user typed into an FTS5 expression: words that must all appear, `"a phrase"`,
/// and `word*` for a prefix. Every word is quoted, so `OR`, `NEAR(`, `col:` and stray quotes
/// are only text; a term without a letter or digit is dropped (it could match nothing). A word
/// with CJK characters is split as [`index_text`] splits message text: `明天` is the phrase
/// `"明 天"`, and `我们*` is `"我 们"*` (any character is already a word's start there).
pub fn fts_expression(query: &str) -> Result<String, QueryError> {
    if query.chars().count() > MAX_SEARCH_QUERY_CHARS {
        return Err(QueryError::TooLong);
    }
    let mut terms: Vec<String> = Vec::new();
    let mut rest = query.trim_start();
    while !rest.is_empty() {
        let (text, prefix, tail) = if let Some(after) = rest.strip_prefix('"') {
            // A phrase runs to the closing quote, or to the end if there is none.
            match after.find('"') {
                Some(end) => {
                    let tail = &after[end + 1..];
                    match tail.strip_prefix('*') {
                        Some(tail) => (&after[..end], true, tail),
                        None => (&after[..end], false, tail),
                    }
                }
                None => (after, false, ""),
            }
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '"')
                .unwrap_or(rest.len());
            let word = &rest[..end];
            match word.strip_suffix('*') {
                Some(stem) => (stem, true, &rest[end..]),
                None => (word, false, &rest[end..]),
            }
        };
        if text.chars().any(char::is_alphanumeric) {
            if terms.len() == MAX_TERMS {
                return Err(QueryError::TooManyTerms);
            }
            // Split as the index is: a CJK word becomes a phrase of its characters.
            let quoted = format!("\"{}\"", index_text(text).replace('"', "\"\""));
            terms.push(if prefix { quoted + "*" } else { quoted });
        }
        rest = tail.trim_start();
    }
    if terms.is_empty() {
        return Err(QueryError::NoWords);
    }
    Ok(terms.join(" "))
}

/// Messages matching `expression` (from [`fts_expression`]) in the rooms `user` is a member
/// of (or in `room` only), newest first: at most `limit`, at most `byte_budget` bytes of
/// encoded messages, among the [`CANDIDATES_PER_SEARCH`] newest matches older than `before`.
///
/// The matches are read newest first straight from the index, each looked up as it comes,
/// until the page is full: a common word costs a page's worth of lookups, not the
/// candidates'. The oldest candidate is found first (a walk over the index alone) and bounds
/// the walk; it is also where the next page starts when the candidates run out first.
pub fn search(
    conn: &Connection,
    user: UserId,
    expression: &str,
    room: Option<RoomId>,
    before: Option<MessageId>,
    limit: u32,
    byte_budget: usize,
) -> Result<SearchPage, StorageError> {
    let limit = limit.max(1);
    let below = before.map_or(i64::MAX, |id| i64::try_from(id.0).unwrap_or(i64::MAX));
    let oldest_candidate: Option<i64> = conn
        .prepare_cached(
            "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?1 AND rowid < ?2 \
             ORDER BY rowid DESC LIMIT 1 OFFSET ?3",
        )?
        .query_row(params![expression, below, CANDIDATES_PER_SEARCH - 1], |r| {
            r.get(0)
        })
        .optional()?;
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} \
         FROM messages_fts \
         JOIN messages m ON m.id = messages_fts.rowid \
         JOIN members mb ON mb.room_id = m.room_id AND mb.user_id = ?4 \
         LEFT JOIN files f ON f.id = m.file_id \
         WHERE messages_fts MATCH ?1 AND messages_fts.rowid < ?2 AND messages_fts.rowid >= ?3 \
           AND (?5 IS NULL OR m.room_id = ?5) \
         ORDER BY messages_fts.rowid DESC LIMIT ?6"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![
        expression,
        below,
        oldest_candidate.unwrap_or(i64::MIN),
        user.0 as i64,
        room.map(|r| r.0 as i64),
        i64::from(limit) + 1,
    ])?;
    let mut messages = Vec::new();
    let mut bytes = 0usize;
    let mut cut_short = false;
    while let Some(r) = rows.next()? {
        let m = message_from_row(r)?;
        bytes += encoded_size_estimate(&m);
        if messages.len() as u32 == limit || (bytes > byte_budget && !messages.is_empty()) {
            cut_short = true;
            break;
        }
        messages.push(m);
    }
    let next = if cut_short {
        messages.last().map(|m| m.id)
    } else {
        // Fewer than asked: either there are no more matches, or the candidates ran out first
        // and the next page starts below the last one looked at.
        oldest_candidate.map(|id| MessageId(id as u64))
    };
    Ok(SearchPage { messages, next })
}

/// Keeps `messages_fts` up to date from the writer thread.
///
/// The writer tells it how many messages each batch stored or changed ([`Indexer::stored`]).
/// It indexes when the writer's queue is empty once [`Indexer::IDLE_ROWS`] messages wait or the
/// oldest has waited [`Indexer::IDLE_WAIT`]; under constant load, once every
/// [`Indexer::BUSY_INTERVAL`]; and whenever a search asks for it
/// ([`crate::storage::ops::WriteOp::CatchUpSearchIndex`], [`Indexer::due`]), so that the search
/// finds what was acknowledged before it. Messages alone never wait for the index: indexing
/// each batch before its acknowledgements cost the storage thread a transaction per batch
/// (~0.25 ms) on the path every message takes. A step indexes at most [`Indexer::STEP_ROWS`]
/// messages in one transaction with `synchronous = NORMAL`: it is not worth an `fsync`,
/// because the index and its mark (`search_index`) commit together, so a step lost in a crash
/// is simply done again.
#[derive(Debug)]
pub struct Indexer {
    /// Messages stored and perhaps not indexed (an upper bound).
    waiting: usize,
    /// When the oldest of them was stored; `None` if there is none.
    since: Option<Instant>,
    /// After a failed step, none before this.
    retry_at: Option<Instant>,
    /// The newest message id the index has taken in (0 before the first step).
    indexed_up_to: i64,
}

impl Default for Indexer {
    fn default() -> Self {
        Self::new()
    }
}

impl Indexer {
    /// Messages waiting that make an idle writer index at once.
    pub const IDLE_ROWS: usize = 64;
    /// How long fewer messages wait for an idle writer.
    pub const IDLE_WAIT: Duration = Duration::from_millis(100);
    /// Under constant load, the longest time between two steps.
    pub const BUSY_INTERVAL: Duration = Duration::from_millis(250);
    /// Most messages one step indexes.
    pub const STEP_ROWS: usize = 2048;
    const RETRY_AFTER: Duration = Duration::from_secs(10);

    /// An indexer that first catches up with whatever the last run left unindexed.
    pub fn new() -> Self {
        Self {
            waiting: Self::IDLE_ROWS,
            since: Some(Instant::now()),
            retry_at: None,
            indexed_up_to: 0,
        }
    }

    /// A batch stored (or edited) `messages` messages.
    pub fn stored(&mut self, messages: usize) {
        if messages > 0 {
            self.waiting = self.waiting.saturating_add(messages);
            self.since.get_or_insert_with(Instant::now);
        }
    }

    /// Whether a step now would have anything to do: something may be unindexed, and no
    /// failed step is waiting for its retry. (What a search waits on.)
    pub fn due(&self, now: Instant) -> bool {
        self.since.is_some() && self.retry_at.is_none_or(|retry| now >= retry)
    }

    /// How long an idle writer may wait for work before it should index: `None` when there is
    /// nothing to index.
    pub fn idle_wait(&self, now: Instant) -> Option<Duration> {
        let since = self.since?;
        let mut due = if self.waiting >= Self::IDLE_ROWS {
            now
        } else {
            since + Self::IDLE_WAIT
        };
        if let Some(retry) = self.retry_at {
            due = due.max(retry);
        }
        Some(due.saturating_duration_since(now))
    }

    /// Whether a busy writer should index now rather than take its next batch.
    pub fn overdue(&self, now: Instant) -> bool {
        match self.since {
            Some(since) => now.duration_since(since) >= Self::BUSY_INTERVAL && self.due(now),
            None => false,
        }
    }

    /// Whether a search waiting for every message up to `id` may go on: the index holds them,
    /// or has nothing left to take in (the newest may have been deleted meanwhile), or cannot
    /// take anything in now (a failed step: the search finds what the index holds).
    pub fn serves(&self, id: i64) -> bool {
        self.indexed_up_to >= id || self.since.is_none() || self.retry_at.is_some()
    }

    /// Indexes up to [`Self::STEP_ROWS`] messages. A failure (a full disk) is logged and
    /// tried again later; the messages stay stored, only unsearchable meanwhile.
    pub fn step(&mut self, conn: &mut Connection) {
        let started = Instant::now();
        match index_step(conn, Self::STEP_ROWS) {
            Ok(Step {
                rows: indexed,
                mark,
            }) => {
                self.retry_at = None;
                self.indexed_up_to = mark;
                if indexed < Self::STEP_ROWS {
                    self.waiting = 0;
                    self.since = None;
                } else {
                    // More to do: stay due, from now, so a busy writer alternates.
                    self.waiting = self.waiting.saturating_sub(indexed).max(Self::IDLE_ROWS);
                    self.since = Some(Instant::now());
                }
                tracing::trace!(indexed, took = ?started.elapsed(), "search index step");
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not update the search index; trying again later");
                self.retry_at = Some(Instant::now() + Self::RETRY_AFTER);
            }
        }
    }
}

/// What one step of the indexer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    /// Messages it looked at (at most the step's rows: fewer means it caught up).
    pub rows: usize,
    /// The newest message id the index has taken in, after the step.
    pub mark: i64,
}

/// Indexes up to `max_rows` messages in one transaction: first those `search_pending` lists,
/// then the next ones past the mark.
pub(crate) fn index_step(conn: &mut Connection, max_rows: usize) -> Result<Step, StorageError> {
    let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    // NORMAL (1) in WAL mode skips the commit's fsync; never raise a lower setting.
    if synchronous > 1 {
        conn.execute_batch("PRAGMA synchronous = NORMAL")?;
    }
    let indexed = index_in_transaction(conn, max_rows);
    if synchronous > 1 {
        // The value is SQLite's own integer, read above.
        conn.execute_batch(&format!("PRAGMA synchronous = {synchronous}"))?;
    }
    indexed
}

fn index_in_transaction(conn: &mut Connection, max_rows: usize) -> Result<Step, StorageError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mark: i64 = tx
        .prepare_cached("SELECT indexed_up_to FROM search_index WHERE id = 1")?
        .query_row([], |r| r.get(0))?;
    let redone = redo_pending(&tx, mark, max_rows)?;
    let (indexed, last) = index_new(&tx, mark, max_rows - redone)?;
    if last != mark {
        tx.prepare_cached("UPDATE search_index SET indexed_up_to = ?1 WHERE id = 1")?
            .execute(params![last])?;
    }
    tx.commit()?;
    Ok(Step {
        rows: redone + indexed,
        mark: last,
    })
}

/// Indexes up to `max_rows` messages past `mark`; returns how many, and the last one's id.
/// The split text of those that have one goes to `search_text` first, and then one statement
/// indexes the range, each message as `search_text` has it or else as it is: for text without
/// CJK that is SQLite's own copy, as before migration 11, with no row passed through here twice.
fn index_new(
    tx: &rusqlite::Transaction<'_>,
    mark: i64,
    max_rows: usize,
) -> Result<(usize, i64), StorageError> {
    let (mut scanned, mut kept, mut last) = (0usize, 0usize, mark);
    {
        let mut keep =
            tx.prepare_cached("INSERT OR REPLACE INTO search_text (id, text) VALUES (?1, ?2)")?;
        let mut next =
            tx.prepare_cached("SELECT id, text FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2")?;
        let mut rows = next.query(params![mark, max_rows as i64])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let text = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
            if let Cow::Owned(words) = index_text(text) {
                keep.execute(params![id, words])?;
                kept += 1;
            }
            scanned += 1;
            last = id;
        }
    }
    let sql = if kept == 0 {
        "INSERT INTO messages_fts (rowid, text) \
         SELECT id, text FROM messages WHERE id > ?1 AND id <= ?2"
    } else {
        "INSERT INTO messages_fts (rowid, text) \
         SELECT m.id, COALESCE(s.text, m.text) FROM messages m \
         LEFT JOIN search_text s ON s.id = m.id WHERE m.id > ?1 AND m.id <= ?2"
    };
    if scanned > 0 {
        tx.prepare_cached(sql)?.execute(params![mark, last])?;
    }
    Ok((scanned, last))
}

/// Indexes again, in the split form, up to `max_rows` messages that `search_pending` lists
/// (indexed as typed by an edit's trigger, or by a build before migration 11). Returns how many
/// it took off the list.
fn redo_pending(
    tx: &rusqlite::Transaction<'_>,
    mark: i64,
    max_rows: usize,
) -> Result<usize, StorageError> {
    let pending: Vec<(i64, Option<String>, Option<String>)> = tx
        .prepare_cached(
            "SELECT p.id, m.text, s.text FROM search_pending p \
             LEFT JOIN messages m ON m.id = p.id LEFT JOIN search_text s ON s.id = p.id \
             ORDER BY p.id LIMIT ?1",
        )?
        .query_map([max_rows as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (id, text, indexed) in &pending {
        // Gone, or past the mark (the next step indexes it anyway): nothing to redo.
        if let (Some(text), true) = (text, *id <= mark) {
            let indexed = indexed.as_deref().unwrap_or(text);
            let words = index_text(text);
            if words != indexed {
                tx.prepare_cached(
                    "INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', ?1, ?2)",
                )?
                .execute(params![id, indexed])?;
                tx.prepare_cached("INSERT INTO messages_fts (rowid, text) VALUES (?1, ?2)")?
                    .execute(params![id, words.as_ref()])?;
                match &words {
                    Cow::Owned(words) => tx
                        .prepare_cached(
                            "INSERT OR REPLACE INTO search_text (id, text) VALUES (?1, ?2)",
                        )?
                        .execute(params![id, words])?,
                    Cow::Borrowed(_) => tx
                        .prepare_cached("DELETE FROM search_text WHERE id = ?1")?
                        .execute([id])?,
                };
            }
        }
        tx.prepare_cached("DELETE FROM search_pending WHERE id = ?1")?
            .execute([id])?;
    }
    Ok(pending.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::schema;

    const ALICE: UserId = UserId(1);
    const PUBLIC: RoomId = RoomId(1);
    /// A room alice is not in.
    const SECRET: RoomId = RoomId(2);

    /// A database with alice in `public`, and a room `secret` she is not in.
    fn database() -> Connection {
        let mut conn = Connection::open_in_memory().expect("open");
        schema::migrate(&mut conn).expect("migrate");
        conn.execute_batch(
            "INSERT INTO users (id, name, name_key, password_hash, created_at)
                 VALUES (1, 'alice', 'alice', 'x', 0), (2, 'bob', 'bob', 'x', 0);
             INSERT INTO rooms (id, kind, name, name_key, created_at) VALUES (2, 1, 'secret', 'secret', 0);
             INSERT INTO members (room_id, user_id, role, joined_at)
                 VALUES (1, 1, 0, 0), (1, 2, 0, 0), (2, 2, 2, 0);",
        )
        .expect("rows");
        conn
    }

    fn post(conn: &Connection, room: RoomId, text: &str) -> i64 {
        conn.execute(
            "INSERT INTO messages (room_id, seq, sender_id, sender_name, ts, kind, text)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE room_id = ?1),
                     2, 'bob', 0, 0, ?2)",
            params![room.0 as i64, text],
        )
        .expect("insert");
        conn.last_insert_rowid()
    }

    fn find(conn: &Connection, query: &str) -> Vec<String> {
        let expression = fts_expression(query).expect("query");
        let page = search(conn, ALICE, &expression, None, None, 50, 1 << 20).expect("search");
        page.messages.into_iter().map(|m| m.text).collect()
    }

    fn index_all(conn: &mut Connection) {
        while index_step(conn, 3).expect("step").rows == 3 {}
    }

    #[test]
    fn only_indexed_messages_in_my_rooms_are_found_newest_first() {
        let mut conn = database();
        post(&conn, PUBLIC, "the Café opens at nine");
        post(&conn, SECRET, "cafe plans, secret");
        post(&conn, PUBLIC, "CAFE again");
        assert_eq!(find(&conn, "cafe"), Vec::<String>::new(), "not indexed yet");
        index_all(&mut conn);
        assert_eq!(
            find(&conn, "cafe"),
            ["CAFE again", "the Café opens at nine"]
        );
        assert_eq!(find(&conn, "\"opens at\" caf*"), ["the Café opens at nine"]);
        assert_eq!(find(&conn, "secret"), Vec::<String>::new());
    }

    #[test]
    fn a_message_changed_or_removed_after_indexing_leaves_the_index() {
        let mut conn = database();
        let first = post(&conn, PUBLIC, "launch code alpha");
        post(&conn, PUBLIC, "launch party");
        index_all(&mut conn);
        // Deleting a message empties its text (the writer's DeleteMessage).
        conn.execute(
            "UPDATE messages SET kind = 3, text = '' WHERE id = ?1",
            [first],
        )
        .expect("delete");
        assert_eq!(find(&conn, "launch"), ["launch party"]);
        // The newest message goes (its room deleted), and SQLite hands its id out again: the
        // new message must be indexed, and the old text must not find it.
        let newest = conn.last_insert_rowid();
        conn.execute("DELETE FROM messages WHERE id = ?1", [newest])
            .expect("remove");
        let reused = post(&conn, PUBLIC, "quiet evening");
        assert_eq!(reused, newest, "SQLite reuses the highest rowid");
        index_all(&mut conn);
        assert_eq!(find(&conn, "party"), Vec::<String>::new());
        assert_eq!(find(&conn, "evening"), ["quiet evening"]);
        let check: rusqlite::Result<()> = conn
            .execute_batch("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')");
        check.expect("the index matches the table");
    }

    #[test]
    fn a_step_indexes_at_most_its_rows_and_moves_the_mark() {
        let mut conn = database();
        for i in 0..5 {
            post(&conn, PUBLIC, &format!("note {i}"));
        }
        let first_id = conn
            .query_row("SELECT MIN(id) FROM messages", [], |r| r.get::<_, i64>(0))
            .expect("first");
        let step = index_step(&mut conn, 3).expect("step");
        assert_eq!((step.rows, step.mark), (3, first_id + 2));
        assert_eq!(find(&conn, "note").len(), 3);
        let step = index_step(&mut conn, 3).expect("step");
        assert_eq!((step.rows, step.mark), (2, first_id + 4));
        let step = index_step(&mut conn, 3).expect("step");
        assert_eq!((step.rows, step.mark), (0, first_id + 4), "the mark stays");
        assert_eq!(find(&conn, "note").len(), 5);
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(synchronous, 2, "the connection's FULL is back after a step");
    }

    #[test]
    fn a_search_looks_at_a_bounded_number_of_candidates_and_says_where_to_go_on() {
        let mut conn = database();
        let mine = post(&conn, PUBLIC, "needle in public");
        for _ in 0..CANDIDATES_PER_SEARCH + 10 {
            post(&conn, SECRET, "needle in secret");
        }
        index_all(&mut conn);
        let expression = fts_expression("needle").expect("query");
        let first = search(&conn, ALICE, &expression, None, None, 10, 1 << 20).expect("search");
        assert!(
            first.messages.is_empty(),
            "the newest candidates are all secret"
        );
        let next = first.next.expect("more candidates");
        let second =
            search(&conn, ALICE, &expression, None, Some(next), 10, 1 << 20).expect("search");
        assert_eq!(
            second
                .messages
                .iter()
                .map(|m| m.id.0 as i64)
                .collect::<Vec<_>>(),
            [mine]
        );
        assert_eq!(second.next, None);
    }

    #[test]
    fn pages_follow_on_by_id_and_stop_at_the_byte_budget() {
        let mut conn = database();
        let ids: Vec<i64> = (0..7)
            .map(|i| post(&conn, PUBLIC, &format!("page {i} {}", "x".repeat(200))))
            .collect();
        index_all(&mut conn);
        let expression = fts_expression("page").expect("query");
        let page = search(&conn, ALICE, &expression, Some(PUBLIC), None, 3, 1 << 20).expect("p");
        let got: Vec<i64> = page.messages.iter().map(|m| m.id.0 as i64).collect();
        assert_eq!(got, [ids[6], ids[5], ids[4]]);
        assert_eq!(page.next, Some(MessageId(ids[4] as u64)));
        let rest = search(
            &conn,
            ALICE,
            &expression,
            Some(PUBLIC),
            page.next,
            10,
            1 << 20,
        )
        .expect("rest");
        assert_eq!(rest.messages.len(), 4);
        assert_eq!(rest.next, None);
        // Two messages' worth of bytes: the page is cut, with a `next`.
        let small = search(&conn, ALICE, &expression, None, None, 10, 600).expect("small");
        assert_eq!(small.messages.len(), 2);
        assert_eq!(small.next, Some(MessageId(ids[5] as u64)));
    }

    /// The messages the brief's users tried, and a Latin one.
    const CJK_MESSAGES: [&str; 5] = [
        "我们明天发布新版本",
        "你好世界",
        "한국어를 공부해요",
        "東京でミーティングがあります",
        "版本v2发布了, Café",
    ];

    #[test]
    fn cjk_words_are_found_wherever_they_stand_in_the_text() {
        let mut conn = database();
        for text in CJK_MESSAGES {
            post(&conn, PUBLIC, text);
        }
        index_all(&mut conn);
        let [release, hello, korean, tokyo, mixed] = CJK_MESSAGES;
        for (query, found) in [
            ("我们", vec![release]),
            ("明天", vec![release]),
            ("发布", vec![mixed, release]),
            ("版本", vec![mixed, release]),
            ("我们明天发布新版本", vec![release]),
            ("我们*", vec![release]),
            ("明*", vec![release]),
            ("\"明天 发布\"", vec![release]),
            ("明天 版本", vec![release]),
            ("你好", vec![hello]),
            ("世界", vec![hello]),
            ("한국", vec![korean]),
            ("한국어", vec![korean]),
            ("공부", vec![korean]),
            ("東京", vec![tokyo]),
            ("ミーティング", vec![tokyo]),
            ("v2", vec![mixed]),
            ("cafe 发布", vec![mixed]),
        ] {
            assert_eq!(find(&conn, query), found, "{query:?}");
        }
        // The characters must stand together, in that order.
        for query in ["天明", "我明", "世你", "국한", "我们 世界"] {
            assert_eq!(find(&conn, query), Vec::<&str>::new(), "{query:?}");
        }
    }

    #[test]
    fn cjk_characters_are_set_apart_and_other_text_is_left_as_it_is() {
        assert!(matches!(index_text("Café opens at 9"), Cow::Borrowed(_)));
        assert_eq!(index_text("我们明天"), "我 们 明 天");
        assert_eq!(index_text("版本v2发布, ok"), "版 本 v2 发 布 , ok");
        assert_eq!(index_text("say 你好 now"), "say 你 好 now");
        assert_eq!(index_text("한국어를"), "한 국 어 를");
        assert_eq!(index_text("ミーティング"), "ミ ー テ ィ ン グ");
        // A voicing mark and a variation selector stay with their character.
        assert_eq!(index_text("か\u{3099}き"), "か\u{3099} き");
        assert_eq!(index_text("葛\u{E0100}城"), "葛\u{E0100} 城");
        assert_eq!(index_text("ｶﾞｷ"), "ｶﾞ ｷ");
        // Line breaks are kept; extension B is Han too.
        assert_eq!(index_text("中\n文𠀀x"), "中\n文 𠀀 x");
    }

    #[test]
    fn latin_queries_are_the_expressions_they_always_were() {
        for (query, expression) in [
            ("deploy friday", "\"deploy\" \"friday\""),
            ("\"release notes\" dep*", "\"release notes\" \"dep\"*"),
            ("Café", "\"Café\""),
        ] {
            assert_eq!(fts_expression(query).as_deref(), Ok(expression));
        }
        assert_eq!(
            fts_expression("我们* \"明天 发布\" v2版本").as_deref(),
            Ok("\"我 们\"* \"明 天 发 布\" \"v2 版 本\"")
        );
    }

    #[test]
    fn an_edited_or_deleted_cjk_message_leaves_the_index_and_the_new_text_is_split() {
        let mut conn = database();
        let first = post(&conn, PUBLIC, "我们明天发布新版本");
        let second = post(&conn, PUBLIC, "你好世界");
        index_all(&mut conn);
        conn.execute(
            "UPDATE messages SET text = '后天再发布' WHERE id = ?1",
            [first],
        )
        .expect("edit");
        assert_eq!(
            find(&conn, "明天"),
            Vec::<&str>::new(),
            "the old text is gone at once"
        );
        index_all(&mut conn);
        assert_eq!(find(&conn, "后天"), ["后天再发布"]);
        assert_eq!(find(&conn, "发布"), ["后天再发布"]);
        // An edit to Latin text is searchable at once, as before.
        conn.execute(
            "UPDATE messages SET text = 'hello world' WHERE id = ?1",
            [second],
        )
        .expect("edit");
        assert_eq!(find(&conn, "world"), ["hello world"]);
        conn.execute(
            "UPDATE messages SET kind = 3, text = '' WHERE id = ?1",
            [first],
        )
        .expect("delete");
        conn.execute("DELETE FROM messages WHERE id = ?1", [second])
            .expect("remove");
        index_all(&mut conn);
        assert_eq!(find(&conn, "发布"), Vec::<&str>::new());
        assert_index_holds_the_split_text(&conn);
    }

    /// The index holds exactly [`index_text`] of every message up to the mark (compared term by
    /// term and position by position with a fresh index of the same), and `search_text` and
    /// `search_pending` are empty of what is not needed.
    fn assert_index_holds_the_split_text(conn: &Connection) {
        conn.execute_batch(
            "CREATE VIRTUAL TABLE temp.expected USING fts5(text, tokenize = 'unicode61 remove_diacritics 2');
             CREATE VIRTUAL TABLE temp.expected_terms USING fts5vocab(temp, expected, instance);
             CREATE VIRTUAL TABLE temp.actual_terms USING fts5vocab(main, messages_fts, instance);",
        )
        .expect("vocabularies");
        let rows: Vec<(i64, String)> = conn
            .prepare(
                "SELECT id, text FROM messages \
                 WHERE id <= (SELECT indexed_up_to FROM search_index) ORDER BY id",
            )
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        for (id, text) in &rows {
            conn.execute(
                "INSERT INTO temp.expected (rowid, text) VALUES (?1, ?2)",
                params![id, index_text(text).as_ref()],
            )
            .expect("expected row");
        }
        let differences: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM (
                     SELECT * FROM (SELECT term, doc, offset FROM temp.actual_terms
                                    EXCEPT SELECT term, doc, offset FROM temp.expected_terms)
                     UNION ALL
                     SELECT * FROM (SELECT term, doc, offset FROM temp.expected_terms
                                    EXCEPT SELECT term, doc, offset FROM temp.actual_terms))",
                [],
                |r| r.get(0),
            )
            .expect("compare");
        assert_eq!(differences, 0, "the index holds the split text of {rows:?}");
        let needless: i64 = conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM search_pending)
                      + (SELECT COUNT(*) FROM search_text s LEFT JOIN messages m ON m.id = s.id
                         WHERE m.text IS NULL OR m.text = s.text)",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(
            needless, 0,
            "nothing left pending, nothing kept that is the text itself"
        );
        conn.execute_batch(
            "INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check');
             DROP TABLE temp.expected_terms; DROP TABLE temp.actual_terms; DROP TABLE temp.expected;",
        )
        .expect("the index is sound");
    }

    /// What a property test does to the messages.
    #[derive(Debug, Clone)]
    enum Change {
        Post(String),
        /// The message at this index (modulo those there are), new text.
        Edit(usize, String),
        Delete(usize),
        /// A step of at most this many rows.
        Index(usize),
    }

    fn change() -> impl proptest::strategy::Strategy<Value = Change> {
        use proptest::prelude::*;
        let text = "[a-zé 我们明天发布한국어ミーティ\u{3099}\u{E0100}]{0,12}";
        prop_oneof![
            3 => text.prop_map(Change::Post),
            2 => (any::<usize>(), text).prop_map(|(i, t)| Change::Edit(i, t)),
            1 => any::<usize>().prop_map(Change::Delete),
            2 => (1usize..4).prop_map(Change::Index),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(64))]
        #[test]
        fn any_posts_edits_deletes_and_steps_leave_the_index_holding_the_split_text(
            changes in proptest::collection::vec(change(), 1..24)
        ) {
            let mut conn = database();
            let mut ids: Vec<i64> = Vec::new();
            for change in changes {
                match change {
                    Change::Post(text) => ids.push(post(&conn, PUBLIC, &text)),
                    Change::Edit(_, _) | Change::Delete(_) if ids.is_empty() => {}
                    Change::Edit(i, text) => {
                        conn.execute("UPDATE messages SET text = ?1 WHERE id = ?2", params![text, ids[i % ids.len()]])
                            .expect("edit");
                    }
                    Change::Delete(i) => {
                        let id = ids.remove(i % ids.len());
                        conn.execute("DELETE FROM messages WHERE id = ?1", [id]).expect("delete");
                    }
                    Change::Index(rows) => {
                        index_step(&mut conn, rows).expect("step");
                    }
                }
            }
            index_all(&mut conn);
            assert_index_holds_the_split_text(&conn);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_query_is_refused_by_us_or_searched_by_sqlite(
            query in "[a-zA-Zé0-9 \"*():^+\\-.\u{0301}\u{200d}ß]{0,40}"
        ) {
            let conn = database();
            post(&conn, PUBLIC, "a b c");
            if let Ok(expression) = fts_expression(&query) {
                let found = search(&conn, ALICE, &expression, None, None, 5, 1 << 20);
                proptest::prop_assert!(found.is_ok(), "{query:?} as {expression:?}: {found:?}");
            }
        }
    }

    #[test]
    fn no_query_text_makes_sqlite_fail() {
        let conn = database();
        post(&conn, PUBLIC, "x");
        for query in [
            "\"\"\"",
            "a\"b\"c\"",
            "NEAR(\"",
            "*",
            "a**",
            "\"x\"**",
            "^a",
            "a:b",
            "(",
            "x)",
            "- -a",
            "\u{0301}a",
            "ß*",
            "\"a\" * \"b\"",
            "ﬁ",
            "٣",
            "\u{200d}x",
        ] {
            if let Ok(expression) = fts_expression(query) {
                search(&conn, ALICE, &expression, None, None, 5, 1 << 20)
                    .unwrap_or_else(|e| panic!("{query:?} as {expression:?}: {e}"));
            }
        }
    }

    #[test]
    fn words_are_quoted_and_all_required() {
        assert_eq!(
            fts_expression("deploy  friday").as_deref(),
            Ok("\"deploy\" \"friday\"")
        );
        assert_eq!(
            fts_expression("OR NOT NEAR(a b) text:x").as_deref(),
            Ok("\"OR\" \"NOT\" \"NEAR(a\" \"b)\" \"text:x\"")
        );
    }

    #[test]
    fn phrases_prefixes_and_stray_quotes() {
        assert_eq!(
            fts_expression("\"release notes\" dep*").as_deref(),
            Ok("\"release notes\" \"dep\"*")
        );
        assert_eq!(
            fts_expression("\"rel no\"* x").as_deref(),
            Ok("\"rel no\"* \"x\"")
        );
        // An unclosed phrase runs to the end; a quote inside a word ends the word.
        assert_eq!(
            fts_expression("\"half open").as_deref(),
            Ok("\"half open\"")
        );
        assert_eq!(fts_expression("it\"s").as_deref(), Ok("\"it\" \"s\""));
    }

    #[test]
    fn queries_without_words_or_too_long_are_refused() {
        assert_eq!(fts_expression(""), Err(QueryError::NoWords));
        assert_eq!(fts_expression("  * \"\" -- !!"), Err(QueryError::NoWords));
        let long = "a".repeat(MAX_SEARCH_QUERY_CHARS + 1);
        assert_eq!(fts_expression(&long), Err(QueryError::TooLong));
        let many = vec!["w"; MAX_TERMS + 1].join(" ");
        assert_eq!(fts_expression(&many), Err(QueryError::TooManyTerms));
        assert!(fts_expression(&vec!["w"; MAX_TERMS].join(" ")).is_ok());
    }
}
