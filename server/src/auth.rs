//! Credentials: name rules, argon2id password hashing, and session tokens.
//!
//! Hashing is deliberately slow (argon2id, the crate's default cost), so callers run
//! [`hash_password`] and [`verify_password`] on the blocking pool, never on a runtime thread.
//! Session tokens are 256 random bits; the database keeps only their SHA-256, so a stolen
//! database file does not log anyone in.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use chatroom_protocol::ErrorCode;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

use crate::error::{RequestError, RequestResult};

/// Longest user name, in characters.
pub const MAX_USERNAME_CHARS: usize = 32;
/// Shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password, in bytes (argon2 accepts more; nobody needs more, and it bounds the work).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest room name, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 64;
/// Longest topic, in characters.
pub const MAX_TOPIC_CHARS: usize = 512;

/// The key names are compared by: case-insensitive (Unicode lowercase).
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// What a name looks like, for telling look-alikes apart from names that only differ: the
/// Unicode confusable skeleton (UTS #39) of its lowercase form, lowercased again. `alice`,
/// `аlice` (a Cyrillic а) and `ａｌｉｃｅ` (full-width letters) share it, so a second one is
/// refused as taken: in a team chat, a look-alike name is a way to pass for someone else.
pub fn look_alike_key(name: &str) -> String {
    let skeleton: String =
        unicode_security::confusable_detection::skeleton(&name.to_lowercase()).collect();
    skeleton.to_lowercase()
}

pub use chatroom_protocol::mentions::is_username_char;

/// Checks a user name: 1–32 Unicode letters, digits, `_`, `-` or `.`.
pub fn validate_username(name: &str) -> RequestResult<()> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_USERNAME_CHARS {
        return Err(RequestError::new(
            ErrorCode::InvalidUsername,
            format!("a user name has 1 to {MAX_USERNAME_CHARS} characters"),
        ));
    }
    if !name.chars().all(is_username_char) {
        return Err(RequestError::new(
            ErrorCode::InvalidUsername,
            "a user name may contain only letters, digits, '_', '-' and '.'",
        ));
    }
    Ok(())
}

