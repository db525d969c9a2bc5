//! File transfer through a real server: round trips, resume of uploads and downloads,
//! de-duplication, deletion, expiry, chat during a large upload, and hostile input.

use crate::support::*;
use chatroom_protocol::client::{ClientHandle, PendingResponse};
use chatroom_protocol::{
    ErrorCode, Event, FileInfo, HistoryAnchor, MessageKind, Request, Response, RoomId, UploadReady,
    Visibility,
};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Sends `data[ready.offset..stop]` in chunks with the server's window in flight; returns the
/// bytes sent. `progress` counts bytes the server has confirmed.
async fn send_chunks(
    client: &ClientHandle,
    ready: &UploadReady,
    data: &[u8],
    stop: usize,
    progress: &AtomicU64,
) -> u64 {
    let chunk = ready.max_chunk_bytes as usize;
    let mut in_flight: std::collections::VecDeque<PendingResponse> = Default::default();
    let mut offset = ready.offset as usize;
    let mut sent = 0;
    while offset < stop || !in_flight.is_empty() {
        if offset < stop && in_flight.len() < ready.window as usize {
            let end = (offset + chunk).min(stop);
            let request = Request::UploadChunk {
                upload: ready.upload,
                offset: offset as u64,
                data: data[offset..end].to_vec(),
            };
            in_flight.push_back(client.send_request(request).await.expect("queue chunk"));
            sent += (end - offset) as u64;
            offset = end;
            continue;
        }
        let Some(pending) = in_flight.pop_front() else {
            break;
        };
        match pending.response().await.expect("chunk stored") {
            Response::ChunkStored { received, .. } => progress.store(received, Ordering::SeqCst),
            other => panic!("unexpected answer {other:?}"),
        }
    }
    sent
}

/// Uploads `data` as `name` to `room` from scratch or from where the server is; returns the
/// posted file and how many bytes were sent.
async fn upload(client: &ClientHandle, room: RoomId, name: &str, data: &[u8]) -> (FileInfo, u64) {
    let ready = client
        .offer_upload(room, name, data.len() as u64, sha(data))
        .await
        .expect("offer");
    let sent = send_chunks(client, &ready, data, data.len(), &AtomicU64::new(0)).await;
    let info = client.finish_upload(ready.upload).await.expect("finish");
    (info, sent)
}

/// Reads `file` from `from` to `upto` with a window of reads in flight.
async fn download_from(client: &ClientHandle, info: &FileInfo, from: u64, upto: u64) -> Vec<u8> {
    download_in(client, info, from, upto, 256 * 1024).await
}

