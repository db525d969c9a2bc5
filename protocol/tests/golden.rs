//! Golden byte vectors and pinned variant indices.
//!
//! The golden vectors are read out of `PROTOCOL.md` itself (every fenced block whose info string
//! is `hex golden:NAME`), so the specification and this test cannot drift apart: each block must
//! decode to the value named here and each value must encode to exactly the bytes in the block.
//!
//! The variant-index tests encode one value of every variant of every enum on the wire and
//! check its leading tag byte, and check how many variants each enum has, so reordering,
//! removing or appending a variant fails here (update `PROTOCOL.md` with it).

use bytes::BytesMut;
use chatroom_protocol::codec::{
    ClientCodec, DEFAULT_MAX_FRAME_BYTES, HEADER_LEN, ServerCodec, decode_payload, encode_frame,
};
use chatroom_protocol::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use tokio_util::codec::Decoder;

const DOC: &str = include_str!("../PROTOCOL.md");
const MAX: u32 = DEFAULT_MAX_FRAME_BYTES;
const FENCE_PREFIX: &str = "```hex golden:";

// ---------------------------------------------------------------------------------------------
// Reading the golden blocks out of PROTOCOL.md
// ---------------------------------------------------------------------------------------------

/// Every ```` ```hex golden:NAME ```` block in the document, by name. Inside a block, `#` starts
/// a comment that runs to the end of the line; everything else is whitespace-separated pairs of
/// hex digits.
fn golden_blocks(doc: &str) -> BTreeMap<String, Vec<u8>> {
    let mut blocks = BTreeMap::new();
    let mut lines = doc.lines().enumerate();
    while let Some((start, line)) = lines.next() {
        let Some(name) = line.trim().strip_prefix(FENCE_PREFIX) else {
            continue;
        };
        let name = name.trim().to_owned();
        assert!(!name.is_empty(), "PROTOCOL.md:{}: unnamed block", start + 1);
        let mut bytes = Vec::new();
        let mut closed = false;
        for (n, line) in lines.by_ref() {
            if line.trim() == "```" {
                closed = true;
                break;
            }
            let data = line.split('#').next().unwrap_or_default();
            for token in data.split_whitespace() {
                assert!(
                    token.len() == 2,
                    "PROTOCOL.md:{}: `{token}` is not one byte in hex",
                    n + 1
                );
                let byte = u8::from_str_radix(token, 16).unwrap_or_else(|_| {
                    panic!("PROTOCOL.md:{}: `{token}` is not hex", n + 1);
                });
                bytes.push(byte);
            }
        }
        assert!(closed, "PROTOCOL.md:{}: block {name} not closed", start + 1);
        let previous = blocks.insert(name.clone(), bytes);
        assert!(previous.is_none(), "golden block {name} appears twice");
    }
    blocks
}

// ---------------------------------------------------------------------------------------------
// The values the golden blocks must encode
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum Golden {
    Client(ClientFrame),
    Server(ServerFrame),
}

fn default_limits() -> Limits {
    Limits {
        max_frame_bytes: 1_048_576,
        max_message_chars: 4000,
        max_history_page: 200,
        messages_per_second: 20,
        message_burst: 50,
        heartbeat_interval_ms: 30_000,
        idle_timeout_ms: 90_000,
    }
}