/// Checks a new password's length.
pub fn validate_password(password: &str) -> RequestResult<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(RequestError::new(
            ErrorCode::WeakPassword,
            format!("a password needs at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(RequestError::new(
            ErrorCode::WeakPassword,
            format!("a password may have at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Characters that show nothing or reorder what follows: zero-width spaces and joiners (but
/// not U+200D, which joins emoji), the soft hyphen, and bidirectional marks and overrides. In a
/// name they make a twin of another (`public` and `public\u{200b}`), or disguise `exe.txt` as
/// `txt.exe`.
pub fn is_invisible_or_reordering(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{180e}'
            | '\u{200b}'
            | '\u{200c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// Checks a room name: 1–64 characters, no spaces, double quotes, control, invisible or
/// reordering characters, and not starting with `#` or `@`, which clients write before room and
/// user names (`/join #dev`, `--to @bob`): a name must survive being typed after them, and
/// clients use `"` to quote arguments.
pub fn validate_room_name(name: &str) -> RequestResult<()> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_ROOM_NAME_CHARS || name.trim().is_empty() {
        return Err(RequestError::new(
            ErrorCode::InvalidRoomName,
            format!("a room name has 1 to {MAX_ROOM_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) || name != name.trim() {
        return Err(RequestError::new(
            ErrorCode::InvalidRoomName,
            "a room name may not contain control characters or start or end with spaces",
        ));
    }
    if name.chars().any(is_invisible_or_reordering) {
        return Err(RequestError::new(
            ErrorCode::InvalidRoomName,
            "a room name may not contain invisible characters or direction marks",
        ));
    }
    if name.chars().any(char::is_whitespace) {
        return Err(RequestError::new(
            ErrorCode::InvalidRoomName,
            "a room name may not contain spaces (use - or _)",
        ));
    }
    if name.contains('"') {
        return Err(RequestError::new(
            ErrorCode::InvalidRoomName,
            "a room name may not contain double quotes",
        ));
    }
    if name.starts_with(['#', '@']) {
        return Err(RequestError::new(
            ErrorCode::InvalidRoomName,
            "a room name may not start with # or @",
        ));
    }
    Ok(())
}

/// A kick, ban, mute or suspension reason as shown to the one it is about (and the room): one
/// line, no control characters, at most 256 characters; blank is none.
pub fn clean_reason(reason: Option<String>) -> Option<String> {
    reason
        .map(|r| {
            r.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(256)
                .collect::<String>()
        })
        .filter(|r| !r.trim().is_empty())
}

/// Checks a topic: at most 512 characters, no control or reordering characters.
pub fn validate_topic(topic: &str) -> RequestResult<()> {
    if topic.chars().count() > MAX_TOPIC_CHARS
        || topic
            .chars()
            .any(|c| c.is_control() || is_invisible_or_reordering(c))
    {
        return Err(RequestError::new(
            ErrorCode::BadRequest,
            format!(
                "a topic has at most {MAX_TOPIC_CHARS} characters, and no control characters, \
                 invisible characters or direction marks"
            ),
        ));
    }
    Ok(())
}

/// Refuse stored hashes asking for more than this much argon2 memory (256 MiB).
const MAX_HASH_BLOCKS: usize = 256 * 1024;

/// Working memory for one argon2 computation (19 MiB at the default cost), kept and reused.
///
/// Letting argon2 allocate and free 19 MiB per hash left the allocator holding gigabytes after
/// a few hundred logins; the server instead keeps one of these per concurrent hash.
#[derive(Debug)]
pub struct HashMemory(Vec<Block>);

impl Default for HashMemory {
    fn default() -> Self {
        Self(vec![Block::default(); Params::default().block_count()])
    }
}

fn argon2_into(
    password: &[u8],
    salt: &[u8],
    algorithm: Algorithm,
    version: Version,
    params: Params,
    out: &mut [u8],
    memory: &mut HashMemory,
) -> Result<(), String> {
    let blocks = params.block_count();
    if blocks > MAX_HASH_BLOCKS {
        return Err(format!("argon2 parameters ask for {blocks} KiB"));
    }
    if memory.0.len() < blocks {
        memory.0.resize(blocks, Block::default());
    }
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, &mut memory.0[..blocks])
        .map_err(|e| e.to_string())
}

/// Hashes a password with argon2id (default cost) and a fresh random salt, as a PHC string,
/// in `memory`. Slow: call on the blocking pool.
pub fn hash_password_with(password: &str, memory: &mut HashMemory) -> Result<String, String> {
    let mut salt_bytes = [0u8; 16];
    getrandom::fill(&mut salt_bytes).map_err(|e| format!("no randomness: {e}"))?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
    let params = Params::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_into(
        password.as_bytes(),
        &salt_bytes,
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        &mut out,
        memory,
    )?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(hash.to_string())
}

/// [`hash_password_with`] in fresh memory (for the offline admin commands).
pub fn hash_password(password: &str) -> Result<String, String> {
    hash_password_with(password, &mut HashMemory::default())
}

/// Checks a password against a stored PHC hash, in `memory`. With `None` (unknown user) it
/// verifies against a dummy hash, so that an unknown name costs as much time as a wrong
/// password. Slow: call on the blocking pool.
pub fn verify_password_with(password: &str, stored: Option<&str>, memory: &mut HashMemory) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not a real password").unwrap_or_default());
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let matches = (|| -> Option<bool> {
        let parsed = PasswordHash::new(hash).ok()?;
        let (salt, expected) = (parsed.salt?, parsed.hash?);
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).ok()?;
        let mut salt_buf = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_buf).ok()?;
        let mut out = vec![0u8; expected.len()];
        argon2_into(
            password.as_bytes(),
            salt_bytes,
            algorithm,
            version,
            params,
            &mut out,
            memory,
        )
        .ok()?;
        // Output's equality is constant-time.
        Some(Output::new(&out).ok()? == expected)
    })()
    .unwrap_or(false);
    matches && real
}

/// [`verify_password_with`] in fresh memory.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    verify_password_with(password, stored, &mut HashMemory::default())
}

/// A fresh session token (64 hex characters) and the hash the database keeps.
pub fn new_session_token() -> Result<(String, Vec<u8>), String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| format!("no randomness: {e}"))?;
    let token = hex(&raw);
    let hash = token_hash(&token);
    Ok((token, hash))
}

