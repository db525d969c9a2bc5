//! `search`: fill a room with M messages of chat-like text, check they are all stored and that
//! the first and the last can be found, then have C clients search for T seconds, each cycling
//! through the [`QueryKind`]s (a common word, a rare word, two words, a prefix, a phrase, a word
//! nobody wrote).
//!
//! The text is made of words drawn with Zipf's law (weight 1/rank) from a fixed vocabulary: a
//! few dozen common chat words, then made-up words of two to four syllables. The same seed
//! gives the same corpus and the same queries, so runs against servers of different builds
//! search the same things.

use super::history::Filled;
use super::traffic::{REGISTER_CONCURRENCY, SETUP_CONCURRENCY};
use crate::cli::SearchArgs;
use crate::fleet::{Ctx, Fleet, note};
use crate::procfs::Meter;
use crate::report::{Errors, Ops, Report, SearchCheck};
use crate::stats::{Latency, merge, new_histogram, per_sec, record_duration, round3};
use anyhow::Result;
use chatroom_protocol::client::ClientHandle;
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Prefix of the fill messages.
const FILL_PREFIX: &str = "s:";
/// Words in the vocabulary, ranked by frequency.
const VOCABULARY: usize = 20_000;
/// The most frequent words, in rank order; the rest of the vocabulary is made up.
const COMMON: [&str; 48] = [
    "the", "to", "and", "a", "i", "it", "is", "we", "on", "for", "in", "that", "this", "you", "of",
    "be", "with", "just", "deploy", "build", "test", "fix", "review", "lunch", "meeting",
    "release", "server", "bug", "today", "tomorrow", "friday", "ok", "thanks", "please", "can",
    "will", "merge", "branch", "issue", "log", "client", "config", "docs", "ticket", "coffee",
    "standup", "green", "broken",
];
/// Syllables the made-up words are built from.
const SYLLABLES: [&str; 32] = [
    "ka", "lo", "mi", "ru", "sen", "ta", "vo", "ne", "pi", "dor", "ga", "lu", "mer", "so", "ti",
    "ban", "ke", "ra", "zo", "fi", "den", "po", "sha", "gu", "wel", "ni", "tor", "bi", "qua", "le",
    "mon", "ji",
];

/// What a search looks for; each searcher takes them in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueryKind {
    /// One of the ten most frequent words: a full page at once.
    Common,
    /// A word of rank 5 000–20 000: a handful of matches in the whole room.
    Rare,
    /// Two words of rank 20–500, both required.
    TwoWords,
    /// The first three letters of a word of rank 100–2 000, then `*`.
    Prefix,
    /// Two neighbouring words of a message of the fill, in double quotes.
    Phrase,
    /// A word no message holds: every candidate looked at, nothing found.
    Absent,
}

impl QueryKind {
    const ALL: [QueryKind; 6] = [
        QueryKind::Common,
        QueryKind::Rare,
        QueryKind::TwoWords,
        QueryKind::Prefix,
        QueryKind::Phrase,
        QueryKind::Absent,
    ];

    fn name(self) -> &'static str {
        match self {
            QueryKind::Common => "search_common",
            QueryKind::Rare => "search_rare",
            QueryKind::TwoWords => "search_two_words",
            QueryKind::Prefix => "search_prefix",
            QueryKind::Phrase => "search_phrase",
            QueryKind::Absent => "search_absent",
        }
    }
}

/// splitmix64: small, fast, and the same everywhere.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`hi > lo`).
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The vocabulary and its Zipf distribution.
pub(crate) struct Corpus {
    words: Vec<String>,
    /// `cumulative[r]`: the probability of a rank ≤ r.
    cumulative: Vec<f64>,
    seed: u64,
}

impl Corpus {
    pub(crate) fn new(seed: u64) -> Corpus {
        let mut words: Vec<String> = COMMON.iter().map(|w| w.to_string()).collect();
        for rank in COMMON.len()..VOCABULARY {
            words.push(made_up_word(rank));
        }
        let mut cumulative = Vec::with_capacity(VOCABULARY);
        let mut total = 0.0;
        for rank in 1..=VOCABULARY {
            total += 1.0 / rank as f64;
            cumulative.push(total);
        }
        for c in &mut cumulative {
            *c /= total;
        }
        Corpus {
            words,
            cumulative,
            seed,
        }
    }

    fn zipf_word(&self, rng: &mut Rng) -> &str {
        let u = rng.unit();
        let rank = self.cumulative.partition_point(|&c| c < u);
        &self.words[rank.min(VOCABULARY - 1)]
    }

    /// The words of fill message `n` (4–16 of them), the same for the same seed.
    fn message_words(&self, n: u32) -> Vec<&str> {
        let mut rng = Rng::new(self.seed ^ (u64::from(n) << 20) ^ 0x5EED);
        let len = rng.range(4, 17);
        (0..len).map(|_| self.zipf_word(&mut rng)).collect()
    }

