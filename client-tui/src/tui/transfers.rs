//! File transfers in the terminal UI: the list the transfers panel shows, and how commands,
//! progress reports and results change it. The transfers themselves run as tasks in the
//! runtime (see `runtime.rs`), which reports back through the UI's bounded message queue.

use chatroom_protocol::transfer::{Progress, RateMeter};
use chatroom_protocol::{FileId, FileRef, MessageKind, RoomId, Seq, UnixMillis};
use std::path::PathBuf;

use super::app::{Action, App, Entry};

/// How many finished transfers the panel keeps (running ones are always kept).
pub const KEEP_FINISHED: usize = 8;

/// What a transfer does; enough to start it again after a reconnect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferRequest {
    /// Upload a local file to a room.
    Upload {
        /// Where it is posted.
        room: RoomId,
        /// The local file.
        path: PathBuf,
    },
    /// Download a file into the download folder.
    Download {
        /// The file.
        file: FileId,
    },
}

/// Where a transfer is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferState {
    /// Under way.
    Running,
    /// Finished; what to tell the user (e.g. where the file was saved).
    Done(String),
    /// Failed for good.
    Failed(String),
    /// The connection dropped; it resumes when the client reconnects.
    Interrupted(String),
    /// Cancelled by the user; what was transferred is kept, so starting it again resumes.
    Cancelled,
}

/// The result of a transfer task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferOutcome {
    /// It worked; the text says how.
    Done(String),
    /// It was cancelled.
    Cancelled,
    /// It failed; `resumable` when a reconnect would let it continue.
    Failed {
        /// Why.
        error: String,
        /// Whether to retry after a reconnect.
        resumable: bool,
    },
}

/// One row of the transfers panel.
#[derive(Clone, Debug)]
pub struct TransferView {
    /// Numbers transfers for `/cancel N`.
    pub id: u32,
    /// What it does.
    pub request: TransferRequest,
    /// The file's name as shown.
    pub name: String,
    /// The latest progress report.
    pub progress: Option<Progress>,
    /// Rate and ETA.
    pub meter: RateMeter,
    /// Where it is.
    pub state: TransferState,
}

impl TransferView {
    /// Whether it is an upload.
    pub fn is_upload(&self) -> bool {
        matches!(self.request, TransferRequest::Upload { .. })
    }
}

impl App {
    fn add_transfer(&mut self, request: TransferRequest, name: String) -> Vec<Action> {
        self.next_transfer += 1;
        let id = self.next_transfer;
        self.transfers.push(TransferView {
            id,
            request: request.clone(),
            name,
            progress: None,
            meter: RateMeter::default(),
            state: TransferState::Running,
        });
        self.show_transfers = true;
        self.prune_transfers();
        vec![Action::StartTransfer { id, request }]
    }

    fn prune_transfers(&mut self) {
        let finished = self
            .transfers
            .iter()
            .filter(|t| t.state != TransferState::Running)
            .count();
        let mut excess = finished.saturating_sub(KEEP_FINISHED);
        self.transfers.retain(|t| {
            if excess > 0 && !matches!(t.state, TransferState::Running) {
                excess -= 1;
                false
            } else {
                true
            }
        });
    }

    /// `/upload PATH`: posts a local file to the current room (`~/` is the home folder).
    pub fn start_upload(&mut self, path: &str) -> Vec<Action> {
        let Some(room) = self.current else {
            self.flash("you are in no room; /join one", true);
            return Vec::new();
        };
        let path = crate::settings::expand_home(std::path::Path::new(path));
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        self.add_transfer(TransferRequest::Upload { room, path }, name)
    }

    /// The file posted by the message with this id in any room, newest first.
    pub fn find_file(&self, file: FileId) -> Option<&FileRef> {
        self.rooms.values().find_map(|r| {
            r.timeline.values().find_map(|e| match e {
                Entry::Message(m) => match &m.kind {
                    MessageKind::File(f) if f.id == file => Some(&**f),
                    _ => None,
                },
                Entry::Notice { .. } => None,
            })
        })
    }

    /// The newest file posted in the current room.
    pub fn newest_file(&self) -> Option<&FileRef> {
        self.current_room()?
            .timeline
            .values()
            .rev()
            .find_map(|e| match e {
                Entry::Message(m) => match &m.kind {
                    MessageKind::File(f) => Some(&**f),
                    _ => None,
                },
                Entry::Notice { .. } => None,
            })
    }

