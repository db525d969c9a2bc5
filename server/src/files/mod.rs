//! File transfer: where file bytes live and the uploads in progress.
//!
//! - [`store`]: the on-disk layout under the data dir — content-addressed blobs in `files/`
//!   (one file per SHA-256, however often it is posted) and uploads in progress in
//!   `uploads/<id>.part` — with the blocking file operations on them.
//! - [`names`]: turning a client's file name into a safe display name.
//! - [`uploads`]: the registry of uploads in progress (bytes received, running hash, last
//!   activity).
//! - [`sweep`]: expiring abandoned uploads, and removing content nothing refers to.
//!
//! The request handlers are in `requests::files`. Rows (`files`, `uploads`, the `File`
//! messages) are written by the storage writer, which is also the only place that moves a
//! finished upload into the blob store or removes a blob, so those steps are serialised with
//! the rows that refer to them.

pub mod names;
pub mod store;
pub mod sweep;
pub mod uploads;

pub use store::{FileStore, FolderError, PartError};
pub use uploads::Uploads;

/// `1.5 KiB`-style sizes, as messages and refusals show them (powers of 1024, one decimal).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
