//! Property tests: every frame survives `encode_frame` → codec decode unchanged.
//!
//! There is one strategy per type in `frames.rs`. Integers are biased towards the varint
//! boundaries (250/251, u16::MAX/65536, u32::MAX/2^32) and strings include arbitrary Unicode,
//! control characters and NUL, and lengths either side of the 251-byte varint boundary.

use bytes::BytesMut;
use chatroom_protocol::codec::{ClientCodec, HEADER_LEN, ServerCodec, encode_frame};
use chatroom_protocol::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use tokio_util::codec::Decoder;

/// Generous, so that generated collections never hit the limit.
const MAX: u32 = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Primitives
// ---------------------------------------------------------------------------------------------

fn u64_any() -> BoxedStrategy<u64> {
    prop_oneof![
        select(vec![
            0,
            1,
            250,
            251,
            252,
            255,
            256,
            u64::from(u16::MAX),
            u64::from(u16::MAX) + 1,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ]),
        0..251u64,
        251..=u64::from(u16::MAX),
        u64::from(u16::MAX) + 1..=u64::from(u32::MAX),
        any::<u64>(),
    ]
    .boxed()
}

fn u32_any() -> BoxedStrategy<u32> {
    prop_oneof![
        select(vec![
            0,
            1,
            250,
            251,
            u32::from(u16::MAX),
            u32::from(u16::MAX) + 1,
            u32::MAX
        ]),
        0..251u32,
        any::<u32>(),
    ]
    .boxed()
}

fn string_any() -> BoxedStrategy<String> {
    prop_oneof![
        // Any printable Unicode, including astral planes.
        any::<String>(),
        // Any `char` at all, including control characters and NUL.
        vec(any::<char>(), 0..24).prop_map(String::from_iter),
        // Around the 251-byte varint length boundary.
        "[a-z]{245,260}",
        "[é你😀]{80,90}",
        Just(String::new()),
        Just("héllo 你好 🦀".to_owned()),
    ]
    .boxed()
}

fn user_id() -> BoxedStrategy<UserId> {
    u64_any().prop_map(UserId).boxed()
}

fn room_id() -> BoxedStrategy<RoomId> {
    u64_any().prop_map(RoomId).boxed()
}

fn message_id() -> BoxedStrategy<MessageId> {
    u64_any().prop_map(MessageId).boxed()
}

fn file_id() -> BoxedStrategy<FileId> {
    u64_any().prop_map(FileId).boxed()
}

fn upload_id() -> BoxedStrategy<UploadId> {
    u64_any().prop_map(UploadId).boxed()
}

fn sha256() -> BoxedStrategy<[u8; 32]> {
    any::<[u8; 32]>().boxed()
}

fn bytes_any() -> BoxedStrategy<Vec<u8>> {
    vec(any::<u8>(), 0..600).boxed()
}

fn file_ref() -> BoxedStrategy<FileRef> {
    (file_id(), string_any(), u64_any(), sha256())
        .prop_map(|(id, name, size, sha256)| FileRef {
            id,
            name,
            size,
            sha256,
        })
        .boxed()
}

