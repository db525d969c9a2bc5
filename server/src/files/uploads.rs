//! Uploads in progress, in memory: how many bytes each has, the running SHA-256 of them, and
//! when it was last touched.
//!
//! Each upload is behind its own async mutex. A chunk holds it across its disk write, on
//! purpose: chunks of one upload must land in order, and only that upload's next chunk waits —
//! other uploads, and every other request, do not.
//!
//! The `uploads` table remembers the same uploads across restarts; after a restart an upload
//! is loaded back on its next offer by re-hashing its part file.

use chatroom_protocol::{RoomId, UploadId, UserId};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One upload in progress.
#[derive(Debug)]
pub struct Upload {
    /// Its id (also the `uploads` row id and the part file's name).
    pub id: UploadId,
    /// Who is uploading.
    pub user: UserId,
    /// The room the file will be posted to (the latest offer's).
    pub room: RoomId,
    /// The sanitised name (the latest offer's).
    pub name: String,
    /// The declared size.
    pub size: u64,
    /// The declared hash.
    pub sha256: [u8; 32],
    /// Bytes received and written so far.
    pub received: u64,
    /// The hash of those bytes; `None` while a chunk's write has it.
    pub hasher: Option<Sha256>,
    /// The store already had this content when it was offered: no bytes are needed.
    pub already_stored: bool,
    /// When a request last touched it.
    pub last_activity: Instant,
    /// Finished, cancelled or expired: whoever still holds it must let go.
    pub gone: bool,
}

/// A shared handle to one upload.
pub type UploadHandle = Arc<tokio::sync::Mutex<Upload>>;

/// Every upload in progress.
#[derive(Debug, Default)]
pub struct Uploads {
    by_id: Mutex<HashMap<UploadId, UploadHandle>>,
}

impl Uploads {
    /// The upload with this id, if it is in memory.
    pub fn get(&self, id: UploadId) -> Option<UploadHandle> {
        self.by_id.lock().ok()?.get(&id).cloned()
    }

    /// Adds an upload unless one with its id is there already; returns the one in the registry.
    pub fn insert(&self, upload: Upload) -> UploadHandle {
        let id = upload.id;
        let Ok(mut map) = self.by_id.lock() else {
            return Arc::new(tokio::sync::Mutex::new(upload));
        };
        map.entry(id)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(upload)))
            .clone()
    }

    /// Forgets an upload (its holder marks it gone).
    pub fn remove(&self, id: UploadId) {
        if let Ok(mut map) = self.by_id.lock() {
            map.remove(&id);
        }
    }

    /// How many uploads `user` has in memory.
    pub fn count_for(&self, user: UserId) -> usize {
        let Ok(map) = self.by_id.lock() else {
            return 0;
        };
        map.values()
            .filter(|u| u.try_lock().map(|u| u.user == user).unwrap_or(true))
            .count()
    }

    /// Takes out every upload untouched for `idle` (busy ones are not idle), marking each
    /// gone, and returns their ids; also returns the ids of those that stay.
    pub fn take_idle(&self, idle: Duration) -> (Vec<UploadId>, Vec<UploadId>) {
        let Ok(mut map) = self.by_id.lock() else {
            return (Vec::new(), Vec::new());
        };
        let now = Instant::now();
        let mut expired = Vec::new();
        map.retain(|id, upload| match upload.try_lock() {
            Ok(mut u) if now.duration_since(u.last_activity) >= idle => {
                u.gone = true;
                expired.push(*id);
                false
            }
            _ => true,
        });
        let kept = map.keys().copied().collect();
        (expired, kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(id: u64, user: u64) -> Upload {
        Upload {
            id: UploadId(id),
            user: UserId(user),
            room: RoomId(1),
            name: "f".into(),
            size: 10,
            sha256: [0; 32],
            received: 0,
            hasher: None,
            already_stored: false,
            last_activity: Instant::now(),
            gone: false,
        }
    }

    #[tokio::test]
    async fn insert_keeps_the_first_and_idle_ones_expire() {
        let uploads = Uploads::default();
        let first = uploads.insert(upload(1, 5));
        first.lock().await.received = 4;
        let again = uploads.insert(upload(1, 5));
        assert_eq!(again.lock().await.received, 4, "the registered upload wins");
        uploads.insert(upload(2, 6));
        assert_eq!(uploads.count_for(UserId(5)), 1);

        let (expired, kept) = uploads.take_idle(Duration::from_secs(3600));
        assert!(expired.is_empty());
        assert_eq!(kept.len(), 2);

        let (mut expired, kept) = uploads.take_idle(Duration::ZERO);
        expired.sort();
        assert_eq!(expired, vec![UploadId(1), UploadId(2)]);
        assert!(kept.is_empty());
        assert!(first.lock().await.gone);
        assert!(uploads.get(UploadId(1)).is_none());
    }
}
