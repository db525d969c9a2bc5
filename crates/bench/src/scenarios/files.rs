//! `files`: C clients each upload a fresh random file of M MiB to one room (at the same time),
//! then each downloads another client's file; both through `chatroom_protocol::transfer`, the
//! code the `chatroom` client uses. For scale, the same bytes are first copied over plain TCP on
//! 127.0.0.1 with the same parallelism: the ceiling this machine's loopback sets.
//!
//! The files are random per run, so the server's de-duplication never skips an upload. They are
//! written to a temporary folder that is removed afterwards.

use super::traffic::{REGISTER_CONCURRENCY, SETUP_CONCURRENCY};
use crate::cli::FilesArgs;
use crate::fleet::{Ctx, Fleet, note};
use crate::procfs::Meter;
use crate::report::{Errors, FileThroughput, Report};
use crate::stats::round3;
use anyhow::{Context, Result, anyhow};
use chatroom_protocol::transfer::{self, Phase, ProgressSink, TransferOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

const MIB: f64 = 1024.0 * 1024.0;
const COPY_BUFFER: usize = 256 * 1024;

/// Removes the scratch folder however the scenario ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `bytes` of xorshift noise to `path`.
fn write_random_file(path: &Path, bytes: u64, seed: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::io::BufWriter::with_capacity(COPY_BUFFER, std::fs::File::create(path)?);
    let mut state = seed | 1;
    let mut left = bytes;
    while left > 0 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let word = state.to_le_bytes();
        let n = left.min(8) as usize;
        file.write_all(&word[..n])?;
        left -= n as u64;
    }
    file.flush()
}

/// Copies `bytes` over each of `clients` loopback TCP connections at once; returns MiB/s.
async fn loopback_copy(clients: usize, bytes: u64) -> Result<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let t0 = Instant::now();
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        let mut readers = JoinSet::new();
        for _ in 0..clients {
            let (mut socket, _) = listener.accept().await?;
            readers.spawn(async move {
                let mut buf = vec![0u8; COPY_BUFFER];
                let mut total = 0u64;
                loop {
                    let n = socket.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<u64, std::io::Error>(total);
                    }
                    total += n as u64;
                }
            });
        }
        let mut total = 0;
        while let Some(r) = readers.join_next().await {
            total += r.map_err(std::io::Error::other)??;
        }
        Ok::<u64, std::io::Error>(total)
    });
    for _ in 0..clients {
        tasks.spawn(async move {
            let mut socket = tokio::net::TcpStream::connect(addr).await?;
            socket.set_nodelay(true)?;
            let buf = vec![0x5au8; COPY_BUFFER];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(COPY_BUFFER as u64) as usize;
                socket.write_all(&buf[..n]).await?;
                left -= n as u64;
            }
            socket.shutdown().await?;
            Ok(0)
        });
    }
    let mut received = 0;
    while let Some(r) = tasks.join_next().await {
        received += r.map_err(|e| anyhow!("copy task: {e}"))??;
    }
    let secs = t0.elapsed().as_secs_f64();
    if received != bytes * clients as u64 {
        return Err(anyhow!(
            "loopback copy moved {received} bytes, expected {}",
            bytes * clients as u64
        ));
    }
    Ok(received as f64 / MIB / secs)
}