    /// `/download [ID]` (or Alt-D): downloads a file — by id, or the newest one in the room —
    /// into the download folder.
    pub fn start_download(&mut self, file: Option<FileId>) -> Vec<Action> {
        let (file, name) = match file {
            Some(id) => (
                id,
                self.find_file(id)
                    .map_or_else(|| format!("file {id}"), |f| f.name.clone()),
            ),
            None => match self.newest_file() {
                Some(f) => (f.id, f.name.clone()),
                None => {
                    self.flash("no file in this room; /download ID for another", true);
                    return Vec::new();
                }
            },
        };
        let running = self.transfers.iter().any(|t| {
            t.state == TransferState::Running && t.request == TransferRequest::Download { file }
        });
        if running {
            self.flash(format!("{name} is already downloading"), true);
            return Vec::new();
        }
        self.add_transfer(TransferRequest::Download { file }, name)
    }

    /// `/cancel [N]`: cancels transfer N, or the newest running one.
    pub fn cancel_transfer(&mut self, id: Option<u32>) -> Vec<Action> {
        let pick = match id {
            Some(id) => self.transfers.iter().find(|t| t.id == id),
            None => self.transfers.iter().rev().find(|t| {
                matches!(
                    t.state,
                    TransferState::Running | TransferState::Interrupted(_)
                )
            }),
        };
        let Some(t) = pick else {
            self.flash("no such transfer", true);
            return Vec::new();
        };
        let id = t.id;
        match t.state {
            TransferState::Running => vec![Action::CancelTransfer(id)],
            TransferState::Interrupted(_) => {
                self.transfer_ended(id, TransferOutcome::Cancelled);
                Vec::new()
            }
            _ => {
                self.flash(format!("transfer {id} is not running"), true);
                Vec::new()
            }
        }
    }

    /// A progress report from transfer `id`, taken at `at` (ms).
    pub fn transfer_progress(&mut self, id: u32, progress: Progress, at: UnixMillis) {
        if let Some(t) = self.transfers.iter_mut().find(|t| t.id == id) {
            if t.progress.is_some_and(|p| p.phase != progress.phase) {
                t.meter = RateMeter::default();
            }
            t.meter.record(at, progress.done);
            t.progress = Some(progress);
        }
    }

    /// Transfer `id` ended.
    pub fn transfer_ended(&mut self, id: u32, outcome: TransferOutcome) {
        let Some(t) = self.transfers.iter_mut().find(|t| t.id == id) else {
            return;
        };
        let (state, flash) = match outcome {
            TransferOutcome::Done(text) => (TransferState::Done(text.clone()), Some((text, false))),
            TransferOutcome::Cancelled => (
                TransferState::Cancelled,
                Some((
                    format!("cancelled {}; start it again to resume", t.name),
                    false,
                )),
            ),
            TransferOutcome::Failed {
                error,
                resumable: true,
            } => (TransferState::Interrupted(error), None),
            TransferOutcome::Failed { error, .. } => (
                TransferState::Failed(error.clone()),
                Some((format!("{}: {error}", t.name), true)),
            ),
        };
        t.state = state;
        if let Some((text, error)) = flash {
            self.flash(text, error);
        }
        self.prune_transfers();
    }

    /// After a reconnect: starts the transfers the lost connection interrupted again (they
    /// continue where they stopped).
    pub fn resume_transfers(&mut self) -> Vec<Action> {
        self.transfers
            .iter_mut()
            .filter(|t| matches!(t.state, TransferState::Interrupted(_)))
            .map(|t| {
                t.state = TransferState::Running;
                Action::StartTransfer {
                    id: t.id,
                    request: t.request.clone(),
                }
            })
            .collect()
    }