/// Reads `file` from `from` to `upto` in reads of `chunk` bytes (which must not exceed what the
/// server returns per read, or the pieces would not line up).
async fn download_in(
    client: &ClientHandle,
    info: &FileInfo,
    from: u64,
    upto: u64,
    chunk: u64,
) -> Vec<u8> {
    let mut in_flight: std::collections::VecDeque<PendingResponse> = Default::default();
    let mut next = from;
    let mut out = Vec::new();
    while next < upto || !in_flight.is_empty() {
        if next < upto && in_flight.len() < 6 {
            let len = chunk.min(upto - next) as u32;
            let request = Request::ReadFile {
                file: info.id,
                offset: next,
                len,
            };
            in_flight.push_back(client.send_request(request).await.expect("queue read"));
            next += u64::from(len);
            continue;
        }
        let Some(pending) = in_flight.pop_front() else {
            break;
        };
        match pending.response().await.expect("chunk read") {
            Response::FileChunk { offset, data, .. } => {
                assert_eq!(offset, from + out.len() as u64, "pieces in order");
                out.extend_from_slice(&data);
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    out
}

async fn download(client: &ClientHandle, info: &FileInfo) -> Vec<u8> {
    download_from(client, info, 0, info.size).await
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn blobs(server: &TestServer) -> Vec<std::path::PathBuf> {
    files_under(&server.dir.path().join("files"))
}

fn parts(server: &TestServer) -> Vec<std::path::PathBuf> {
    files_under(&server.dir.path().join("uploads"))
}

#[tokio::test]
async fn a_multi_megabyte_file_round_trips_byte_identical_and_is_posted() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (mut bob, _) = server.user("bob").await;
    let room = public_room(&alice).await;
    let data = random_bytes(5 * 1024 * 1024 + 12_345, 1);

    let (info, sent) = upload(&alice, room, "build.tar.gz", &data).await;
    assert_eq!(sent, data.len() as u64);
    assert_eq!(info.name, "build.tar.gz");
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(info.sha256, sha(&data));
    assert_eq!(info.uploader_name, "alice");

    // Bob sees the file message live, and in history.
    let posted = expect_event(&mut bob, |e| match e {
        Event::Message(m) if matches!(m.kind, MessageKind::File(_)) => Some(m),
        _ => None,
    })
    .await;
    let MessageKind::File(file_ref) = &posted.kind else {
        unreachable!()
    };
    assert_eq!(file_ref.id, info.id);
    assert_eq!(posted.seq, info.seq);
    assert!(posted.text.contains("build.tar.gz"), "{}", posted.text);
    let page = bob
        .history(room, HistoryAnchor::Latest, 10)
        .await
        .expect("history");
    let last = page.messages.last().expect("a message");
    assert_eq!(last.kind, posted.kind);

    // Bob downloads it, byte for byte.
    assert_eq!(bob.file_info(info.id).await.expect("info"), info);
    let got = download(&bob, &info).await;
    assert_eq!(got.len(), data.len());
    assert!(got == data, "downloaded bytes differ");
    // Reading at the end gives nothing.
    assert!(
        bob.read_file(info.id, info.size, 10)
            .await
            .expect("read")
            .is_empty()
    );

    let listed = bob.list_files(room).await.expect("list");
    assert_eq!(listed, vec![info]);
    assert!(parts(&server).is_empty(), "no part file left behind");
    assert_eq!(blobs(&server).len(), 1);
}

#[tokio::test]
async fn an_empty_file_can_be_shared() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let room = public_room(&alice).await;
    let (info, sent) = upload(&alice, room, "empty.txt", b"").await;
    assert_eq!((info.size, sent), (0, 0));
    assert_eq!(info.sha256, sha(b""));
    assert!(
        alice
            .read_file(info.id, 0, 100)
            .await
            .expect("read")
            .is_empty()
    );
    assert_eq!(blobs(&server).len(), 1);
}

#[tokio::test]
async fn an_upload_cut_off_mid_way_resumes_from_the_servers_offset() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let room = public_room(&alice).await;
    let data = random_bytes(3 * 1024 * 1024 + 7, 2);

    let ready = alice
        .offer_upload(room, "video.mp4", data.len() as u64, sha(&data))
        .await
        .expect("offer");
    assert_eq!(ready.offset, 0);
    let half = data.len() / 2;
    let first = send_chunks(&alice, &ready, &data, half, &AtomicU64::new(0)).await;
    // The connection dies mid-upload.
    alice.close();
    drop(alice);

    let (alice, _) = server.login("alice").await;
    let again = alice
        .offer_upload(room, "video.mp4", data.len() as u64, sha(&data))
        .await
        .expect("offer again");
    assert_eq!(again.upload, ready.upload, "the same upload continues");
    assert_eq!(
        again.offset, first,
        "it continues from the last byte the server has"
    );
    let second = send_chunks(&alice, &again, &data, data.len(), &AtomicU64::new(0)).await;
    assert!(second < data.len() as u64, "the retry sent fewer bytes");
    assert_eq!(first + second, data.len() as u64);
    let info = alice.finish_upload(again.upload).await.expect("finish");
    assert!(
        download(&alice, &info).await == data,
        "downloaded bytes differ"
    );
}

#[tokio::test]
async fn an_upload_resumes_after_a_server_restart() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let room = public_room(&alice).await;
    let data = random_bytes(1024 * 1024 + 99, 3);
    let ready = alice
        .offer_upload(room, "big.bin", data.len() as u64, sha(&data))
        .await
        .expect("offer");
    let first = send_chunks(&alice, &ready, &data, 600_000, &AtomicU64::new(0)).await;
    drop(alice);

    let server = server.restart().await;
    let (alice, _) = server.login("alice").await;
    let again = alice
        .offer_upload(room, "big.bin", data.len() as u64, sha(&data))
        .await
        .expect("offer again");
    assert_eq!(again.offset, first, "the part file survived the restart");
    send_chunks(&alice, &again, &data, data.len(), &AtomicU64::new(0)).await;
    let info = alice.finish_upload(again.upload).await.expect("finish");
    assert!(
        download(&alice, &info).await == data,
        "downloaded bytes differ"
    );
}