/// `files`.
pub(crate) async fn files(ctx: &Ctx, a: &FilesArgs) -> Result<Report> {
    let params = serde_json::to_value(a).unwrap_or(serde_json::Value::Null);
    let mut report = Report::new("files", params, ctx.addr.to_string());
    report.prefix = ctx.prefix.clone();
    let n = a.clients as usize;
    let bytes = u64::from(a.mib) * 1024 * 1024;
    let mut errors = Errors::default();

    let scratch = Scratch(std::env::temp_dir().join(format!("chatroom-bench-{}", ctx.prefix)));
    std::fs::create_dir_all(&scratch.0).context("creating the scratch folder")?;
    note(format!("writing {n} random files of {} MiB", a.mib));
    let mut sources = Vec::with_capacity(n);
    for i in 0..n {
        let path = scratch.0.join(format!("upload-{i}.bin"));
        let seed = crate::stats::now_micros() ^ ((i as u64) << 40);
        let (p, b) = (path.clone(), bytes);
        tokio::task::spawn_blocking(move || write_random_file(&p, b, seed))
            .await
            .map_err(|e| anyhow!("writing a file: {e}"))?
            .context("writing a random file")?;
        sources.push(path);
    }

    note(format!(
        "copying {n} x {} MiB over plain loopback TCP",
        a.mib
    ));
    let loopback = loopback_copy(n, bytes).await?;

    let mut fleet = Fleet::new();
    note(format!("registering {n} users (argon2 on the server)"));
    fleet.register(ctx, 0, n, REGISTER_CONCURRENCY).await?;
    let room = fleet.shared_room(ctx, "files", SETUP_CONCURRENCY).await?;

    note(format!("{n} clients upload {} MiB each", a.mib));
    let meter = Meter::start(ctx.server_pid)?;
    let mut uploads = JoinSet::new();
    for (peer, source) in fleet.peers.iter().zip(&sources) {
        let (handle, source) = (peer.handle.clone(), source.clone());
        // When hashing ended and sending began, to time the two apart.
        let sending_since: Arc<Mutex<Option<Instant>>> = Arc::default();
        let hashing_since = Instant::now();
        let options = TransferOptions {
            progress: ProgressSink::new({
                let sending_since = Arc::clone(&sending_since);
                move |p| {
                    if p.phase == Phase::Sending
                        && let Ok(mut since) = sending_since.lock()
                    {
                        since.get_or_insert_with(Instant::now);
                    }
                }
            }),
            ..TransferOptions::default()
        };
        uploads.spawn(async move {
            let uploaded = transfer::upload(&handle, room.id, &source, &options).await;
            let done = Instant::now();
            let sending = sending_since.lock().ok().and_then(|s| *s).unwrap_or(done);
            (uploaded, hashing_since, sending, done)
        });
    }
    let mut posted = Vec::new();
    let (mut first_send, mut last_done, mut hash_secs) = (None::<Instant>, None::<Instant>, 0.0);
    while let Some(joined) = uploads.join_next().await {
        match joined {
            Ok((Ok(uploaded), hashing, sending, done)) => {
                hash_secs += sending.duration_since(hashing).as_secs_f64();
                first_send = Some(first_send.map_or(sending, |f| f.min(sending)));
                last_done = Some(last_done.map_or(done, |l| l.max(done)));
                posted.push(uploaded.file);
            }
            Ok((Err(e), ..)) => errors.add(format!("upload: {e}")),
            Err(e) => errors.add(format!("upload task: {e}")),
        }
    }
    let upload_secs = match (first_send, last_done) {
        (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
        _ => 0.0,
    };
    let uploaded_bytes = bytes * posted.len() as u64;

    note(format!("{n} clients download another client's file"));
    let t0 = Instant::now();
    let mut downloads = JoinSet::new();
    for (i, peer) in fleet.peers.iter().enumerate() {
        let Some(file) = posted.get((i + 1) % posted.len().max(1)) else {
            break;
        };
        let dest = scratch.0.join(format!("download-{i}/"));
        let (handle, id) = (peer.handle.clone(), file.id);
        downloads.spawn(async move {
            transfer::download(&handle, id, &dest, &TransferOptions::default()).await
        });
    }
    let mut downloaded_bytes = 0u64;
    while let Some(joined) = downloads.join_next().await {
        match joined {
            Ok(Ok(d)) => downloaded_bytes += d.bytes_fetched,
            Ok(Err(e)) => errors.add(format!("download: {e}")),
            Err(e) => errors.add(format!("download task: {e}")),
        }
    }
    let download_secs = t0.elapsed().as_secs_f64();
    let measured = meter.finish();
    let stored = fleet.peers[0]
        .handle
        .list_files(room.id)
        .await
        .map(|files| files.len() as u64)
        .unwrap_or_else(|e| {
            errors.add(format!("listing files: {e}"));
            0
        });
    fleet.shutdown().await;

    let rate = |b: u64, secs: f64| {
        if secs > 0.0 {
            round3(b as f64 / MIB / secs)
        } else {
            0.0
        }
    };
    report.files = Some(FileThroughput {
        clients: n as u64,
        file_bytes: bytes,
        loopback_mib_per_sec: round3(loopback),
        upload_mib_per_sec: rate(uploaded_bytes, upload_secs),
        hash_mib_per_sec: rate(uploaded_bytes, hash_secs / n as f64),
        download_mib_per_sec: rate(downloaded_bytes, download_secs),
        stored_files: stored,
    });
    report.set_usage(&measured);
    report.errors = errors.into_vec();
    Ok(report)
}
