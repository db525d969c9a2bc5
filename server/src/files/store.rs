//! The on-disk layout of file content, and the blocking operations on it.
//!
//! ```text
//! <data dir>/files/ab/abcdef…   content, named by its SHA-256 in hex (first byte as a folder)
//! <data dir>/uploads/17.part    the bytes received so far of upload 17
//! ```
//!
//! Every method here blocks (file I/O): call them from `spawn_blocking` or the storage writer
//! thread, never from an async task directly.

use chatroom_protocol::UploadId;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A folder of the file store could not be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot create {}, the folder of {what}", path.display())]
pub struct FolderError {
    /// The folder.
    pub path: PathBuf,
    /// What it holds.
    pub what: &'static str,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// Why an upload's bytes could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PartError {
    /// The part file holds fewer bytes than the upload has received (it was removed, by the
    /// expiry of an idle upload say, or cut short): the upload must continue from `on_disk`
    /// bytes, re-hashed, or start over.
    #[error(
        "the upload's part file has {on_disk} bytes, not the {expected} received so far; \
         offer the file again"
    )]
    Short {
        /// Bytes the part file has.
        on_disk: u64,
        /// Bytes the upload had received.
        expected: u64,
    },
    /// The disk failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<PartError> for io::Error {
    fn from(e: PartError) -> Self {
        match e {
            PartError::Io(e) => e,
            short @ PartError::Short { .. } => io::Error::new(io::ErrorKind::UnexpectedEof, short),
        }
    }
}

/// Where file content lives.
#[derive(Clone, Debug)]
pub struct FileStore {
    blobs: PathBuf,
    parts: PathBuf,
}

impl FileStore {
    /// The store under `data_dir`, creating its folders.
    pub fn open(data_dir: &Path) -> Result<Self, FolderError> {
        let store = Self::at(data_dir);
        for (path, what) in [
            (&store.blobs, "uploaded files"),
            (&store.parts, "uploads in progress"),
        ] {
            fs::create_dir_all(path).map_err(|source| FolderError {
                path: path.clone(),
                what,
                source,
            })?;
        }
        Ok(store)
    }

    /// The store under `data_dir` as it is, creating nothing (for `check`, which only looks).
    pub fn at(data_dir: &Path) -> Self {
        Self {
            blobs: data_dir.join("files"),
            parts: data_dir.join("uploads"),
        }
    }

    /// Where the content with this hash is (or would be) stored.
    pub fn blob_path(&self, sha256: &[u8; 32]) -> PathBuf {
        let hex = hex(sha256);
        self.blobs.join(&hex[..2]).join(hex)
    }

    /// Where an upload's received bytes are kept.
    pub fn part_path(&self, upload: UploadId) -> PathBuf {
        self.parts.join(format!("{}.part", upload.0))
    }