    /// Fill message `n`: its number, then its words.
    pub(crate) fn message(&self, n: u32) -> String {
        format!("{FILL_PREFIX}{n} {}", self.message_words(n).join(" "))
    }

    /// A query of `kind`; `messages` is the size of the fill (phrases come from it).
    fn query(&self, kind: QueryKind, rng: &mut Rng, messages: u32, absent_tag: &str) -> String {
        match kind {
            QueryKind::Common => self.words[rng.range(0, 10)].clone(),
            QueryKind::Rare => self.words[rng.range(5_000, VOCABULARY)].clone(),
            QueryKind::TwoWords => format!(
                "{} {}",
                self.words[rng.range(20, 500)],
                self.words[rng.range(20, 500)]
            ),
            QueryKind::Prefix => {
                let word = &self.words[rng.range(100, 2_000)];
                format!("{}*", word.chars().take(3).collect::<String>())
            }
            QueryKind::Phrase => {
                let words = self.message_words(rng.range(0, messages.max(1) as usize) as u32);
                let at = rng.range(0, words.len() - 1);
                format!("\"{} {}\"", words[at], words[at + 1])
            }
            QueryKind::Absent => format!("{absent_tag}{}", rng.range(0, 1_000_000)),
        }
    }
}

/// A made-up word for `rank`: its digits in base 32, each a syllable (ranks past the common
/// words have at least two).
fn made_up_word(rank: usize) -> String {
    let mut word = String::new();
    let mut n = rank;
    loop {
        word.push_str(SYLLABLES[n % SYLLABLES.len()]);
        n /= SYLLABLES.len();
        if n == 0 {
            break;
        }
    }
    word
}

struct SearcherResult {
    /// Per kind, in [`QueryKind::ALL`] order: searches, failures, results, latency.
    kinds: Vec<KindResult>,
    errors: Errors,
}

struct KindResult {
    searches: u64,
    failed: u64,
    results: u64,
    hist: Histogram<u64>,
}

impl KindResult {
    /// One per kind, in [`QueryKind::ALL`] order, nothing counted yet.
    fn each_kind() -> Vec<KindResult> {
        QueryKind::ALL
            .iter()
            .map(|_| KindResult {
                searches: 0,
                failed: 0,
                results: 0,
                hist: new_histogram(),
            })
            .collect()
    }
}

/// Searches all the searcher's rooms until `deadline`, the kinds in turn.
async fn search_until(
    handle: ClientHandle,
    corpus: Arc<Corpus>,
    seed: u64,
    messages: u32,
    page: u32,
    absent_tag: String,
    deadline: Instant,
) -> SearcherResult {
    let mut rng = Rng::new(seed);
    let mut r = SearcherResult {
        kinds: KindResult::each_kind(),
        errors: Errors::default(),
    };
    let mut turn = 0usize;
    while Instant::now() < deadline && !handle.is_closed() {
        let i = turn % QueryKind::ALL.len();
        turn += 1;
        let query = corpus.query(QueryKind::ALL[i], &mut rng, messages, &absent_tag);
        let t0 = Instant::now();
        let kind = &mut r.kinds[i];
        match handle.search(&query, None, None, page).await {
            Ok(p) => {
                record_duration(&mut kind.hist, t0.elapsed());
                kind.searches += 1;
                kind.results += p.messages.len() as u64;
            }
            Err(e) => {
                kind.failed += 1;
                r.errors.add(format!("search {query:?}: {e}"));
            }
        }
    }
    r
}

/// Whether a search for `word` finds exactly one message, and it is `expected`.
async fn finds_only(handle: &ClientHandle, word: &str, expected: &str) -> Result<bool> {
    let page = handle.search(word, None, None, 10).await?;
    Ok(page.messages.len() == 1 && page.messages[0].text == expected)
}