fn file_info() -> BoxedStrategy<FileInfo> {
    (
        (file_id(), room_id(), u64_any(), string_any(), u64_any()),
        (sha256(), user_id(), string_any(), u64_any()),
    )
        .prop_map(
            |((id, room, seq, name, size), (sha256, uploader, uploader_name, ts))| FileInfo {
                id,
                room,
                seq,
                name,
                size,
                sha256,
                uploader,
                uploader_name,
                ts,
            },
        )
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Small enums
// ---------------------------------------------------------------------------------------------

fn visibility() -> BoxedStrategy<Visibility> {
    prop_oneof![Just(Visibility::Public), Just(Visibility::Private)].boxed()
}

fn room_kind() -> BoxedStrategy<RoomKind> {
    prop_oneof![
        Just(RoomKind::Public),
        Just(RoomKind::Private),
        Just(RoomKind::Direct)
    ]
    .boxed()
}

fn room_role() -> BoxedStrategy<RoomRole> {
    prop_oneof![
        Just(RoomRole::Member),
        Just(RoomRole::Moderator),
        Just(RoomRole::Owner)
    ]
    .boxed()
}

fn presence_status() -> BoxedStrategy<PresenceStatus> {
    prop_oneof![
        Just(PresenceStatus::Online),
        Just(PresenceStatus::Away),
        Just(PresenceStatus::Offline)
    ]
    .boxed()
}

fn message_kind() -> BoxedStrategy<MessageKind> {
    prop_oneof![
        Just(MessageKind::Text),
        Just(MessageKind::System),
        file_ref().prop_map(|f| MessageKind::File(Box::new(f))),
        Just(MessageKind::Deleted),
        u64_any().prop_map(|at| MessageKind::Edited { at }),
    ]
    .boxed()
}

fn history_anchor() -> BoxedStrategy<HistoryAnchor> {
    prop_oneof![
        Just(HistoryAnchor::Latest),
        u64_any().prop_map(HistoryAnchor::Before),
        u64_any().prop_map(HistoryAnchor::After),
    ]
    .boxed()
}

const ALL_ERROR_CODES: [ErrorCode; 35] = [
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
];

fn error_code() -> BoxedStrategy<ErrorCode> {
    select(ALL_ERROR_CODES.to_vec()).boxed()
}

fn leave_reason() -> BoxedStrategy<LeaveReason> {
    prop_oneof![
        Just(LeaveReason::Left),
        (string_any(), option::of(string_any()))
            .prop_map(|(by, reason)| LeaveReason::Kicked { by, reason }),
        Just(LeaveReason::AccountDeleted),
        (string_any(), option::of(string_any()))
            .prop_map(|(by, reason)| LeaveReason::Banned { by, reason }),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Structs
// ---------------------------------------------------------------------------------------------

fn hello() -> BoxedStrategy<Hello> {
    (u32_any(), string_any())
        .prop_map(|(protocol_version, client_name)| Hello {
            protocol_version,
            client_name,
        })
        .boxed()
}

fn limits() -> BoxedStrategy<Limits> {
    (
        u32_any(),
        u32_any(),
        u32_any(),
        u32_any(),
        u32_any(),
        u32_any(),
        u32_any(),
    )
        .prop_map(
            |(
                max_frame_bytes,
                max_message_chars,
                max_history_page,
                messages_per_second,
                message_burst,
                heartbeat_interval_ms,
                idle_timeout_ms,
            )| Limits {
                max_frame_bytes,
                max_message_chars,
                max_history_page,
                messages_per_second,
                message_burst,
                heartbeat_interval_ms,
                idle_timeout_ms,
            },
        )
        .boxed()
}

fn welcome() -> BoxedStrategy<Welcome> {
    (
        u32_any(),
        string_any(),
        string_any(),
        limits(),
        any::<bool>(),
    )
        .prop_map(
            |(protocol_version, server_name, server_version, limits, registration_open)| Welcome {
                protocol_version,
                server_name,
                server_version,
                limits,
                registration_open,
            },
        )
        .boxed()
}

fn user_summary() -> BoxedStrategy<UserSummary> {
    (user_id(), string_any(), any::<bool>())
        .prop_map(|(id, username, is_admin)| UserSummary {
            id,
            username,
            is_admin,
        })
        .boxed()
}

fn session() -> BoxedStrategy<Session> {
    (user_summary(), string_any())
        .prop_map(|(user, token)| Session { user, token })
        .boxed()
}

fn user_presence() -> BoxedStrategy<UserPresence> {
    (user_summary(), presence_status(), option::of(string_any()))
        .prop_map(|(user, status, status_message)| UserPresence {
            user,
            status,
            status_message,
        })
        .boxed()
}

fn room_summary() -> BoxedStrategy<RoomSummary> {
    (
        (
            room_id(),
            room_kind(),
            string_any(),
            string_any(),
            u32_any(),
        ),
        (
            u64_any(),
            u64_any(),
            u32_any(),
            u32_any(),
            option::of(room_role()),
        ),
    )
        .prop_map(
            |(
                (id, kind, name, topic, member_count),
                (latest_seq, last_read_seq, unread, mentions, my_role),
            )| RoomSummary {
                id,
                kind,
                name,
                topic,
                member_count,
                latest_seq,
                last_read_seq,
                unread,
                mentions,
                my_role,
            },
        )
        .boxed()
}

fn member() -> BoxedStrategy<Member> {
    (user_summary(), room_role(), presence_status())
        .prop_map(|(user, role, status)| Member { user, role, status })
        .boxed()
}

fn room_info() -> BoxedStrategy<RoomInfo> {
    (room_summary(), vec(member(), 0..4))
        .prop_map(|(room, members)| RoomInfo { room, members })
        .boxed()
}

fn sent_message() -> BoxedStrategy<SentMessage> {
    (room_id(), message_id(), u64_any(), u64_any())
        .prop_map(|(room, id, seq, ts)| SentMessage { room, id, seq, ts })
        .boxed()
}

fn message() -> BoxedStrategy<Message> {
    (
        (message_id(), room_id(), u64_any(), user_id()),
        (string_any(), u64_any(), message_kind(), string_any()),
    )
        .prop_map(
            |((id, room, seq, sender), (sender_name, ts, kind, text))| Message {
                id,
                room,
                seq,
                sender,
                sender_name,
                ts,
                kind,
                text,
            },
        )
        .boxed()
}

fn history_page() -> BoxedStrategy<HistoryPage> {
    (room_id(), vec(message(), 0..4), any::<bool>())
        .prop_map(|(room, messages, has_more)| HistoryPage {
            room,
            messages,
            has_more,
        })
        .boxed()
}

fn presence_update() -> BoxedStrategy<PresenceUpdate> {
    (
        user_id(),
        string_any(),
        presence_status(),
        option::of(string_any()),
    )
        .prop_map(|(user, username, status, status_message)| PresenceUpdate {
            user,
            username,
            status,
            status_message,
        })
        .boxed()
}

fn error_body() -> BoxedStrategy<ErrorBody> {
    (error_code(), string_any())
        .prop_map(|(code, message)| ErrorBody { code, message })
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Requests, responses, events
// ---------------------------------------------------------------------------------------------

fn request() -> BoxedStrategy<Request> {
    prop_oneof![
        (string_any(), string_any())
            .prop_map(|(username, password)| Request::Register { username, password }),
        (string_any(), string_any())
            .prop_map(|(username, password)| Request::Login { username, password }),
        string_any().prop_map(|token| Request::Resume { token }),
        Just(Request::Logout),
        (string_any(), string_any()).prop_map(|(old_password, new_password)| {
            Request::ChangePassword {
                old_password,
                new_password,
            }
        }),
        Just(Request::MyRooms),
        Just(Request::PublicRooms),
        (string_any(), visibility())
            .prop_map(|(name, visibility)| Request::CreateRoom { name, visibility }),
        string_any().prop_map(|name| Request::JoinRoom { name }),
        room_id().prop_map(|room| Request::LeaveRoom { room }),
        (room_id(), string_any()).prop_map(|(room, username)| Request::Invite { room, username }),
        room_id().prop_map(|room| Request::RoomInfo { room }),
        (room_id(), string_any()).prop_map(|(room, topic)| Request::SetTopic { room, topic }),
        string_any().prop_map(|username| Request::OpenDirect { username }),
        (room_id(), string_any()).prop_map(|(room, text)| Request::SendMessage { room, text }),
        (room_id(), history_anchor(), u32_any()).prop_map(|(room, anchor, limit)| {
            Request::History {
                room,
                anchor,
                limit,
            }
        }),
        (room_id(), u64_any()).prop_map(|(room, seq)| Request::MarkRead { room, seq }),
        (presence_status(), option::of(string_any()))
            .prop_map(|(status, message)| Request::SetPresence { status, message }),
        room_id().prop_map(|room| Request::Typing { room }),
        Just(Request::Ping),
        Just(Request::ListUsers),
        (room_id(), string_any(), option::of(string_any())).prop_map(|(room, username, reason)| {
            Request::Kick {
                room,
                username,
                reason,
            }
        }),
        (room_id(), string_any(), u64_any(), sha256()).prop_map(|(room, name, size, sha256)| {
            Request::OfferUpload {
                room,
                name,
                size,
                sha256,
            }
        }),
        (upload_id(), u64_any(), bytes_any()).prop_map(|(upload, offset, data)| {
            Request::UploadChunk {
                upload,
                offset,
                data,
            }
        }),
        upload_id().prop_map(|upload| Request::FinishUpload { upload }),
        upload_id().prop_map(|upload| Request::CancelUpload { upload }),
        file_id().prop_map(|file| Request::FileInfo { file }),
        (file_id(), u64_any(), u32_any()).prop_map(|(file, offset, len)| Request::ReadFile {
            file,
            offset,
            len
        }),
        room_id().prop_map(|room| Request::ListFiles { room }),
        (room_id(), u64_any()).prop_map(|(room, seq)| Request::DeleteMessage { room, seq }),
        Just(Request::ServerInfo),
        (room_id(), string_any(), room_role()).prop_map(|(room, username, role)| {
            Request::SetRole {
                room,
                username,
                role,
            }
        }),
        (
            string_any(),
            option::of(room_id()),
            option::of(message_id()),
            u32_any()
        )
            .prop_map(|(query, room, before, limit)| Request::Search {
                query,
                room,
                before,
                limit,
            }),
        (room_id(), string_any(), option::of(string_any())).prop_map(|(room, username, reason)| {
            Request::Ban {
                room,
                username,
                reason,
            }
        }),
        (room_id(), string_any()).prop_map(|(room, username)| Request::Unban { room, username }),
        room_id().prop_map(|room| Request::Bans { room }),
        (room_id(), u64_any(), string_any()).prop_map(|(room, seq, text)| Request::EditMessage {
            room,
            seq,
            text
        }),
        (
            room_id(),
            string_any(),
            option::of(u64_any()),
            option::of(string_any())
        )
            .prop_map(|(room, username, secs, reason)| Request::Mute {
                room,
                username,
                secs,
                reason
            }),
        (room_id(), string_any()).prop_map(|(room, username)| Request::Unmute { room, username }),
        room_id().prop_map(|room| Request::Mutes { room }),
        (room_id(), string_any()).prop_map(|(room, name)| Request::RenameRoom { room, name }),
        (string_any(), string_any())
            .prop_map(|(username, password)| Request::ResetPassword { username, password }),
        string_any().prop_map(|username| Request::LogOutUser { username }),
        (string_any(), option::of(string_any()))
            .prop_map(|(username, reason)| Request::SuspendUser { username, reason }),
        string_any().prop_map(|username| Request::UnsuspendUser { username }),
        Just(Request::Suspensions),
        (room_id(), string_any(), u64_any()).prop_map(|(room, username, within_secs)| {
            Request::DeleteMessagesBy {
                room,
                username,
                within_secs,
            }
        }),
        (string_any(), any::<bool>())
            .prop_map(|(username, admin)| Request::SetServerAdmin { username, admin }),
        string_any().prop_map(|username| Request::DeleteAccount { username }),
        any::<bool>().prop_map(|idle| Request::SetIdle { idle }),
    ]
    .boxed()
}

fn response() -> BoxedStrategy<Response> {
    prop_oneof![
        Just(Response::Done),
        session().prop_map(Response::Session),
        vec(room_summary(), 0..4).prop_map(Response::Rooms),
        room_summary().prop_map(Response::Room),
        room_info().prop_map(Response::RoomInfo),
        sent_message().prop_map(Response::Sent),
        history_page().prop_map(Response::History),
        vec(user_presence(), 0..4).prop_map(Response::Users),
        Just(Response::Pong),
        (upload_id(), u64_any(), u32_any(), u32_any()).prop_map(
            |(upload, offset, max_chunk_bytes, window)| Response::UploadReady(UploadReady {
                upload,
                offset,
                max_chunk_bytes,
                window,
            })
        ),
        (upload_id(), u64_any())
            .prop_map(|(upload, received)| Response::ChunkStored { upload, received }),
        file_info().prop_map(Response::File),
        (file_id(), u64_any(), bytes_any()).prop_map(|(file, offset, data)| Response::FileChunk {
            file,
            offset,
            data
        }),
        vec(file_info(), 0..3).prop_map(Response::Files),
        option::of(string_any()).prop_map(|ai_bot| Response::ServerInfo(ServerInfo { ai_bot })),
        (vec(message(), 0..4), option::of(message_id()))
            .prop_map(|(messages, next)| Response::SearchResults(SearchPage { messages, next })),
        vec(
            (
                string_any(),
                string_any(),
                option::of(string_any()),
                u64_any()
            ),
            0..3
        )
        .prop_map(|bans| Response::Bans(
            bans.into_iter()
                .map(|(username, by, reason, since)| BanInfo {
                    username,
                    by,
                    reason,
                    since
                })
                .collect()
        )),
        vec(
            (
                string_any(),
                string_any(),
                option::of(string_any()),
                u64_any(),
                option::of(u64_any())
            ),
            0..3
        )
        .prop_map(|mutes| Response::Mutes(
            mutes
                .into_iter()
                .map(|(username, by, reason, since, until)| MuteInfo {
                    username,
                    by,
                    reason,
                    since,
                    until
                })
                .collect()
        )),
        any::<u32>().prop_map(|count| Response::Deleted { count }),
    ]
    .boxed()
}

fn event() -> BoxedStrategy<Event> {
    prop_oneof![
        message().prop_map(Event::Message),
        (room_id(), member()).prop_map(|(room, member)| Event::MemberJoined { room, member }),
        (room_id(), user_id(), string_any(), leave_reason()).prop_map(
            |(room, user, username, reason)| Event::MemberLeft {
                room,
                user,
                username,
                reason
            }
        ),
        vec(presence_update(), 0..4).prop_map(Event::Presence),
        (room_id(), user_id(), string_any()).prop_map(|(room, user, username)| Event::Typing {
            room,
            user,
            username
        }),
        room_summary().prop_map(Event::RoomUpdated),
        (
            room_id(),
            string_any(),
            string_any(),
            option::of(string_any())
        )
            .prop_map(|(room, room_name, by, reason)| Event::Kicked {
                room,
                room_name,
                by,
                reason
            }),
        string_any().prop_map(|reason| Event::ServerShutdown { reason }),
        (room_id(), u64_any()).prop_map(|(room, seq)| Event::ReadMarker { room, seq }),
        (room_id(), string_any(), string_any()).prop_map(|(room, topic, by)| Event::TopicChanged {
            room,
            topic,
            by
        }),
        (room_id(), u64_any(), string_any()).prop_map(|(room, seq, by)| Event::MessageDeleted {
            room,
            seq,
            by
        }),
        (room_id(), u64_any(), user_id(), string_any(), string_any()).prop_map(
            |(room, draft, sender, sender_name, text)| Event::DraftUpdated(Draft {
                room,
                draft,
                sender,
                sender_name,
                text
            })
        ),
        (room_id(), u64_any(), option::of(u64_any()))
            .prop_map(|(room, draft, seq)| Event::DraftEnded { room, draft, seq }),
        (
            room_id(),
            user_id(),
            string_any(),
            room_role(),
            option::of(string_any())
        )
            .prop_map(|(room, user, username, role, by)| Event::RoleChanged {
                room,
                user,
                username,
                role,
                by
            }),
        message().prop_map(Event::MessageEdited),
        (
            room_id(),
            user_id(),
            string_any(),
            string_any(),
            option::of(string_any()),
            option::of(u64_any())
        )
            .prop_map(|(room, user, username, by, reason, until)| Event::Muted {
                room,
                user,
                username,
                by,
                reason,
                until
            }),
        (room_id(), user_id(), string_any(), string_any()).prop_map(
            |(room, user, username, by)| Event::Unmuted {
                room,
                user,
                username,
                by
            }
        ),
        (room_id(), string_any(), string_any()).prop_map(|(room, name, by)| Event::RoomRenamed {
            room,
            name,
            by
        }),
        (
            room_id(),
            string_any(),
            string_any(),
            option::of(string_any())
        )
            .prop_map(|(room, room_name, by, reason)| Event::Banned {
                room,
                room_name,
                by,
                reason
            }),
        (user_id(), string_any(), any::<bool>(), string_any()).prop_map(
            |(user, username, admin, by)| Event::AdminChanged {
                user,
                username,
                admin,
                by
            }
        ),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Top-level frames
// ---------------------------------------------------------------------------------------------

fn client_frame() -> BoxedStrategy<ClientFrame> {
    prop_oneof![
        hello().prop_map(ClientFrame::Hello),
        (u32_any(), request()).prop_map(|(id, body)| ClientFrame::Request { id, body }),
        u64_any().prop_map(|nonce| ClientFrame::Pong { nonce }),
    ]
    .boxed()
}

fn response_result() -> BoxedStrategy<Result<Response, ErrorBody>> {
    prop_oneof![response().prop_map(Ok), error_body().prop_map(Err)].boxed()
}

fn server_frame() -> BoxedStrategy<ServerFrame> {
    prop_oneof![
        welcome().prop_map(ServerFrame::Welcome),
        (u32_any(), response_result())
            .prop_map(|(id, result)| ServerFrame::Response { id, result }),
        event().prop_map(ServerFrame::Event),
        u64_any().prop_map(|nonce| ServerFrame::Ping { nonce }),
        error_body().prop_map(ServerFrame::Error),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

/// Encodes a client frame and decodes it with the server's codec.
fn client_roundtrip(frame: &ClientFrame) -> Result<(), TestCaseError> {
    let bytes = encode_frame(frame, MAX).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let len = u32::from_be_bytes(bytes[..HEADER_LEN].try_into().expect("4 bytes"));
    prop_assert_eq!(len as usize, bytes.len() - HEADER_LEN);
    let mut buf = BytesMut::from(&bytes[..]);
    let decoded = ServerCodec::new(MAX)
        .decode(&mut buf)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(decoded.as_ref(), Some(frame));
    prop_assert!(buf.is_empty());
    Ok(())
}

/// Encodes a server frame and decodes it with the client's codec.
fn server_roundtrip(frame: &ServerFrame) -> Result<(), TestCaseError> {
    let bytes = encode_frame(frame, MAX).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let len = u32::from_be_bytes(bytes[..HEADER_LEN].try_into().expect("4 bytes"));
    prop_assert_eq!(len as usize, bytes.len() - HEADER_LEN);
    let mut buf = BytesMut::from(&bytes[..]);
    let decoded = ClientCodec::new(MAX)
        .decode(&mut buf)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(decoded.as_ref(), Some(frame));
    prop_assert!(buf.is_empty());
    Ok(())
}

proptest! {
    #[test]
    fn any_client_frame_roundtrips(frame in client_frame()) {
        client_roundtrip(&frame)?;
    }

    #[test]
    fn hello_roundtrips(hello in hello()) {
        client_roundtrip(&ClientFrame::Hello(hello))?;
    }

    #[test]
    fn every_request_roundtrips(id in u32_any(), body in request()) {
        client_roundtrip(&ClientFrame::Request { id, body })?;
    }

    #[test]
    fn pong_roundtrips(nonce in u64_any()) {
        client_roundtrip(&ClientFrame::Pong { nonce })?;
    }

    #[test]
    fn any_server_frame_roundtrips(frame in server_frame()) {
        server_roundtrip(&frame)?;
    }

    #[test]
    fn welcome_roundtrips(welcome in welcome()) {
        server_roundtrip(&ServerFrame::Welcome(welcome))?;
    }

    #[test]
    fn every_ok_response_roundtrips(id in u32_any(), response in response()) {
        server_roundtrip(&ServerFrame::Response { id, result: Ok(response) })?;
    }

    #[test]
    fn every_err_response_roundtrips(id in u32_any(), error in error_body()) {
        server_roundtrip(&ServerFrame::Response { id, result: Err(error) })?;
    }

    #[test]
    fn every_event_roundtrips(event in event()) {
        server_roundtrip(&ServerFrame::Event(event))?;
    }

    /// The allocation-free view of a message event reads the same fields as the full decode,
    /// and sees nothing in any other frame.
    #[test]
    fn a_message_view_matches_the_message(m in message(), other in server_frame()) {
        let frame = encode_frame(&ServerFrame::Event(Event::Message(m.clone())), MAX)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let view = chatroom_protocol::codec::peek_message(&frame[HEADER_LEN..])
            .ok_or_else(|| TestCaseError::fail("no view of a message event"))?;
        prop_assert_eq!(
            view_fields(&view),
            message_fields(&m)
        );
        if !matches!(other, ServerFrame::Event(Event::Message(_))) {
            let frame = encode_frame(&other, MAX).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(chatroom_protocol::codec::peek_message(&frame[HEADER_LEN..]).is_none());
        }
    }

    /// The view is read by hand for common kinds; it must accept exactly the payloads the full
    /// decode accepts, with the same fields: a valid event, every truncation of it, one byte of
    /// it changed, junk after it, and arbitrary bytes after the message tags.
    #[test]
    fn a_message_view_accepts_what_the_full_decode_accepts(
        m in message(),
        cut in any::<prop::sample::Index>(),
        (at, byte) in (any::<prop::sample::Index>(), any::<u8>()),
        junk in vec(any::<u8>(), 1..64),
    ) {
        let frame = encode_frame(&ServerFrame::Event(Event::Message(m)), MAX)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let payload = &frame[HEADER_LEN..];
        view_agrees_with_decode(payload)?;
        view_agrees_with_decode(&payload[..cut.index(payload.len())])?;
        let mut changed = payload.to_vec();
        changed[at.index(payload.len())] = byte;
        view_agrees_with_decode(&changed)?;
        view_agrees_with_decode(&[payload, &junk].concat())?;
        view_agrees_with_decode(&[&payload[..2], &junk].concat())?;
    }

    #[test]
    fn ping_and_error_roundtrip(nonce in u64_any(), error in error_body()) {
        server_roundtrip(&ServerFrame::Ping { nonce })?;
        server_roundtrip(&ServerFrame::Error(error))?;
    }
}

/// The fields a [`MessageView`] and a [`Message`] share, for comparing the two.
type Fields<'a> = (
    MessageId,
    RoomId,
    Seq,
    UserId,
    &'a str,
    UnixMillis,
    &'a MessageKind,
    &'a str,
);

fn view_fields<'a>(v: &'a MessageView<'a>) -> Fields<'a> {
    (
        v.id,
        v.room,
        v.seq,
        v.sender,
        v.sender_name,
        v.ts,
        &v.kind,
        v.text,
    )
}

fn message_fields(m: &Message) -> Fields<'_> {
    (
        m.id,
        m.room,
        m.seq,
        m.sender,
        &m.sender_name,
        m.ts,
        &m.kind,
        &m.text,
    )
}

/// `peek_message` sees a message exactly when the full decode yields one, with equal fields.
fn view_agrees_with_decode(payload: &[u8]) -> Result<(), TestCaseError> {
    let view = chatroom_protocol::codec::peek_message(payload);
    match chatroom_protocol::codec::decode_payload::<ServerFrame>(payload, MAX) {
        Ok(ServerFrame::Event(Event::Message(m))) => {
            let view = view.ok_or_else(|| {
                TestCaseError::fail("the full decode read a message; the view did not")
            })?;
            prop_assert_eq!(view_fields(&view), message_fields(&m));
        }
        _ => prop_assert!(
            view.is_none(),
            "the view read a payload the full decode rejects: {view:?}"
        ),
    }
    Ok(())
}

/// Varints need not be minimal (bincode accepts `fb 05 00` for 5), and neither does the view.
#[test]
fn a_message_view_reads_non_minimal_varints() {
    // tags, id 5 as a u16, room 1, seq 251 as a u32, sender 2, name "al", ts 7 as a u64,
    // kind Text, text "hi"
    let mut payload = vec![
        2, 0, 0xfb, 5, 0, 1, 0xfc, 251, 0, 0, 0, 2, 2, b'a', b'l', 0xfd,
    ];
    payload.extend_from_slice(&7u64.to_le_bytes());
    payload.extend_from_slice(&[0, 2, b'h', b'i']);
    let view = chatroom_protocol::codec::peek_message(&payload).expect("a view");
    assert_eq!(
        view_fields(&view),
        (
            MessageId(5),
            RoomId(1),
            251,
            UserId(2),
            "al",
            7,
            &MessageKind::Text,
            "hi"
        )
    );
    view_agrees_with_decode(&payload).expect("agrees with the full decode");
}

/// `select` over a list is only as good as the list: make sure it names every code once, and
/// every code round-trips as both a response error and a connection error.
#[test]
fn every_error_code_roundtrips() {
    for (i, code) in ALL_ERROR_CODES.iter().enumerate() {
        assert!(
            !ALL_ERROR_CODES[..i].contains(code),
            "{code:?} listed twice"
        );
        let body = ErrorBody::new(*code, "why");
        server_roundtrip(&ServerFrame::Response {
            id: 1,
            result: Err(body.clone()),
        })
        .expect("response error");
        server_roundtrip(&ServerFrame::Error(body)).expect("connection error");
    }
}