    /// The size of the stored content with this hash, if it is stored.
    pub fn blob_len(&self, sha256: &[u8; 32]) -> Option<u64> {
        fs::metadata(self.blob_path(sha256))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// The hash state and length of what an upload has on disk (0 bytes when nothing is).
    pub fn rehash_part(&self, upload: UploadId) -> io::Result<(Sha256, u64)> {
        let mut hasher = Sha256::new();
        let mut file = match File::open(self.part_path(upload)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((hasher, 0)),
            Err(e) => return Err(e),
        };
        let mut buf = vec![0; 256 * 1024];
        let mut len = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
        Ok((hasher, len))
    }

    /// Writes `data` at `offset` of an upload's part file, dropping anything already beyond
    /// `offset` (left by a write that was never acknowledged). Refuses with
    /// [`PartError::Short`] when the file holds fewer than `offset` bytes — it was removed or
    /// cut short behind the upload's back — rather than fill the gap with zeros that the
    /// running hash never saw.
    pub fn write_part(&self, upload: UploadId, offset: u64, data: &[u8]) -> Result<(), PartError> {
        let opened = OpenOptions::new()
            .create(offset == 0)
            .write(true)
            .truncate(false)
            .open(self.part_path(upload));
        let mut file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(PartError::Short {
                    on_disk: 0,
                    expected: offset,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let on_disk = file.metadata()?.len();
        if on_disk < offset {
            return Err(PartError::Short {
                on_disk,
                expected: offset,
            });
        }
        if on_disk > offset {
            file.set_len(offset)?;
        }
        file.seek(SeekFrom::Start(offset))?;
        Ok(file.write_all(data)?)
    }

    /// Flushes an upload's part file to disk.
    pub fn sync_part(&self, upload: UploadId) -> io::Result<()> {
        match File::open(self.part_path(upload)) {
            Ok(file) => file.sync_all(),
            // An upload of content the store already has may have no part file at all.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Makes a verified upload the stored content for `sha256`: moves the part file into place,
    /// or drops it when that content is stored already. Errors if neither is there.
    pub fn commit_part(&self, upload: UploadId, sha256: &[u8; 32]) -> io::Result<()> {
        let part = self.part_path(upload);
        let blob = self.blob_path(sha256);
        if blob.is_file() {
            remove_if_present(&part)?;
            return Ok(());
        }
        let dir = blob
            .parent()
            .ok_or_else(|| io::Error::other("blob path has no folder"))?;
        fs::create_dir_all(dir)?;
        fs::rename(&part, &blob)?;
        // Make the rename itself durable before the rows that refer to it are committed.
        File::open(dir)?.sync_all()
    }

    /// Discards an upload's bytes.
    pub fn remove_part(&self, upload: UploadId) -> io::Result<()> {
        remove_if_present(&self.part_path(upload))
    }

    /// Removes stored content.
    pub fn remove_blob(&self, sha256: &[u8; 32]) -> io::Result<()> {
        remove_if_present(&self.blob_path(sha256))
    }

    /// Reads up to `len` bytes of stored content from `offset` (fewer at the end).
    pub fn read_blob(&self, sha256: &[u8; 32], offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut file = File::open(self.blob_path(sha256))?;
        file.seek(SeekFrom::Start(offset))?;
        let mut data = Vec::with_capacity(len);
        file.take(len as u64).read_to_end(&mut data)?;
        Ok(data)
    }

    /// Upload ids that have a part file on disk.
    pub fn part_ids(&self) -> io::Result<Vec<UploadId>> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.parts)? {
            let name = entry?.file_name();
            if let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".part"))
                .and_then(|n| n.parse().ok())
            {
                ids.push(UploadId(id));
            }
        }
        Ok(ids)
    }

    /// The hashes of every stored blob.
    pub fn blob_hashes(&self) -> io::Result<Vec<[u8; 32]>> {
        let mut hashes = Vec::new();
        for dir in fs::read_dir(&self.blobs)? {
            let dir = dir?;
            if !dir.file_type()?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(dir.path())? {
                if let Some(sha) = entry?.file_name().to_str().and_then(unhex) {
                    hashes.push(sha);
                }
            }
        }
        Ok(hashes)
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Lowercase hex of a hash.
pub fn hex(bytes: &[u8; 32]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let mut sha = [0u8; 32];
        sha[0] = 0xab;
        sha[31] = 0x01;
        let text = hex(&sha);
        assert_eq!(text.len(), 64);
        assert!(text.starts_with("ab00"));
        assert_eq!(unhex(&text), Some(sha));
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(&"g".repeat(64)), None);
    }

    #[test]
    fn part_writes_resume_and_commit_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::open(dir.path()).expect("open");
        let upload = UploadId(7);
        store.write_part(upload, 0, b"hello ").expect("write");
        // A write that was never acknowledged leaves extra bytes; the retry overwrites them.
        store.write_part(upload, 6, b"XXXX").expect("write");
        store.write_part(upload, 6, b"world").expect("write");
        let (hasher, len) = store.rehash_part(upload).expect("rehash");
        assert_eq!(len, 11);
        let sha: [u8; 32] = hasher.finalize().into();
        assert_eq!(sha, <[u8; 32]>::from(Sha256::digest(b"hello world")));
        store.commit_part(upload, &sha).expect("commit");
        assert_eq!(store.blob_len(&sha), Some(11));
        assert_eq!(store.part_ids().expect("ids"), Vec::<UploadId>::new());
        assert_eq!(store.read_blob(&sha, 6, 100).expect("read"), b"world");
        assert_eq!(store.blob_hashes().expect("hashes"), vec![sha]);

        // The same content again: the second part file is dropped, the blob stays.
        store
            .write_part(UploadId(8), 0, b"hello world")
            .expect("write");
        store.commit_part(UploadId(8), &sha).expect("commit");
        assert_eq!(store.part_ids().expect("ids"), Vec::<UploadId>::new());
        assert_eq!(store.blob_len(&sha), Some(11));
    }

    #[test]
    fn a_part_file_shorter_than_the_bytes_received_is_never_filled_with_zeros() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::open(dir.path()).expect("open");
        let upload = UploadId(3);
        store.write_part(upload, 0, b"hello ").expect("write");
        // Removed behind the upload's back (the expiry of idle uploads, say).
        store.remove_part(upload).expect("remove");
        assert!(matches!(
            store.write_part(upload, 6, b"world"),
            Err(PartError::Short {
                on_disk: 0,
                expected: 6
            })
        ));
        assert_eq!(
            store.part_ids().expect("ids"),
            [],
            "no part file is created"
        );
        // Cut short.
        store.write_part(upload, 0, b"hel").expect("write");
        assert!(matches!(
            store.write_part(upload, 6, b"world"),
            Err(PartError::Short {
                on_disk: 3,
                expected: 6
            })
        ));
        assert_eq!(
            store.rehash_part(upload).expect("rehash").1,
            3,
            "left alone"
        );
    }
}