#[tokio::test]
async fn a_download_cut_off_mid_way_resumes_from_an_offset() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let room = public_room(&alice).await;
    let data = random_bytes(2 * 1024 * 1024 + 5, 4);
    let (info, _) = upload(&alice, room, "data.bin", &data).await;

    let (bob, _) = server.user("bob").await;
    let cut = 1024 * 1024 + 3;
    let first = download_from(&bob, &info, 0, cut).await;
    bob.close();
    drop(bob);
    let (bob, _) = server.login("bob").await;
    let rest = download_from(&bob, &info, cut, info.size).await;
    assert_eq!(
        rest.len() as u64,
        info.size - cut,
        "only the rest was fetched"
    );
    let mut whole = first;
    whole.extend_from_slice(&rest);
    assert_eq!(sha(&whole), info.sha256);
}

#[tokio::test]
async fn the_same_content_is_stored_once_and_needs_no_bytes_the_second_time() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let room = public_room(&alice).await;
    let data = random_bytes(700_000, 5);
    let (first, _) = upload(&alice, room, "logo.png", &data).await;

    let ready = bob
        .offer_upload(room, "logo-copy.png", data.len() as u64, sha(&data))
        .await
        .expect("offer");
    assert_eq!(ready.offset, data.len() as u64, "nothing left to send");
    let second = bob.finish_upload(ready.upload).await.expect("finish");
    assert_ne!(second.id, first.id);
    assert_eq!(second.name, "logo-copy.png");
    assert_eq!(blobs(&server).len(), 1, "one copy on disk");
    assert!(
        download(&bob, &second).await == data,
        "downloaded bytes differ"
    );

    // Deleting one posting keeps the content for the other.
    alice.delete_message(room, first.seq).await.expect("delete");
    assert_eq!(blobs(&server).len(), 1);
    assert!(
        download(&bob, &second).await == data,
        "downloaded bytes differ"
    );
    bob.delete_message(room, second.seq).await.expect("delete");
    assert!(
        blobs(&server).is_empty(),
        "the last reference took the content with it"
    );
}

#[tokio::test]
async fn deleting_a_file_message_removes_the_file_for_everyone() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (mut bob, _) = server.user("bob").await;
    let room = public_room(&alice).await;
    let data = random_bytes(10_000, 6);
    let (info, _) = upload(&alice, room, "notes.txt", &data).await;

    // Bob is a plain member: not his message, not his to delete.
    assert_eq!(
        code_of(bob.delete_message(room, info.seq).await),
        ErrorCode::Forbidden
    );
    alice.delete_message(room, info.seq).await.expect("delete");
    let (seq, by) = expect_event(&mut bob, |e| match e {
        Event::MessageDeleted { room: r, seq, by } if r == room => Some((seq, by)),
        _ => None,
    })
    .await;
    assert_eq!((seq, by.as_str()), (info.seq, "alice"));
    let page = bob
        .history(room, HistoryAnchor::Latest, 5)
        .await
        .expect("history");
    let deleted = page
        .messages
        .iter()
        .find(|m| m.seq == info.seq)
        .expect("the message keeps its place");
    assert_eq!(deleted.kind, MessageKind::Deleted);
    assert!(deleted.text.is_empty());
    assert_eq!(
        code_of(bob.file_info(info.id).await),
        ErrorCode::FileNotFound
    );
    assert_eq!(
        code_of(bob.read_file(info.id, 0, 100).await),
        ErrorCode::FileNotFound
    );
    assert!(bob.list_files(room).await.expect("list").is_empty());
    assert!(blobs(&server).is_empty());
}