fn expected_goldens() -> Vec<(&'static str, Golden)> {
    use Golden::{Client, Server};
    vec![
        (
            "hello",
            Client(ClientFrame::Hello(Hello {
                protocol_version: 1,
                client_name: "bot".to_owned(),
            })),
        ),
        (
            "request-login",
            Client(ClientFrame::Request {
                id: 1,
                body: Request::Login {
                    username: "alice".to_owned(),
                    password: "hunter22".to_owned(),
                },
            }),
        ),
        (
            "request-send-message",
            Client(ClientFrame::Request {
                id: 300,
                body: Request::SendMessage {
                    room: RoomId(7),
                    text: "héllo 你好".to_owned(),
                },
            }),
        ),
        (
            "request-search",
            Client(ClientFrame::Request {
                id: 4,
                body: Request::Search {
                    query: "deploy fri*".to_owned(),
                    room: None,
                    before: Some(MessageId(1000)),
                    limit: 20,
                },
            }),
        ),
        (
            "request-history",
            Client(ClientFrame::Request {
                id: 2,
                body: Request::History {
                    room: RoomId(7),
                    anchor: HistoryAnchor::Before(1000),
                    limit: 50,
                },
            }),
        ),
        (
            "request-set-presence",
            Client(ClientFrame::Request {
                id: 3,
                body: Request::SetPresence {
                    status: PresenceStatus::Away,
                    message: Some("lunch".to_owned()),
                },
            }),
        ),
        ("pong", Client(ClientFrame::Pong { nonce: 42 })),
        (
            "welcome",
            Server(ServerFrame::Welcome(Welcome {
                protocol_version: 1,
                server_name: "Chat-Room".to_owned(),
                server_version: "0.1.0".to_owned(),
                limits: default_limits(),
                registration_open: true,
            })),
        ),
        (
            "response-done",
            Server(ServerFrame::Response {
                id: 2,
                result: Ok(Response::Done),
            }),
        ),
        (
            "response-sent",
            Server(ServerFrame::Response {
                id: 300,
                result: Ok(Response::Sent(SentMessage {
                    room: RoomId(7),
                    id: MessageId(1000),
                    seq: 42,
                    ts: 1_700_000_000_000,
                })),
            }),
        ),
        (
            "response-rooms",
            Server(ServerFrame::Response {
                id: 4,
                result: Ok(Response::Rooms(vec![RoomSummary {
                    id: RoomId(1),
                    kind: RoomKind::Public,
                    name: "public".to_owned(),
                    topic: String::new(),
                    member_count: 3,
                    latest_seq: 42,
                    last_read_seq: 40,
                    unread: 2,
                    mentions: 0,
                    my_role: Some(RoomRole::Member),
                }])),
            }),
        ),
        (
            "response-rate-limited",
            Server(ServerFrame::Response {
                id: 301,
                result: Err(ErrorBody::new(ErrorCode::RateLimited, "slow down")),
            }),
        ),
        (
            "event-message",
            Server(ServerFrame::Event(Event::Message(Message {
                id: MessageId(1000),
                room: RoomId(7),
                seq: 42,
                sender: UserId(3),
                sender_name: "alice".to_owned(),
                ts: 1_700_000_000_000,
                kind: MessageKind::Text,
                text: "héllo 你好".to_owned(),
            }))),
        ),
        (
            "event-member-left",
            Server(ServerFrame::Event(Event::MemberLeft {
                room: RoomId(7),
                user: UserId(3),
                username: "bob".to_owned(),
                reason: LeaveReason::Kicked {
                    by: "alice".to_owned(),
                    reason: None,
                },
            })),
        ),
        ("ping", Server(ServerFrame::Ping { nonce: 42 })),
        (
            "error-unsupported-version",
            Server(ServerFrame::Error(ErrorBody::new(
                ErrorCode::UnsupportedVersion,
                "need 1",
            ))),
        ),
    ]
}