/// What the database keeps of a token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

pub use chatroom_protocol::mentions::{Mention, mentions};

/// The `@name` mentions in a message, as name keys (lowercase), each once.
pub fn mentioned_name_keys(text: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for mention in mentions(text) {
        let key = name_key(mention.name);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_rules() {
        assert!(validate_username("alice").is_ok());
        assert!(validate_username("张伟").is_ok());
        assert!(validate_username("a.b-c_d9").is_ok());
        assert!(validate_username("").is_err());
        assert!(validate_username("has space").is_err());
        assert!(validate_username("a".repeat(33).as_str()).is_err());
        assert!(validate_username("名".repeat(32).as_str()).is_ok());
    }

    #[test]
    fn room_names_follow_the_rules() {
        assert!(validate_room_name("general-chat").is_ok());
        assert!(validate_room_name("开发").is_ok());
        assert!(validate_room_name("general chat").is_err());
        assert!(validate_room_name("no\u{3000}space").is_err());
        assert!(validate_room_name("#dev").is_err());
        assert!(validate_room_name("@bob").is_err());
        assert!(validate_room_name("c#").is_ok());
        assert!(validate_room_name("\"dev").is_err());
        assert!(validate_room_name("bob's").is_ok());
        assert!(validate_room_name(" padded").is_err());
        assert!(validate_room_name("tab\there").is_err());
        assert!(validate_room_name("").is_err());
    }

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("wrong horse", Some(&hash)));
        assert!(!verify_password("correct horse", None));
        assert_ne!(
            hash,
            hash_password("correct horse").expect("hash"),
            "salted"
        );
    }
    #[test]
    fn hashes_are_standard_phc_strings_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let mut memory = HashMemory::default();
        // Ours verifies with the crate's own verifier...
        let ours = hash_password_with("horse battery", &mut memory).expect("hash");
        let parsed = PasswordHash::new(&ours).expect("PHC string");
        assert!(
            Argon2::default()
                .verify_password(b"horse battery", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"horse", &parsed)
                .is_err()
        );
        // ...and the crate's own hashes (and other costs) verify with ours, in reused memory.
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let theirs = Argon2::default()
            .hash_password(b"staple", &salt)
            .expect("hash")
            .to_string();
        assert!(verify_password_with("staple", Some(&theirs), &mut memory));
        assert!(!verify_password_with("stapler", Some(&theirs), &mut memory));
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).expect("params"),
        )
        .hash_password(b"quick", &salt)
        .expect("hash")
        .to_string();
        assert!(verify_password_with("quick", Some(&cheap), &mut memory));
        assert!(!verify_password_with(
            "quick",
            Some("not a hash"),
            &mut memory
        ));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = new_session_token().expect("token");
        let (b, _) = new_session_token().expect("token");
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(ha, token_hash(&a));
    }

    #[test]
    fn look_alike_names_share_a_key() {
        let alice = look_alike_key("alice");
        assert_eq!(look_alike_key("Alice"), alice);
        assert_eq!(look_alike_key("\u{430}lice"), alice, "a Cyrillic a");
        assert_eq!(look_alike_key("ａｌｉｃｅ"), alice, "full-width letters");
        assert_ne!(look_alike_key("alice2"), alice);
        assert_ne!(look_alike_key("alicia"), alice);
        assert_eq!(look_alike_key("ＦＵＬＬ"), look_alike_key("full"));
        assert_ne!(look_alike_key("张伟"), look_alike_key("张三"));
    }

    #[test]
    fn mentions_are_found() {
        assert_eq!(
            mentioned_name_keys("hi @Bob and @张伟, thanks @bob. email@x"),
            vec!["bob", "张伟"]
        );
        assert!(mentioned_name_keys("no mentions @ all").is_empty());
    }
}