/// `search`.
pub(crate) async fn search(ctx: &Ctx, a: &SearchArgs) -> Result<Report> {
    let params = serde_json::to_value(a).unwrap_or(serde_json::Value::Null);
    let mut report = Report::new("search", params, ctx.addr.to_string());
    report.prefix = ctx.prefix.clone();
    let n = a.clients as usize;
    let mut errors = Errors::default();
    let corpus = Arc::new(Corpus::new(a.seed));

    let mut fleet = Fleet::new();
    note(format!("registering {n} users (argon2 on the server)"));
    fleet.register(ctx, 0, n, REGISTER_CONCURRENCY).await?;
    let room = fleet.shared_room(ctx, "search", SETUP_CONCURRENCY).await?;
    let owner = fleet.peers[0].handle.clone();

    // The first and the last message also carry a word of this run alone.
    let (first_word, last_word) = (
        format!("{}first", ctx.prefix),
        format!("{}last", ctx.prefix),
    );
    let last = a.messages - 1;
    let text = {
        let corpus = corpus.clone();
        let (first_word, last_word) = (first_word.clone(), last_word.clone());
        move |i: u32| {
            let base = corpus.message(i);
            match i {
                0 if last == 0 => format!("{base} {first_word} {last_word}"),
                0 => format!("{base} {first_word}"),
                i if i == last => format!("{base} {last_word}"),
                _ => base,
            }
        }
    };
    let (first_text, last_text) = (text(0), text(last));
    let filled = Filled::write(
        &owner,
        &room,
        fleet.peers[0].max_history_page,
        a.messages,
        FILL_PREFIX,
        text,
    )
    .await?;
    report.stored = Some(filled.stored);
    errors.extend(filled.errors);

    // The server indexes in the background; a search catches the index up first, so the
    // message acknowledged last must already be found.
    let t_found = Instant::now();
    let last_found = finds_only(&owner, &last_word, &last_text).await?;
    let catch_up_ms = round3(t_found.elapsed().as_secs_f64() * 1000.0);
    let first_found = finds_only(&owner, &first_word, &first_text).await?;

    note(format!(
        "{n} clients search for {} s, {} results a page at most",
        a.secs, a.page
    ));
    let meter = Meter::start(ctx.server_pid)?;
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(u64::from(a.secs));
    let mut searchers = JoinSet::new();
    for (i, peer) in fleet.peers.iter().enumerate() {
        searchers.spawn(search_until(
            peer.handle.clone(),
            corpus.clone(),
            a.seed.wrapping_add(1 + i as u64),
            a.messages,
            a.page,
            format!("{}absent", ctx.prefix),
            deadline,
        ));
    }
    let mut kinds = KindResult::each_kind();
    while let Some(joined) = searchers.join_next().await {
        match joined {
            Ok(r) => {
                for (into, from) in kinds.iter_mut().zip(&r.kinds) {
                    into.searches += from.searches;
                    into.failed += from.failed;
                    into.results += from.results;
                    merge(&mut into.hist, &from.hist);
                }
                errors.extend(r.errors);
            }
            Err(e) => errors.add(format!("searcher task: {e}")),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let measured = meter.finish();
    fleet.shutdown().await;

    let mut all = new_histogram();
    let (mut searches, mut search_failed) = (0u64, 0u64);
    let mut mean_results = Vec::new();
    for (kind, k) in QueryKind::ALL.iter().zip(&kinds) {
        merge(&mut all, &k.hist);
        searches += k.searches;
        search_failed += k.failed;
        let mean = if k.searches == 0 {
            0.0
        } else {
            round3(k.results as f64 / k.searches as f64)
        };
        mean_results.push((kind.name(), mean));
    }
    report.ops.push(filled.ops);
    report.ops.push(Ops {
        name: "search",
        count: searches,
        failed: search_failed,
        secs: round3(secs),
        per_sec: per_sec(searches, secs),
        latency: Some(Latency::of(&all)),
    });
    for (kind, k) in QueryKind::ALL.iter().zip(&kinds) {
        report.ops.push(Ops {
            name: kind.name(),
            count: k.searches,
            failed: k.failed,
            secs: round3(secs),
            per_sec: per_sec(k.searches, secs),
            latency: Some(Latency::of(&k.hist)),
        });
    }
    report.search = Some(SearchCheck {
        first_found,
        last_found,
        last_found_ms: catch_up_ms,
        mean_results,
    });
    report.set_usage(&measured);
    report.errors = errors.into_vec();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_is_the_same_for_the_same_seed_and_follows_zipf() {
        let (a, b) = (Corpus::new(7), Corpus::new(7));
        assert_eq!(a.message(12), b.message(12));
        assert_ne!(a.message(12), Corpus::new(8).message(12));
        let mut the = 0;
        let mut words = 0;
        for n in 0..2000 {
            for w in a.message_words(n) {
                words += 1;
                the += usize::from(w == "the");
            }
        }
        // Rank 1 of 20 000 under 1/rank: 1/H(20 000) ≈ 9.4 % of all words.
        let share = the as f64 / words as f64;
        assert!((0.07..0.12).contains(&share), "share of \"the\": {share}");
    }

    #[test]
    fn made_up_words_are_distinct_and_not_common_words() {
        let words: std::collections::HashSet<String> =
            (COMMON.len()..VOCABULARY).map(made_up_word).collect();
        assert_eq!(words.len(), VOCABULARY - COMMON.len());
        assert!(COMMON.iter().all(|c| !words.contains(*c)));
    }

    #[test]
    fn a_phrase_query_is_two_neighbouring_words_of_a_fill_message() {
        let corpus = Corpus::new(3);
        let mut rng = Rng::new(1);
        for _ in 0..50 {
            let q = corpus.query(QueryKind::Phrase, &mut rng, 100, "x");
            let inner = q.trim_matches('"');
            assert!(
                (0..100).any(|n| corpus.message(n).contains(inner)),
                "{q} is in no message"
            );
        }
    }
}