#[tokio::test]
async fn a_room_owner_may_delete_anyones_file() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let room = alice
        .create_room("builds", Visibility::Public)
        .await
        .expect("create")
        .id;
    bob.join_room("builds").await.expect("join");
    let (info, _) = upload(&bob, room, "app.apk", &random_bytes(1000, 7)).await;
    alice
        .delete_message(room, info.seq)
        .await
        .expect("owner deletes");
    assert_eq!(
        code_of(bob.file_info(info.id).await),
        ErrorCode::FileNotFound
    );
}

#[tokio::test]
async fn a_direct_chat_file_is_only_for_its_two_members() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let (carol, _) = server.user("carol").await;
    let dm = alice.open_direct("bob").await.expect("dm").id;
    let data = random_bytes(50_000, 8);
    let (info, _) = upload(&alice, dm, "secret.pdf", &data).await;
    assert!(
        download(&bob, &info).await == data,
        "downloaded bytes differ"
    );
    // Carol is not told whether the file exists.
    assert_eq!(
        code_of(carol.file_info(info.id).await),
        ErrorCode::FileNotFound
    );
    assert_eq!(
        code_of(carol.read_file(info.id, 0, 10).await),
        ErrorCode::FileNotFound
    );
    assert_eq!(code_of(carol.list_files(dm).await), ErrorCode::RoomNotFound);
    assert_eq!(
        code_of(carol.offer_upload(dm, "x", 1, [0; 32]).await),
        ErrorCode::RoomNotFound
    );
}