fn encode(golden: &Golden) -> Vec<u8> {
    let bytes = match golden {
        Golden::Client(frame) => encode_frame(frame, MAX),
        Golden::Server(frame) => encode_frame(frame, MAX),
    };
    bytes.expect("encodes").to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// Golden tests
// ---------------------------------------------------------------------------------------------

#[test]
fn protocol_md_has_exactly_the_expected_golden_blocks() {
    let blocks = golden_blocks(DOC);
    let expected = expected_goldens();
    let mut names: Vec<&str> = expected.iter().map(|(name, _)| *name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(
        names.len(),
        before,
        "a golden name is used twice in this test"
    );
    let in_doc: Vec<&str> = blocks.keys().map(String::as_str).collect();
    assert_eq!(in_doc, names, "golden blocks in PROTOCOL.md vs this test");
}

#[test]
fn golden_values_encode_to_the_documented_bytes() {
    let blocks = golden_blocks(DOC);
    for (name, value) in expected_goldens() {
        let documented = blocks
            .get(name)
            .unwrap_or_else(|| panic!("PROTOCOL.md has no block `hex golden:{name}`"));
        let encoded = encode(&value);
        assert_eq!(
            hex(&encoded),
            hex(documented),
            "golden:{name}: encoding of {value:?} differs from PROTOCOL.md"
        );
    }
}

#[test]
fn documented_bytes_decode_to_the_golden_values() {
    let blocks = golden_blocks(DOC);
    for (name, value) in expected_goldens() {
        let documented = blocks
            .get(name)
            .unwrap_or_else(|| panic!("PROTOCOL.md has no block `hex golden:{name}`"));
        // The length prefix must announce exactly the rest of the block.
        let len = u32::from_be_bytes(documented[..HEADER_LEN].try_into().expect("4 bytes"));
        assert_eq!(
            len as usize,
            documented.len() - HEADER_LEN,
            "golden:{name}: length prefix"
        );
        let mut buf = BytesMut::from(&documented[..]);
        match value {
            Golden::Client(frame) => {
                let decoded = ServerCodec::new(MAX).decode(&mut buf).expect("decodes");
                assert_eq!(decoded, Some(frame), "golden:{name}");
            }
            Golden::Server(frame) => {
                let decoded = ClientCodec::new(MAX).decode(&mut buf).expect("decodes");
                assert_eq!(decoded, Some(frame), "golden:{name}");
            }
        }
        assert!(buf.is_empty(), "golden:{name}: bytes left over");
    }
}

#[test]
fn the_required_golden_vectors_are_present() {
    let blocks = golden_blocks(DOC);
    for name in [
        "hello",
        "request-login",
        "request-send-message",
        "welcome",
        "response-sent",
        "response-rate-limited",
        "event-message",
        "ping",
    ] {
        assert!(blocks.contains_key(name), "missing golden:{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Primitive encoding rules (the tables in PROTOCOL.md, "Payload encoding")
// ---------------------------------------------------------------------------------------------

/// The payload bytes of `value` (length prefix stripped), and a check that they decode back.
fn payload<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) -> Vec<u8> {
    let framed = encode_frame(value, MAX).expect("encodes");
    let bytes = framed[HEADER_LEN..].to_vec();
    let back: T = decode_payload(&bytes, MAX).expect("decodes");
    assert_eq!(&back, value);
    bytes
}

#[test]
fn primitive_encoding_rules() {
    // Unsigned varints (u16, u32, u64 alike).
    assert_eq!(payload(&0u64), [0x00]);
    assert_eq!(payload(&250u64), [0xfa]);
    assert_eq!(payload(&251u64), [0xfb, 0xfb, 0x00]);
    assert_eq!(payload(&300u64), [0xfb, 0x2c, 0x01]);
    assert_eq!(payload(&65_535u64), [0xfb, 0xff, 0xff]);
    assert_eq!(payload(&65_536u64), [0xfc, 0x00, 0x00, 0x01, 0x00]);
    assert_eq!(
        payload(&u64::from(u32::MAX)),
        [0xfc, 0xff, 0xff, 0xff, 0xff]
    );
    assert_eq!(
        payload(&(u64::from(u32::MAX) + 1)),
        [0xfd, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00]
    );
    assert_eq!(
        payload(&u64::MAX),
        [0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
    );
    assert_eq!(payload(&250u16), [0xfa]);
    assert_eq!(payload(&251u16), [0xfb, 0xfb, 0x00]);
    assert_eq!(payload(&300u32), [0xfb, 0x2c, 0x01]);
    assert_eq!(payload(&1_048_576u32), [0xfc, 0x00, 0x00, 0x10, 0x00]);
    // u8 and i8 are one raw byte, not varints.
    assert_eq!(payload(&251u8), [0xfb]);
    assert_eq!(payload(&255u8), [0xff]);
    assert_eq!(payload(&-1i8), [0xff]);
    // Wider signed integers: zigzag, then varint.
    assert_eq!(payload(&0i32), [0x00]);
    assert_eq!(payload(&-1i32), [0x01]);
    assert_eq!(payload(&1i32), [0x02]);
    assert_eq!(payload(&-2i32), [0x03]);
    assert_eq!(payload(&125i64), [0xfa]);
    assert_eq!(payload(&-126i64), [0xfb, 0xfb, 0x00]);
    assert_eq!(payload(&i32::MIN), [0xfc, 0xff, 0xff, 0xff, 0xff]);
    // bool.
    assert_eq!(payload(&false), [0x00]);
    assert_eq!(payload(&true), [0x01]);
    assert!(decode_payload::<bool>(&[0x02], MAX).is_err());
    // String: varint byte length, then UTF-8.
    assert_eq!(payload(&String::new()), [0x00]);
    assert_eq!(
        payload(&"héllo".to_owned()),
        [0x06, 0x68, 0xc3, 0xa9, 0x6c, 0x6c, 0x6f]
    );
    let long = "a".repeat(300);
    assert_eq!(payload(&long)[..3], [0xfb, 0x2c, 0x01]);
    assert!(decode_payload::<String>(&[0x01, 0xff], MAX).is_err());
    // Option.
    assert_eq!(payload(&None::<u32>), [0x00]);
    assert_eq!(payload(&Some(300u32)), [0x01, 0xfb, 0x2c, 0x01]);
    assert!(decode_payload::<Option<u32>>(&[0x02, 0x00], MAX).is_err());
    // Vec: varint count, then the items.
    assert_eq!(payload(&Vec::<u32>::new()), [0x00]);
    assert_eq!(payload(&vec![1u32, 300]), [0x02, 0x01, 0xfb, 0x2c, 0x01]);
    // Result: Ok = 0, Err = 1.
    assert_eq!(payload(&Ok::<u32, u32>(5)), [0x00, 0x05]);
    assert_eq!(payload(&Err::<u32, u32>(5)), [0x01, 0x05]);
    // Newtype ids are their u64.
    assert_eq!(payload(&RoomId(300)), [0xfb, 0x2c, 0x01]);
    assert_eq!(payload(&UserId(7)), [0x07]);
    assert_eq!(payload(&MessageId(0)), [0x00]);
    assert_eq!(payload(&FileId(u64::MAX))[0], 0xfd);
    // Structs: fields in order, no names, no count.
    assert_eq!(
        payload(&Hello {
            protocol_version: 1,
            client_name: "bot".to_owned()
        }),
        [0x01, 0x03, 0x62, 0x6f, 0x74]
    );
    // Enum variant tags are varint u32 too: 251 00 02 is tag 2 (ClientFrame::Pong).
    assert_eq!(
        decode_payload::<ClientFrame>(&[0xfb, 0x02, 0x00, 0x09], MAX).expect("decodes"),
        ClientFrame::Pong { nonce: 9 }
    );
    // Decoders accept a wider-than-needed varint; encoders always write the shortest form.
    assert_eq!(
        decode_payload::<u64>(&[0xfb, 0x05, 0x00], MAX).expect("decodes"),
        5
    );
    // ... but not one that does not fit the field's type.
    assert!(decode_payload::<u16>(&[0xfc, 0x00, 0x00, 0x01, 0x00], MAX).is_err());
    assert!(decode_payload::<u32>(&[0xfd, 0, 0, 0, 0, 1, 0, 0, 0], MAX).is_err());
    // Markers fe (u128) and ff are not valid for the types used here.
    assert!(decode_payload::<u64>(&[0xfe, 5], MAX).is_err());
    assert!(decode_payload::<u64>(&[0xff], MAX).is_err());
    // Trailing bytes after the value are rejected.
    assert!(decode_payload::<u32>(&[0x05, 0x00], MAX).is_err());
}

// ---------------------------------------------------------------------------------------------
// Pinned variant indices
// ---------------------------------------------------------------------------------------------

/// Checks that `variants[i]` encodes with tag `i` (as the first byte of its payload) and decodes
/// back, and that the type has exactly `variants.len()` variants (tag `len` is refused as an
/// unknown variant index). Every tag in use is below 251, so it is one byte.
fn pin<T: Serialize + DeserializeOwned + PartialEq + Debug>(type_name: &str, variants: &[T]) {
    for (index, value) in variants.iter().enumerate() {
        let tag = u8::try_from(index).expect("fits");
        assert!(tag < 251);
        let bytes = payload(value);
        assert_eq!(
            bytes.first(),
            Some(&tag),
            "{type_name}: {value:?} must be variant {index}"
        );
    }
    let count = variants.len();
    let unknown = u8::try_from(count).expect("fits");
    let error = decode_payload::<T>(&[unknown], MAX)
        .expect_err("one past the last variant")
        .to_string();
    assert!(
        error.contains(&format!("expected variant index 0 <= i < {count}")),
        "{type_name} must have exactly {count} variants (append the new one to this test and to \
         PROTOCOL.md); decoder said: {error}"
    );
}

fn user() -> UserSummary {
    UserSummary {
        id: UserId(3),
        username: "alice".to_owned(),
        is_admin: false,
    }
}

fn room() -> RoomSummary {
    RoomSummary {
        id: RoomId(1),
        kind: RoomKind::Public,
        name: "public".to_owned(),
        topic: String::new(),
        member_count: 1,
        latest_seq: 0,
        last_read_seq: 0,
        unread: 0,
        mentions: 0,
        my_role: None,
    }
}

fn message() -> Message {
    Message {
        id: MessageId(1),
        room: RoomId(1),
        seq: 1,
        sender: UserId(3),
        sender_name: "alice".to_owned(),
        ts: 0,
        kind: MessageKind::Text,
        text: "hi".to_owned(),
    }
}

fn member() -> Member {
    Member {
        user: user(),
        role: RoomRole::Member,
        status: PresenceStatus::Online,
    }
}

fn error_body() -> ErrorBody {
    ErrorBody::new(ErrorCode::Internal, "x")
}

#[test]
fn client_frame_variant_indices() {
    pin(
        "ClientFrame",
        &[
            ClientFrame::Hello(Hello {
                protocol_version: 1,
                client_name: String::new(),
            }),
            ClientFrame::Request {
                id: 1,
                body: Request::Ping,
            },
            ClientFrame::Pong { nonce: 1 },
        ],
    );
}

#[test]
fn server_frame_variant_indices() {
    pin(
        "ServerFrame",
        &[
            ServerFrame::Welcome(Welcome {
                protocol_version: 1,
                server_name: String::new(),
                server_version: String::new(),
                limits: default_limits(),
                registration_open: false,
            }),
            ServerFrame::Response {
                id: 1,
                result: Ok(Response::Done),
            },
            ServerFrame::Event(Event::ServerShutdown {
                reason: String::new(),
            }),
            ServerFrame::Ping { nonce: 1 },
            ServerFrame::Error(error_body()),
        ],
    );
}

#[test]
fn result_variant_indices() {
    assert_eq!(payload(&Ok::<Response, ErrorBody>(Response::Done))[0], 0);
    assert_eq!(payload(&Err::<Response, ErrorBody>(error_body()))[0], 1);
}

#[test]
fn request_variant_indices() {
    let s = String::new;
    let r = RoomId(1);
    pin(
        "Request",
        &[
            Request::Register {
                username: s(),
                password: s(),
            },
            Request::Login {
                username: s(),
                password: s(),
            },
            Request::Resume { token: s() },
            Request::Logout,
            Request::ChangePassword {
                old_password: s(),
                new_password: s(),
            },
            Request::MyRooms,
            Request::PublicRooms,
            Request::CreateRoom {
                name: s(),
                visibility: Visibility::Public,
            },
            Request::JoinRoom { name: s() },
            Request::LeaveRoom { room: r },
            Request::Invite {
                room: r,
                username: s(),
            },
            Request::RoomInfo { room: r },
            Request::SetTopic {
                room: r,
                topic: s(),
            },
            Request::OpenDirect { username: s() },
            Request::SendMessage { room: r, text: s() },
            Request::History {
                room: r,
                anchor: HistoryAnchor::Latest,
                limit: 1,
            },
            Request::MarkRead { room: r, seq: 1 },
            Request::SetPresence {
                status: PresenceStatus::Online,
                message: None,
            },
            Request::Typing { room: r },
            Request::Ping,
            Request::ListUsers,
            Request::Kick {
                room: r,
                username: s(),
                reason: None,
            },
            Request::OfferUpload {
                room: r,
                name: s(),
                size: 1,
                sha256: [7; 32],
            },
            Request::UploadChunk {
                upload: UploadId(1),
                offset: 0,
                data: vec![1, 2],
            },
            Request::FinishUpload {
                upload: UploadId(1),
            },
            Request::CancelUpload {
                upload: UploadId(1),
            },
            Request::FileInfo { file: FileId(1) },
            Request::ReadFile {
                file: FileId(1),
                offset: 0,
                len: 1,
            },
            Request::ListFiles { room: r },
            Request::DeleteMessage { room: r, seq: 1 },
            Request::ServerInfo,
            Request::SetRole {
                room: r,
                username: "bob".to_owned(),
                role: RoomRole::Moderator,
            },
            Request::Search {
                query: "q".to_owned(),
                room: Some(r),
                before: None,
                limit: 1,
            },
            Request::Ban {
                room: r,
                username: "bob".to_owned(),
                reason: None,
            },
            Request::Unban {
                room: r,
                username: "bob".to_owned(),
            },
            Request::Bans { room: r },
            Request::EditMessage {
                room: r,
                seq: 1,
                text: "x".to_owned(),
            },
            Request::Mute {
                room: r,
                username: "bob".to_owned(),
                secs: Some(60),
                reason: None,
            },
            Request::Unmute {
                room: r,
                username: "bob".to_owned(),
            },
            Request::Mutes { room: r },
            Request::RenameRoom {
                room: r,
                name: "x".to_owned(),
            },
            Request::ResetPassword {
                username: "bob".to_owned(),
                password: "x".to_owned(),
            },
            Request::LogOutUser {
                username: "bob".to_owned(),
            },
            Request::SuspendUser {
                username: "bob".to_owned(),
                reason: None,
            },
            Request::UnsuspendUser {
                username: "bob".to_owned(),
            },
            Request::Suspensions,
            Request::DeleteMessagesBy {
                room: r,
                username: "bob".to_owned(),
                within_secs: 3600,
            },
            Request::SetServerAdmin {
                username: "bob".to_owned(),
                admin: true,
            },
            Request::DeleteAccount {
                username: "bob".to_owned(),
            },
            Request::SetIdle { idle: true },
        ],
    );
}

#[test]
fn response_variant_indices() {
    pin(
        "Response",
        &[
            Response::Done,
            Response::Session(Session {
                user: user(),
                token: "t".to_owned(),
            }),
            Response::Rooms(vec![room()]),
            Response::Room(room()),
            Response::RoomInfo(RoomInfo {
                room: room(),
                members: vec![member()],
            }),
            Response::Sent(SentMessage {
                room: RoomId(1),
                id: MessageId(1),
                seq: 1,
                ts: 0,
            }),
            Response::History(HistoryPage {
                room: RoomId(1),
                messages: vec![message()],
                has_more: false,
            }),
            Response::Users(vec![UserPresence {
                user: user(),
                status: PresenceStatus::Away,
                status_message: None,
            }]),
            Response::Pong,
            Response::UploadReady(UploadReady {
                upload: UploadId(1),
                offset: 0,
                max_chunk_bytes: 1,
                window: 1,
            }),
            Response::ChunkStored {
                upload: UploadId(1),
                received: 1,
            },
            Response::File(file_info()),
            Response::FileChunk {
                file: FileId(1),
                offset: 0,
                data: vec![1],
            },
            Response::Files(vec![file_info()]),
            Response::ServerInfo(ServerInfo {
                ai_bot: Some("ai".to_owned()),
            }),
            Response::SearchResults(SearchPage {
                messages: vec![message()],
                next: Some(MessageId(1)),
            }),
            Response::Bans(vec![BanInfo {
                username: "bob".to_owned(),
                by: "alice".to_owned(),
                reason: Some("spam".to_owned()),
                since: 1,
            }]),
            Response::Mutes(vec![MuteInfo {
                username: "bob".to_owned(),
                by: "alice".to_owned(),
                reason: None,
                since: 1,
                until: Some(2),
            }]),
            Response::Deleted { count: 3 },
        ],
    );
}

fn file_info() -> FileInfo {
    FileInfo {
        id: FileId(1),
        room: RoomId(1),
        seq: 1,
        name: "a.txt".to_owned(),
        size: 1,
        sha256: [0; 32],
        uploader: UserId(1),
        uploader_name: "alice".to_owned(),
        ts: 0,
    }
}

#[test]
fn event_variant_indices() {
    let r = RoomId(1);
    pin(
        "Event",
        &[
            Event::Message(message()),
            Event::MemberJoined {
                room: r,
                member: member(),
            },
            Event::MemberLeft {
                room: r,
                user: UserId(3),
                username: "alice".to_owned(),
                reason: LeaveReason::Left,
            },
            Event::Presence(vec![PresenceUpdate {
                user: UserId(3),
                username: "alice".to_owned(),
                status: PresenceStatus::Offline,
                status_message: None,
            }]),
            Event::Typing {
                room: r,
                user: UserId(3),
                username: "alice".to_owned(),
            },
            Event::RoomUpdated(room()),
            Event::Kicked {
                room: r,
                room_name: "public".to_owned(),
                by: "bob".to_owned(),
                reason: Some("spam".to_owned()),
            },
            Event::ServerShutdown {
                reason: "bye".to_owned(),
            },
            Event::ReadMarker { room: r, seq: 1 },
            Event::TopicChanged {
                room: r,
                topic: "t".to_owned(),
                by: "bob".to_owned(),
            },
            Event::MessageDeleted {
                room: r,
                seq: 1,
                by: "bob".to_owned(),
            },
            Event::DraftUpdated(Draft {
                room: r,
                draft: 1,
                sender: UserId(2),
                sender_name: "ai".to_owned(),
                text: "hel".to_owned(),
            }),
            Event::DraftEnded {
                room: r,
                draft: 1,
                seq: Some(2),
            },
            Event::RoleChanged {
                room: r,
                user: UserId(2),
                username: "bob".to_owned(),
                role: RoomRole::Owner,
                by: None,
            },
            Event::MessageEdited(Message {
                kind: MessageKind::Edited { at: 5 },
                ..message()
            }),
            Event::Muted {
                room: r,
                user: UserId(2),
                username: "bob".to_owned(),
                by: "alice".to_owned(),
                reason: None,
                until: None,
            },
            Event::Unmuted {
                room: r,
                user: UserId(2),
                username: "bob".to_owned(),
                by: "alice".to_owned(),
            },
            Event::RoomRenamed {
                room: r,
                name: "x".to_owned(),
                by: "alice".to_owned(),
            },
            Event::Banned {
                room: r,
                room_name: "dev".to_owned(),
                by: "bob".to_owned(),
                reason: Some("spam".to_owned()),
            },
            Event::AdminChanged {
                user: UserId(2),
                username: "bob".to_owned(),
                admin: true,
                by: "alice".to_owned(),
            },
        ],
    );
}

#[test]
fn error_code_variant_indices() {
    pin(
        "ErrorCode",
        &[
            ErrorCode::BadRequest,
            ErrorCode::UnsupportedVersion,
            ErrorCode::HandshakeRequired,
            ErrorCode::NotAuthenticated,
            ErrorCode::AlreadyAuthenticated,
            ErrorCode::InvalidCredentials,
            ErrorCode::InvalidToken,
            ErrorCode::UsernameTaken,
            ErrorCode::InvalidUsername,
            ErrorCode::WeakPassword,
            ErrorCode::RegistrationClosed,
            ErrorCode::RoomNotFound,
            ErrorCode::UserNotFound,
            ErrorCode::RoomNameTaken,
            ErrorCode::InvalidRoomName,
            ErrorCode::NotMember,
            ErrorCode::AlreadyMember,
            ErrorCode::Forbidden,
            ErrorCode::MessageEmpty,
            ErrorCode::MessageTooLong,
            ErrorCode::RateLimited,
            ErrorCode::TooManyConnections,
            ErrorCode::FrameTooLarge,
            ErrorCode::MalformedFrame,
            ErrorCode::TooSlow,
            ErrorCode::IdleTimeout,
            ErrorCode::ShuttingDown,
            ErrorCode::SessionRevoked,
            ErrorCode::Internal,
            ErrorCode::FileTooLarge,
            ErrorCode::QuotaExceeded,
            ErrorCode::HashMismatch,
            ErrorCode::FileNotFound,
            ErrorCode::UploadNotFound,
            ErrorCode::BadChunk,
        ],
    );
}

#[test]
fn history_anchor_variant_indices() {
    pin(
        "HistoryAnchor",
        &[
            HistoryAnchor::Latest,
            HistoryAnchor::Before(1),
            HistoryAnchor::After(1),
        ],
    );
}

#[test]
fn visibility_variant_indices() {
    pin("Visibility", &[Visibility::Public, Visibility::Private]);
}

#[test]
fn room_kind_variant_indices() {
    pin(
        "RoomKind",
        &[RoomKind::Public, RoomKind::Private, RoomKind::Direct],
    );
}

#[test]
fn room_role_variant_indices() {
    pin(
        "RoomRole",
        &[RoomRole::Member, RoomRole::Moderator, RoomRole::Owner],
    );
}

#[test]
fn presence_status_variant_indices() {
    pin(
        "PresenceStatus",
        &[
            PresenceStatus::Online,
            PresenceStatus::Away,
            PresenceStatus::Offline,
        ],
    );
}

#[test]
fn message_kind_variant_indices() {
    pin(
        "MessageKind",
        &[
            MessageKind::Text,
            MessageKind::System,
            MessageKind::File(Box::new(FileRef {
                id: FileId(1),
                name: "a.txt".to_owned(),
                size: 1,
                sha256: [0; 32],
            })),
            MessageKind::Deleted,
            MessageKind::Edited { at: 1 },
        ],
    );
}

#[test]
fn leave_reason_variant_indices() {
    pin(
        "LeaveReason",
        &[
            LeaveReason::Left,
            LeaveReason::Kicked {
                by: "bob".to_owned(),
                reason: None,
            },
            LeaveReason::AccountDeleted,
            LeaveReason::Banned {
                by: "bob".to_owned(),
                reason: None,
            },
        ],
    );
}
