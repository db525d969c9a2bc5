//! Reclaiming space: uploads nobody touched for the expiry time are forgotten and their part
//! files removed (checked every quarter of the expiry, at most every ten minutes); at start-up,
//! content and part files that no row refers to (left by a crash between a rename and its
//! commit) are removed.

use chatroom_protocol::now_millis;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::FileStore;
use crate::Shared;
use crate::storage::{Outcome, Storage, WriteOp, reads};

/// Removes blobs and part files that no `files` or `uploads` row refers to. Runs before the
/// server accepts connections, so nothing is being posted meanwhile.
pub async fn remove_unreferenced(storage: &Storage, store: &FileStore) {
    let references = storage.reads.run(reads::file_references).await;
    let (hashes, uploads) = match references {
        Ok(refs) => refs,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list file references; skipping the sweep");
            return;
        }
    };
    let store = store.clone();
    let swept = tokio::task::spawn_blocking(move || -> std::io::Result<(usize, usize)> {
        let mut blobs = 0;
        for sha in store.blob_hashes()? {
            if !hashes.contains(&sha) {
                store.remove_blob(&sha)?;
                blobs += 1;
            }
        }
        let mut parts = 0;
        for id in store.part_ids()? {
            if !uploads.contains(&id) {
                store.remove_part(id)?;
                parts += 1;
            }
        }
        Ok((blobs, parts))
    })
    .await;
    match swept {
        Ok(Ok((0, 0))) => {}
        Ok(Ok((blobs, parts))) => {
            tracing::info!(blobs, parts, "removed unreferenced file data");
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "sweeping file data failed"),
        Err(e) => tracing::warn!(error = %e, "sweeping file data failed"),
    }
}

/// Expires idle uploads until `shutdown`.
pub(crate) async fn expire_uploads(shared: Arc<Shared>, shutdown: CancellationToken) {
    let expiry = Duration::from_secs(shared.config.files.upload_expiry_secs.max(1));
    let period = (expiry / 4).clamp(Duration::from_secs(1), Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let (force, keep) = shared.uploads.take_idle(expiry);
        let cutoff = now_millis().saturating_sub(expiry.as_millis() as u64);
        let op = WriteOp::ExpireUploads {
            cutoff,
            keep,
            force,
        };
        let expired = match shared.storage.writer.write(op).await {
            Ok(Outcome::Uploads(ids)) => ids,
            Ok(other) => {
                tracing::error!(?other, "unexpected outcome expiring uploads");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot expire uploads");
                continue;
            }
        };
        if expired.is_empty() {
            continue;
        }
        let store = shared.files.clone();
        let count = expired.len();
        let removed = tokio::task::spawn_blocking(move || {
            expired.iter().try_for_each(|id| store.remove_part(*id))
        })
        .await;
        match removed {
            Ok(Ok(())) => tracing::info!(count, "expired abandoned uploads"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot remove expired upload data"),
            Err(e) => tracing::warn!(error = %e, "cannot remove expired upload data"),
        }
    }
}