#[tokio::test]
async fn chat_keeps_flowing_during_a_200_mb_upload() {
    // Default limits: 800 chunks in a few seconds are far beyond the general request bucket,
    // which transfers do not draw from.
    let server = TestServer::start().await;
    let (mut alice, _) = server.user("alice").await;
    let (mut alice_events, _) = server.login("alice").await;
    let (bob, _) = server.user("bob").await;
    let room = public_room(&alice).await;
    let data = Arc::new(random_bytes(200 * 1024 * 1024, 9));
    let progress = Arc::new(AtomicU64::new(0));

    let uploader = {
        let (alice, data, progress) = (alice.handle(), Arc::clone(&data), Arc::clone(&progress));
        tokio::spawn(async move {
            let ready = alice
                .offer_upload(room, "disk.img", data.len() as u64, sha(&data))
                .await
                .expect("offer");
            send_chunks(&alice, &ready, &data, data.len(), &progress).await;
            alice.finish_upload(ready.upload).await.expect("finish")
        })
    };
    // Wait until the upload is well under way, then chat.
    tokio::time::timeout(PATIENCE * 6, async {
        while progress.load(Ordering::SeqCst) < 10 * 1024 * 1024 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the upload makes progress");
    let mut during = Vec::new();
    for i in 0..20 {
        let text = format!("while you upload {i}");
        bob.send_message(room, text.as_str()).await.expect("send");
        // Alice's own connection (which is uploading) gets it, and so does her other one.
        expect_message(&mut alice, &text).await;
        during.push(progress.load(Ordering::SeqCst));
        expect_message(&mut alice_events, &text).await;
    }
    // Alice can chat on the uploading connection too.
    alice
        .send_message(room, "still here")
        .await
        .expect("send while uploading");
    let info = tokio::time::timeout(PATIENCE * 12, uploader)
        .await
        .expect("upload finishes")
        .expect("upload task");
    assert_eq!(info.size, data.len() as u64);
    assert!(
        during.iter().all(|&p| p < data.len() as u64),
        "every message arrived while the upload was still in progress: {during:?}"
    );
}

#[tokio::test]
async fn transfer_requests_have_a_bucket_of_their_own() {
    let server = TestServer::start_with(|c| c.files.chunks_per_second = 10).await;
    let (alice, _) = server.user("alice").await;
    let room = public_room(&alice).await;
    let data = random_bytes(100_000, 18);
    let (info, _) = upload(&alice, room, "small.bin", &data).await;
    let mut limited = 0;
    for _ in 0..30 {
        match alice.read_file(info.id, 0, 10).await {
            Ok(_) => {}
            Err(e) if e.code() == Some(ErrorCode::RateLimited) => limited += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(limited > 0, "30 reads at once exceed 10 per second");
    // Chat is not charged for it.
    alice
        .send_message(room, "still chatting")
        .await
        .expect("send");
}

#[tokio::test]
async fn a_transfer_of_many_chunks_does_not_draw_on_the_request_bucket() {
    // The general bucket here: 50 requests/s, a burst of 200; the upload is 1000 chunks.
    let server = TestServer::start_with(|c| {
        c.limits.messages_per_second = 1;
        c.limits.message_burst = 1;
        c.files.chunk_bytes = 1024;
    })
    .await;
    let (alice, _) = server.user("alice").await;
    let room = public_room(&alice).await;
    let data = random_bytes(1000 * 1024, 19);
    let (info, _) = upload(&alice, room, "many-chunks.bin", &data).await;
    let got = download_in(&alice, &info, 0, info.size, 1024).await;
    assert!(got == data, "downloaded bytes differ");
}

#[tokio::test]
async fn hostile_names_are_sanitised_and_never_become_paths() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let room = public_room(&alice).await;
    let cases = [
        ("../../../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("..", "file"),
        ("evil\n\u{1b}[2Jname\u{202e}txt.exe", "evil[2Jnametxt.exe"),
    ];
    for (i, (raw, expected)) in cases.iter().enumerate() {
        let data = random_bytes(100 + i, 10 + i as u64);
        let (info, _) = upload(&alice, room, raw, &data).await;
        assert_eq!(&info.name, expected, "{raw:?}");
    }
    let long = "a".repeat(1000);
    let (info, _) = upload(&alice, room, &long, b"long name").await;
    assert_eq!(info.name.len(), 255);
    // Nothing was written outside the store: every file is a hash-named blob.
    for path in blobs(&server) {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(name.len(), 64, "{}", path.display());
        assert!(path.starts_with(server.dir.path().join("files")));
    }
}

#[tokio::test]
async fn a_wrong_hash_is_refused_and_leaves_nothing_behind() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (mut bob, _) = server.user("bob").await;
    let room = public_room(&alice).await;
    let data = random_bytes(600_000, 11);
    let mut claimed = sha(&data);
    claimed[0] ^= 1;
    let ready = alice
        .offer_upload(room, "tampered.bin", data.len() as u64, claimed)
        .await
        .expect("offer");
    send_chunks(&alice, &ready, &data, data.len(), &AtomicU64::new(0)).await;
    assert_eq!(
        code_of(alice.finish_upload(ready.upload).await),
        ErrorCode::HashMismatch
    );
    assert!(parts(&server).is_empty(), "the partial upload is gone");
    assert!(blobs(&server).is_empty());
    assert_eq!(
        code_of(alice.finish_upload(ready.upload).await),
        ErrorCode::UploadNotFound
    );
    assert!(alice.list_files(room).await.expect("list").is_empty());
    // Nothing was posted: the next message bob sees is a plain one.
    alice.send_message(room, "after").await.expect("send");
    let next = expect_event(&mut bob, |e| match e {
        Event::Message(m) => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(next.text, "after");
}

#[tokio::test]
async fn bad_chunks_are_refused_without_being_written() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let room = public_room(&alice).await;
    let data = random_bytes(400_000, 12);
    let ready = alice
        .offer_upload(room, "f.bin", data.len() as u64, sha(&data))
        .await
        .expect("offer");
    let chunk = ready.max_chunk_bytes as usize;

    // Out of order: starting anywhere but the server's offset.
    assert_eq!(
        code_of(
            alice
                .upload_chunk(ready.upload, 10, data[10..20].to_vec())
                .await
        ),
        ErrorCode::BadChunk
    );
    // Larger than the chunk limit.
    assert_eq!(
        code_of(
            alice
                .upload_chunk(ready.upload, 0, vec![0; chunk + 1])
                .await
        ),
        ErrorCode::BadChunk
    );
    // Empty.
    assert_eq!(
        code_of(alice.upload_chunk(ready.upload, 0, Vec::new()).await),
        ErrorCode::BadChunk
    );
    alice
        .upload_chunk(ready.upload, 0, data[..chunk].to_vec())
        .await
        .expect("a good chunk");
    // Beyond the declared size.
    let past = vec![0; data.len() - chunk + 1];
    assert_eq!(
        code_of(alice.upload_chunk(ready.upload, chunk as u64, past).await),
        ErrorCode::BadChunk
    );
    // A chunk repeated.
    assert_eq!(
        code_of(
            alice
                .upload_chunk(ready.upload, 0, data[..chunk].to_vec())
                .await
        ),
        ErrorCode::BadChunk
    );
    // Someone else's upload.
    assert_eq!(
        code_of(bob.upload_chunk(ready.upload, chunk as u64, vec![1]).await),
        ErrorCode::UploadNotFound
    );
    assert_eq!(
        code_of(bob.cancel_upload(ready.upload).await),
        ErrorCode::UploadNotFound
    );
    // Finishing early.
    assert_eq!(
        code_of(alice.finish_upload(ready.upload).await),
        ErrorCode::BadChunk
    );
    // Only the good chunk is on disk.
    let part = parts(&server);
    assert_eq!(part.len(), 1);
    assert_eq!(std::fs::read(&part[0]).expect("part"), &data[..chunk]);
    // The upload is still good: finish it properly.
    let again = alice
        .offer_upload(room, "f.bin", data.len() as u64, sha(&data))
        .await
        .expect("offer");
    assert_eq!(again.offset, chunk as u64);
    send_chunks(&alice, &again, &data, data.len(), &AtomicU64::new(0)).await;
    let info = alice.finish_upload(again.upload).await.expect("finish");
    assert!(
        download(&bob, &info).await == data,
        "downloaded bytes differ"
    );
}

#[tokio::test]
async fn size_and_quota_limits_are_typed_errors_that_create_nothing() {
    let server = TestServer::start_with(|c| {
        c.files.max_file_bytes = 1_000_000;
        c.files.quota_bytes = 1_500_000;
    })
    .await;
    let (alice, _) = server.user("alice").await;
    let room = public_room(&alice).await;
    assert_eq!(
        code_of(
            alice
                .offer_upload(room, "huge.iso", 1_000_001, [1; 32])
                .await
        ),
        ErrorCode::FileTooLarge
    );
    let first = random_bytes(900_000, 13);
    upload(&alice, room, "one.bin", &first).await;
    let second = random_bytes(700_000, 14);
    let refused = alice
        .offer_upload(room, "two.bin", second.len() as u64, sha(&second))
        .await
        .expect_err("over the quota");
    assert_eq!(refused.code(), Some(ErrorCode::QuotaExceeded));
    assert!(
        refused.to_string().contains(
            "this file (683.6 KiB) would take you over your quota: 878.9 KiB of 1.4 MiB used"
        ),
        "sizes in the units the size limit uses: {refused}"
    );
    assert!(parts(&server).is_empty());
    assert_eq!(blobs(&server).len(), 1);
    // An upload in progress counts against the quota too.
    let third = random_bytes(500_000, 15);
    let ready = alice
        .offer_upload(room, "three.bin", third.len() as u64, sha(&third))
        .await
        .expect("fits");
    let fourth = random_bytes(200_000, 16);
    assert_eq!(
        code_of(
            alice
                .offer_upload(room, "four.bin", fourth.len() as u64, sha(&fourth))
                .await
        ),
        ErrorCode::QuotaExceeded
    );
    // Cancelling frees it.
    alice.cancel_upload(ready.upload).await.expect("cancel");
    assert!(parts(&server).is_empty());
    upload(&alice, room, "four.bin", &fourth).await;
}

#[tokio::test]
async fn abandoned_uploads_expire_and_their_space_is_reclaimed() {
    let server = TestServer::start_with(|c| c.files.upload_expiry_secs = 1).await;
    let (alice, _) = server.user("alice").await;
    let room = public_room(&alice).await;
    let data = random_bytes(500_000, 17);
    let ready = alice
        .offer_upload(room, "left.bin", data.len() as u64, sha(&data))
        .await
        .expect("offer");
    send_chunks(&alice, &ready, &data, 300_000, &AtomicU64::new(0)).await;
    assert_eq!(parts(&server).len(), 1);
    tokio::time::timeout(PATIENCE, async {
        while !parts(&server).is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the part file is removed");
    assert_eq!(
        code_of(alice.upload_chunk(ready.upload, 300_000, vec![0; 10]).await),
        ErrorCode::UploadNotFound
    );
    let again = alice
        .offer_upload(room, "left.bin", data.len() as u64, sha(&data))
        .await
        .expect("offer again");
    assert_eq!(again.offset, 0, "an expired upload starts over");
}

#[tokio::test]
async fn content_in_a_room_i_am_not_in_must_be_sent_in_full() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    let secret = alice
        .create_room("secret", chatroom_protocol::Visibility::Private)
        .await
        .expect("create");
    let data = random_bytes(300_000, 11);
    let (posted, _) = upload(&alice, secret.id, "plans.pdf", &data).await;

    // Bob knows the hash and size (say he saw the FileRef before he was removed), but not the
    // bytes: the offer must not reveal that the server has them, nor post them for him.
    let public = public_room(&bob).await;
    let ready = bob
        .offer_upload(public, "plans.pdf", data.len() as u64, sha(&data))
        .await
        .expect("offer");
    assert_eq!(ready.offset, 0, "the bytes are asked for");
    assert_eq!(
        code_of(bob.finish_upload(ready.upload).await),
        ErrorCode::BadChunk,
        "finishing without the bytes is refused"
    );
    // With the bytes it works, and the content is still kept once.
    let (copy, sent) = upload(&bob, public, "plans.pdf", &data).await;
    assert_eq!(sent, data.len() as u64);
    assert_eq!(blobs(&server).len(), 1, "one copy on disk");
    assert!(
        download(&bob, &copy).await == data,
        "downloaded bytes differ"
    );

    // Alice, who can see the first copy, needs to send nothing.
    let ready = alice
        .offer_upload(public, "plans-again.pdf", data.len() as u64, sha(&data))
        .await
        .expect("offer");
    assert_eq!(ready.offset, data.len() as u64);
    assert_ne!(posted.id, copy.id);
    server.stop().await;
}

#[tokio::test]
async fn an_upload_whose_part_file_vanished_is_not_filled_with_zeros() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let room = public_room(&alice).await;
    let data = random_bytes(1024 * 1024 + 3, 9);
    let ready = alice
        .offer_upload(room, "report.bin", data.len() as u64, sha(&data))
        .await
        .expect("offer");
    let half = data.len() / 2;
    let sent = send_chunks(&alice, &ready, &data, half, &AtomicU64::new(0)).await as usize;

    // The part file goes behind the upload's back (expired, or removed by hand).
    let part = parts(&server);
    assert_eq!(part.len(), 1);
    std::fs::remove_file(&part[0]).expect("remove the part file");
    let next = (sent + ready.max_chunk_bytes as usize).min(data.len());
    let refused = alice
        .upload_chunk(ready.upload, sent as u64, data[sent..next].to_vec())
        .await;
    assert_eq!(
        code_of(refused),
        ErrorCode::BadChunk,
        "a chunk cannot land after a gap, and the client is told to offer again"
    );

    // Offered again, the same upload continues from what the server really has.
    let again = alice
        .offer_upload(room, "report.bin", data.len() as u64, sha(&data))
        .await
        .expect("offer again");
    assert_eq!(again.upload, ready.upload, "the upload was kept");
    assert_eq!(again.offset, 0, "none of the bytes are left");
    send_chunks(&alice, &again, &data, data.len(), &AtomicU64::new(0)).await;
    let info = alice.finish_upload(again.upload).await.expect("finish");
    let stored = blobs(&server);
    assert_eq!(stored.len(), 1);
    let on_disk = std::fs::read(&stored[0]).expect("blob");
    assert!(on_disk == data, "the stored bytes are the file's");
    assert!(
        download(&alice, &info).await == data,
        "downloaded bytes differ"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_upload_whose_part_file_was_cut_short_resumes_from_what_it_holds() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let room = public_room(&alice).await;
    let data = random_bytes(1024 * 1024 + 3, 10);
    let ready = alice
        .offer_upload(room, "cut.bin", data.len() as u64, sha(&data))
        .await
        .expect("offer");
    let sent = send_chunks(&alice, &ready, &data, data.len() / 2, &AtomicU64::new(0)).await;
    let part = parts(&server);
    let kept = 100_001;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&part[0])
        .and_then(|f| f.set_len(kept))
        .expect("cut the part file");
    let next = (sent as usize + ready.max_chunk_bytes as usize).min(data.len());
    let refused = alice
        .upload_chunk(ready.upload, sent, data[sent as usize..next].to_vec())
        .await;
    assert_eq!(code_of(refused), ErrorCode::BadChunk);
    let again = alice
        .offer_upload(room, "cut.bin", data.len() as u64, sha(&data))
        .await
        .expect("offer again");
    assert_eq!(again.offset, kept, "resumes where the part file ends");
    send_chunks(&alice, &again, &data, data.len(), &AtomicU64::new(0)).await;
    let info = alice.finish_upload(again.upload).await.expect("finish");
    assert!(
        download(&alice, &info).await == data,
        "downloaded bytes differ"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_same_file_sent_to_two_rooms_at_once_reaches_both() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let public = public_room(&alice).await;
    let other = alice
        .create_room("other", chatroom_protocol::Visibility::Public)
        .await
        .expect("create");
    let data = random_bytes(600_000, 12);
    let size = data.len() as u64;
    let to_public = alice
        .offer_upload(public, "same.bin", size, sha(&data))
        .await
        .expect("offer to public");
    let to_other = alice
        .offer_upload(other.id, "same.bin", size, sha(&data))
        .await
        .expect("offer to other");
    assert_ne!(to_public.upload, to_other.upload, "two uploads");
    // Interleaved, as two transfers running side by side would send them.
    let chunk = to_public.max_chunk_bytes as usize;
    let mut offset = 0;
    while offset < data.len() {
        let end = (offset + chunk).min(data.len());
        for ready in [&to_public, &to_other] {
            alice
                .upload_chunk(ready.upload, offset as u64, data[offset..end].to_vec())
                .await
                .expect("chunk");
        }
        offset = end;
    }
    let in_public = alice.finish_upload(to_public.upload).await.expect("finish");
    let in_other = alice.finish_upload(to_other.upload).await.expect("finish");
    assert_eq!(in_public.room, public);
    assert_eq!(in_other.room, other.id);
    for (room, info) in [(public, &in_public), (other.id, &in_other)] {
        let files = alice.list_files(room).await.expect("files");
        assert_eq!(
            files.iter().map(|f| f.id).collect::<Vec<_>>(),
            vec![info.id],
            "exactly one posting in each room"
        );
    }
    assert_eq!(blobs(&server).len(), 1, "one copy on disk");
    server.stop().await;
}

#[tokio::test]
async fn deleting_someones_recent_messages_removes_their_files() {
    let server = TestServer::start().await;
    let (alice, _) = server.user("alice").await;
    let (carol, _) = server.user("carol").await;
    let room = public_room(&alice).await;
    upload(&carol, room, "a.bin", &random_bytes(10_000, 7)).await;
    upload(&carol, room, "b.bin", &random_bytes(20_000, 8)).await;
    assert_eq!(blobs(&server).len(), 2);
    // alice, the first account, is a server admin: a moderator in public.
    let count = alice
        .delete_messages_by(room, "carol", std::time::Duration::from_secs(3600))
        .await
        .expect("deleted");
    assert_eq!(count, 2);
    assert!(blobs(&server).is_empty(), "{:?}", blobs(&server));
    assert!(alice.list_files(room).await.expect("list").is_empty());
    server.stop().await;
}