    /// A message was deleted: it stays in the timeline, shown as deleted. Unread, it is no
    /// longer counted (nor its mention of me).
    pub fn message_deleted(&mut self, room: RoomId, seq: Seq) {
        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        // An unread message not held is someone else's (mine move the marker past them), and
        // not a room notice (those cannot be deleted).
        let (counted, mention) = match r.timeline.get(&(seq, 0)) {
            Some(Entry::Message(m)) => (self.is_news(m), Some(self.is_mention(m))),
            _ => (true, self.unheld_mentions_me(r)),
        };
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        if seq > r.summary.last_read_seq && counted {
            r.summary.unread = r.summary.unread.saturating_sub(1);
            if mention == Some(true) {
                r.summary.mentions = r.summary.mentions.saturating_sub(1);
            }
        }
        if let Some(Entry::Message(m)) = r.timeline.get_mut(&(seq, 0)) {
            m.kind = MessageKind::Deleted;
            m.text.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatroom_protocol::transfer::Phase;
    use chatroom_protocol::{
        Event, Message, MessageId, RoomKind, RoomRole, RoomSummary, UserId, UserSummary,
    };

    fn app_with_a_file() -> App {
        let mut app = App::new("h:1", None);
        app.logged_in(UserSummary {
            id: UserId(1),
            username: "me".into(),
            is_admin: false,
        });
        app.rooms_loaded(vec![RoomSummary {
            id: RoomId(1),
            kind: RoomKind::Public,
            name: "public".into(),
            topic: String::new(),
            member_count: 2,
            latest_seq: 0,
            last_read_seq: 0,
            unread: 0,
            mentions: 0,
            my_role: Some(RoomRole::Member),
        }]);
        for (seq, kind) in [
            (1, MessageKind::Text),
            (
                2,
                MessageKind::File(Box::new(FileRef {
                    id: FileId(7),
                    name: "report.pdf".into(),
                    size: 1000,
                    sha256: [0; 32],
                })),
            ),
            (3, MessageKind::Text),
        ] {
            app.on_event(Event::Message(Message {
                id: MessageId(seq),
                room: RoomId(1),
                seq,
                sender: UserId(1),
                sender_name: "me".into(),
                ts: 0,
                kind,
                text: "x".into(),
            }));
        }
        app
    }

    #[test]
    fn download_picks_the_newest_file_and_refuses_a_duplicate() {
        let mut app = app_with_a_file();
        let actions = app.start_download(None);
        assert_eq!(
            actions,
            vec![Action::StartTransfer {
                id: 1,
                request: TransferRequest::Download { file: FileId(7) }
            }]
        );
        assert_eq!(app.transfers[0].name, "report.pdf");
        assert!(app.show_transfers, "the panel opens");
        assert!(
            app.start_download(Some(FileId(7))).is_empty(),
            "already running"
        );
        assert_eq!(app.start_download(Some(FileId(9))).len(), 1);
        assert_eq!(app.transfers[1].name, "file 9");
    }

    #[test]
    fn progress_failure_cancel_and_resume() {
        let mut app = app_with_a_file();
        app.start_upload("/tmp/a.bin");
        app.start_download(None);
        app.transfer_progress(
            1,
            Progress {
                phase: Phase::Sending,
                done: 0,
                total: 4_000_000,
            },
            0,
        );
        app.transfer_progress(
            1,
            Progress {
                phase: Phase::Sending,
                done: 1_000_000,
                total: 4_000_000,
            },
            1_000,
        );
        assert_eq!(app.transfers[0].meter.bytes_per_sec(), Some(1_000_000.0));
        assert_eq!(app.cancel_transfer(None), vec![Action::CancelTransfer(2)]);
        app.transfer_ended(
            1,
            TransferOutcome::Failed {
                error: "connection closed".into(),
                resumable: true,
            },
        );
        assert!(matches!(
            app.transfers[0].state,
            TransferState::Interrupted(_)
        ));
        app.transfer_ended(2, TransferOutcome::Cancelled);
        assert_eq!(app.transfers[1].state, TransferState::Cancelled);
        let again = app.resume_transfers();
        assert_eq!(again.len(), 1, "only the interrupted one");
        assert_eq!(app.transfers[0].state, TransferState::Running);
        app.transfer_ended(
            1,
            TransferOutcome::Failed {
                error: "too large".into(),
                resumable: false,
            },
        );
        assert!(
            app.flash
                .as_ref()
                .is_some_and(|(t, e)| *e && t.contains("too large"))
        );
    }

    #[test]
    fn finished_transfers_are_pruned() {
        let mut app = app_with_a_file();
        for n in 0..20 {
            app.start_download(Some(FileId(100 + n)));
            let id = app.next_transfer;
            app.transfer_ended(id, TransferOutcome::Done("ok".into()));
        }
        app.start_download(Some(FileId(1)));
        assert_eq!(app.transfers.len(), KEEP_FINISHED + 1);
        assert_eq!(
            app.transfers.last().map(|t| &t.state),
            Some(&TransferState::Running)
        );
    }

    #[test]
    fn deleted_messages_stay_as_deleted_and_delete_picks_my_last() {
        let mut app = app_with_a_file();
        assert_eq!(app.delete_last(), [], "asked first");
        assert_eq!(app.deleting().map(|d| d.seq), Some(3));
        app.on_event(Event::MessageDeleted {
            room: RoomId(1),
            seq: 2,
            by: "me".into(),
        });
        let Some(Entry::Message(m)) = app.rooms[&RoomId(1)].timeline.get(&(2, 0)) else {
            panic!("the message stays");
        };
        assert_eq!(
            (m.kind.clone(), m.text.as_str()),
            (MessageKind::Deleted, "")
        );
        assert!(app.newest_file().is_none(), "its file is gone");
    }
}
