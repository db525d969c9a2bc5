//! Rooms and direct chats: lists, create, join, leave, invite, kick, roles, info, topic.

use chatroom_protocol::{
    ErrorCode, Event, LeaveReason, Response, RoomId, RoomInfo, RoomKind, RoomRole, RoomSummary,
    UserId, Visibility,
};

use bytes::Bytes;

use super::{Conn, internal, room_not_found};
use crate::auth;
use crate::error::{RequestError, RequestResult};
use crate::hub::{Hub, Namespace, RoomView};
use crate::storage::{Outcome, UserRow, WriteOp, reads};

impl Conn {
    pub(super) async fn my_rooms(&self, me: &UserRow) -> RequestResult<Response> {
        let user = me.id;
        let rooms = self
            .shared
            .storage
            .reads
            .run(move |c| reads::my_rooms(c, user))
            .await?;
        Ok(Response::Rooms(rooms))
    }

    pub(super) async fn public_rooms(&self, me: &UserRow) -> RequestResult<Response> {
        let user = me.id;
        let rooms = self
            .shared
            .storage
            .reads
            .run(move |c| reads::public_rooms(c, user))
            .await?;
        Ok(Response::Rooms(rooms))
    }

    /// `user`'s view of `room`, with their counts.
    pub(super) async fn summary_for(
        &self,
        user: UserId,
        room: RoomId,
    ) -> RequestResult<RoomSummary> {
        self.shared
            .storage
            .reads
            .run(move |c| reads::room_summary(c, user, room))
            .await?
            .ok_or_else(room_not_found)
    }

    /// The room as `me` sees it, if `me` may see it at all: members see every room, others
    /// only public ones. A private room is "not found" to outsiders, not "forbidden".
    pub(super) fn visible_room(&self, me: &UserRow, room: RoomId) -> RequestResult<RoomView> {
        match self.shared.hub.room_view(room, me.id) {
            Some(view) if view.my_role.is_some() || view.row.kind == RoomKind::Public => Ok(view),
            _ => Err(room_not_found()),
        }
    }

    /// The room, if `me` is a member.
    pub(super) fn member_room(
        &self,
        me: &UserRow,
        room: RoomId,
    ) -> RequestResult<(RoomView, RoomRole)> {
        let view = self.visible_room(me, room)?;
        match view.my_role {
            Some(role) => {
                let role = acting_role(role, me, view.row.kind);
                Ok((view, role))
            }
            None => Err(RequestError::new(
                ErrorCode::NotMember,
                format!("you are not a member of {}; join it first", view.row.name),
            )),
        }
    }

    pub(super) async fn create_room(
        &self,
        me: &UserRow,
        name: String,
        visibility: Visibility,
    ) -> RequestResult<Response> {
        auth::validate_room_name(&name)?;
        if self.shared.hub.room_by_name(&name).is_some() {
            return Err(RequestError::new(
                ErrorCode::RoomNameTaken,
                format!("a room named {name:?} exists"),
            ));
        }
        let _claim = self
            .shared
            .hub
            .claim_name(Namespace::Room, &name, None)
            .map_err(|other| name_taken(&name, &other))?;
        let kind = match visibility {
            Visibility::Public => RoomKind::Public,
            Visibility::Private => RoomKind::Private,
        };
        let hub = self.shared.hub.clone();
        let owner = me.id;
        let committed = self
            .shared
            .storage
            .writer
            .write_then(WriteOp::CreateRoom { name, kind, owner }, move |outcome| {
                if let Outcome::Room { row, summary } = outcome {
                    let told = room_updated(&hub, owner, summary);
                    hub.add_room(row.clone(), &[(owner, RoomRole::Owner)], &told);
                }
            })
            .await?;
        let (row, summary) = match committed {
            Outcome::Room { row, summary } => (row, summary),
            other => return Err(internal(format!("unexpected outcome {other:?}"))),
        };
        let kind_name = match kind {
            RoomKind::Public => "public",
            RoomKind::Private => "private",
            RoomKind::Direct => "direct",
        };
        tracing::info!(room = %row.name, kind = %kind_name, by = %me.name, "room created");
        Ok(Response::Room(summary))
    }

    /// Adds `user` to `room` (invited `by` someone, or joining) and tells the new member,
    /// then the room.
    async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        role: RoomRole,
        by: Option<UserId>,
    ) -> RequestResult<RoomSummary> {
        let hub = self.shared.hub.clone();
        let committed = self
            .shared
            .storage
            .writer
            .write_then(
                WriteOp::AddMember {
                    room,
                    user,
                    role,
                    by,
                },
                move |outcome| {
                    let Outcome::Joined { role, summary } = outcome else {
                        return;
                    };
                    let told = hub.encode_event(&Event::RoomUpdated(summary.clone()));
                    hub.add_member(room, user, *role, told.as_ref());
                    if let Some(member) = hub.member(room, user)
                        && let Some(frame) = hub.encode_event(&Event::MemberJoined { room, member })
                    {
                        hub.broadcast_except(room, user, &frame);
                    }
                },
            )
            .await?;
        match committed {
            Outcome::Joined { summary, .. } => Ok(summary),
            other => Err(internal(format!("unexpected outcome {other:?}"))),
        }
    }

    pub(super) async fn join_room(&self, me: &UserRow, name: String) -> RequestResult<Response> {
        let room = self
            .shared
            .hub
            .room_by_name(&name)
            .ok_or_else(room_not_found)?;
        let view = self.visible_room(me, room)?;
        if view.my_role.is_some() {
            // Joining a room one is in is harmless: answer with the room.
            return Ok(Response::Room(self.summary_for(me.id, room).await?));
        }
        let summary = self.add_member(room, me.id, RoomRole::Member, None).await?;
        Ok(Response::Room(summary))
    }

    /// Removes `user` from `room`; once that is committed, `told` (the kick notice) goes to
    /// them, then the room hears that they left.
    async fn remove_member(
        &self,
        room: RoomId,
        user: &UserRow,
        reason: LeaveReason,
        told: Option<Bytes>,
        by: Option<UserId>,
    ) -> RequestResult<()> {
        let hub = self.shared.hub.clone();
        let (user_id, username) = (user.id, user.name.clone());
        let why = match &reason {
            LeaveReason::Kicked { reason, .. } | LeaveReason::Banned { reason, .. } => {
                reason.clone()
            }
            LeaveReason::Left | LeaveReason::AccountDeleted => None,
        };
        self.shared
            .storage
            .writer
            .write_then(
                WriteOp::RemoveMember {
                    room,
                    user: user_id,
                    by,
                    reason: why,
                },
                move |outcome| {
                    let heirs = match outcome {
                        Outcome::Roles(heirs) => heirs.clone(),
                        _ => Vec::new(),
                    };
                    announce_departure(&hub, room, user_id, username, reason, told, heirs);
                },
            )
            .await?;
        Ok(())
    }

    pub(super) async fn leave_room(&self, me: &UserRow, room: RoomId) -> RequestResult<Response> {
        let (view, _) = self.member_room(me, room)?;
        if view.row.kind == RoomKind::Direct {
            return Err(RequestError::new(
                ErrorCode::Forbidden,
                "a direct chat cannot be left",
            ));
        }
        if auth::name_key(&view.row.name) == "public" {
            return Err(RequestError::new(
                ErrorCode::Forbidden,
                "everyone is in public: it cannot be left",
            ));
        }
        self.remove_member(room, me, LeaveReason::Left, None, None)
            .await?;
        Ok(Response::Done)
    }

    pub(super) async fn invite(
        &self,
        me: &UserRow,
        room: RoomId,
        username: String,
    ) -> RequestResult<Response> {
        let (view, role) = self.member_room(me, room)?;
        match view.row.kind {
            RoomKind::Direct => {
                return Err(RequestError::new(
                    ErrorCode::Forbidden,
                    "a direct chat has exactly two members",
                ));
            }
            RoomKind::Private if role < RoomRole::Moderator => {
                return Err(RequestError::new(
                    ErrorCode::Forbidden,
                    "only the owner or a moderator may invite to a private room",
                ));
            }
            _ => {}
        }
        let target = self.user_named(&username)?;
        self.add_member(room, target.id, RoomRole::Member, Some(me.id))
            .await?;
        Ok(Response::Done)
    }

    pub(super) async fn kick(
        &self,
        me: &UserRow,
        room: RoomId,
        username: String,
        reason: Option<String>,
    ) -> RequestResult<Response> {
        let (view, role) =
            self.moderated_room(me, room, "only the owner or a moderator may remove members")?;
        let target = self.user_named(&username)?;
        let target_role = self
            .shared
            .hub
            .room_view(room, target.id)
            .and_then(|v| v.my_role)
            .map(|theirs| acting_role(theirs, &target, view.row.kind))
            .ok_or_else(|| {
                RequestError::new(ErrorCode::NotMember, format!("{username} is not a member"))
            })?;
        if target_role >= role {
            return Err(RequestError::new(
                ErrorCode::Forbidden,
                "you may only remove members below your own role",
            ));
        }
        let reason = auth::clean_reason(reason);
        // Told only once the removal is committed: a failed kick must not say it happened.
        let told = self.event_bytes(&Event::Kicked {
            room,
            room_name: view.row.name.clone(),
            by: me.name.clone(),
            reason: reason.clone(),
        });
        self.remove_member(
            room,
            &target,
            LeaveReason::Kicked {
                by: me.name.clone(),
                reason,
            },
            told,
            Some(me.id),
        )
        .await?;
        tracing::info!(room = %view.row.name, target = %target.name, by = %me.name, "member kicked");
        Ok(Response::Done)
    }

    pub(super) async fn ban(
        &self,
        me: &UserRow,
        room: RoomId,
        username: String,
        reason: Option<String>,
    ) -> RequestResult<Response> {
        let (view, role) =
            self.moderated_room(me, room, "only the owner or a moderator may ban")?;
        let target = self.user_named(&username)?;
        let reason = auth::clean_reason(reason);
        let told = self.event_bytes(&Event::Banned {
            room,
            room_name: view.row.name.clone(),
            by: me.name.clone(),
            reason: reason.clone(),
        });
        let left = LeaveReason::Banned {
            by: me.name.clone(),
            reason: reason.clone(),
        };
        let hub = self.shared.hub.clone();
        let (user_id, name) = (target.id, target.name.clone());
        self.shared
            .storage
            .writer
            .write_then(
                WriteOp::Ban {
                    room,
                    user: target.id,
                    by: me.id,
                    by_name: me.name.clone(),
                    reason,
                },
                move |outcome| {
                    if let Outcome::Banned {
                        was_member: true,
                        heirs,
                    } = outcome
                    {
                        announce_departure(&hub, room, user_id, name, left, told, heirs.clone());
                    }
                },
            )
            .await?;
        tracing::info!(room = %view.row.name, target = %target.name, by = %me.name, by_role = %role_name(role), "user banned");
        Ok(Response::Done)
    }

    pub(super) async fn unban(
        &self,
        me: &UserRow,
        room: RoomId,
        username: String,
    ) -> RequestResult<Response> {
        let (view, _) =
            self.moderated_room(me, room, "only the owner or a moderator may lift a ban")?;
        let target = self.user_named(&username)?;
        self.shared
            .storage
            .writer
            .write(WriteOp::Unban {
                room,
                user: target.id,
                by: me.id,
            })
            .await?;
        tracing::info!(room = %view.row.name, target = %target.name, by = %me.name, "ban lifted");
        Ok(Response::Done)
    }

    pub(super) async fn bans(&self, me: &UserRow, room: RoomId) -> RequestResult<Response> {
        self.moderated_room(me, room, "only the owner or a moderator may see the bans")?;
        let bans = self
            .shared
            .storage
            .reads
            .run(move |c| reads::bans(c, room))
            .await?;
        Ok(Response::Bans(bans))
    }

    /// A named room where I am a moderator or the owner.
    pub(super) fn moderated_room(
        &self,
        me: &UserRow,
        room: RoomId,
        refusal: &'static str,
    ) -> RequestResult<(RoomView, RoomRole)> {
        let (view, role) = self.member_room(me, room)?;
        if view.row.kind == RoomKind::Direct || role < RoomRole::Moderator {
            return Err(RequestError::new(ErrorCode::Forbidden, refusal));
        }
        Ok((view, role))
    }

    pub(super) async fn set_role(
        &self,
        me: &UserRow,
        room: RoomId,
        username: String,
        role: RoomRole,
    ) -> RequestResult<Response> {
        let (view, my_role) = self.member_room(me, room)?;
        if view.row.kind == RoomKind::Direct {
            return Err(RequestError::new(
                ErrorCode::Forbidden,
                "a direct chat has no roles",
            ));
        }
        // `public` has no owner: there, a server admin appoints and removes its moderators.
        let admin_in_public =
            me.is_admin && role != RoomRole::Owner && auth::name_key(&view.row.name) == "public";
        if my_role != RoomRole::Owner && !admin_in_public {
            return Err(RequestError::new(
                ErrorCode::Forbidden,
                "only the room's owner may change roles",
            ));
        }
        let target = self.user_named(&username)?;
        let hub = self.shared.hub.clone();
        let by = me.name.clone();
        self.shared
            .storage
            .writer
            .write_then(
                WriteOp::SetRole {
                    room,
                    user: target.id,
                    role,
                    actor: me.id,
                },
                move |outcome| {
                    if let Outcome::Roles(changes) = outcome {
                        hub.set_roles(room, changes, Some(&by));
                    }
                },
            )
            .await?;
        tracing::info!(room = %view.row.name, target = %target.name, by = %me.name, role = %role_name(role), "role changed");
        Ok(Response::Done)
    }

    pub(super) async fn room_info(&self, me: &UserRow, room: RoomId) -> RequestResult<Response> {
        self.visible_room(me, room)?;
        let summary = self.summary_for(me.id, room).await?;
        let members = self.shared.hub.members(room);
        Ok(Response::RoomInfo(RoomInfo {
            room: summary,
            members,
        }))
    }

    pub(super) async fn set_topic(
        &self,
        me: &UserRow,
        room: RoomId,
        topic: String,
    ) -> RequestResult<Response> {
        let (view, role) = self.member_room(me, room)?;
        if view.row.kind != RoomKind::Direct && role < RoomRole::Moderator {
            return Err(RequestError::new(
                ErrorCode::Forbidden,
                "only the owner or a moderator may set the topic",
            ));
        }
        auth::validate_topic(&topic)?;
        let hub = self.shared.hub.clone();
        let by = me.name.clone();
        let stored_topic = topic.clone();
        self.shared
            .storage
            .writer
            .write_then(
                WriteOp::SetTopic {
                    room,
                    topic: stored_topic,
                    by: me.id,
                },
                move |_| {
                    hub.flush_deferred();
                    hub.set_topic(room, &topic);
                    if let Some(frame) = hub.encode_event(&Event::TopicChanged { room, topic, by })
                    {
                        hub.broadcast(room, &frame);
                    }
                },
            )
            .await?;
        Ok(Response::Done)
    }

    pub(super) async fn rename_room(
        &self,
        me: &UserRow,
        room: RoomId,
        name: String,
    ) -> RequestResult<Response> {
        let (view, role) = self.member_room(me, room)?;
        if view.row.kind == RoomKind::Direct || auth::name_key(&view.row.name) == "public" {
            return Err(RequestError::new(
                ErrorCode::Forbidden,
                "only a room people create can be renamed",
            ));
        }
        if role != RoomRole::Owner {
            return Err(RequestError::new(
                ErrorCode::Forbidden,
                "only the room's owner may rename it",
            ));
        }
        auth::validate_room_name(&name)?;
        if let Some(other) = self.shared.hub.room_by_name(&name)
            && other != room
        {
            return Err(RequestError::new(
                ErrorCode::RoomNameTaken,
                format!("a room named {name:?} exists"),
            ));
        }
        let _claim = self
            .shared
            .hub
            .claim_name(Namespace::Room, &name, Some(room))
            .map_err(|other| name_taken(&name, &other))?;
        let hub = self.shared.hub.clone();
        let by = me.name.clone();
        let new_name = name.clone();
        self.shared
            .storage
            .writer
            .write_then(
                WriteOp::RenameRoom {
                    room,
                    name,
                    by: me.id,
                },
                move |_| {
                    hub.flush_deferred();
                    hub.rename_room(room, &new_name);
                    let event = Event::RoomRenamed {
                        room,
                        name: new_name,
                        by,
                    };
                    if let Some(frame) = hub.encode_event(&event) {
                        hub.broadcast(room, &frame);
                    }
                },
            )
            .await?;
        tracing::info!(room = %view.row.name, "room renamed");
        Ok(Response::Done)
    }

    pub(super) async fn open_direct(
        &self,
        me: &UserRow,
        username: String,
    ) -> RequestResult<Response> {
        let other = self.user_named(&username)?;
        let hub = self.shared.hub.clone();
        let (a, b) = (me.id, other.id);
        let committed = self
            .shared
            .storage
            .writer
            .write_then(WriteOp::OpenDirect { a, b }, move |outcome| {
                if let Outcome::Direct {
                    room,
                    created: true,
                    for_opener,
                    for_other,
                } = outcome
                {
                    let mut members = vec![(a, RoomRole::Member)];
                    let mut told = room_updated(&hub, a, for_opener);
                    if let Some(theirs) = for_other {
                        members.push((b, RoomRole::Member));
                        told.extend(room_updated(&hub, b, theirs));
                    }
                    hub.add_room(room.clone(), &members, &told);
                }
            })
            .await?;
        match committed {
            Outcome::Direct { for_opener, .. } => Ok(Response::Room(for_opener)),
            other => Err(internal(format!("unexpected outcome {other:?}"))),
        }
    }
}

/// The `RoomUpdated` frame that tells `user` of the room as they see it (`summary`),
/// addressed to them; none if it cannot be encoded.
fn room_updated(hub: &Hub, user: UserId, summary: &RoomSummary) -> Vec<(UserId, Bytes)> {
    hub.encode_event(&Event::RoomUpdated(summary.clone()))
        .map(|frame| (user, frame))
        .into_iter()
        .collect()
}

/// Tells the room (and the one removed, with `told`) that a member is gone, after the commit.
pub(super) fn announce_departure(
    hub: &Hub,
    room: RoomId,
    user: UserId,
    username: String,
    reason: LeaveReason,
    told: Option<Bytes>,
    heirs: Vec<(UserId, RoomRole)>,
) {
    // Messages committed earlier go first; then the room, and the one who left, hear of it
    // before they stop being a member.
    hub.flush_deferred();
    if let Some(frame) = &told {
        hub.send_to_user(user, None, frame);
    }
    let event = Event::MemberLeft {
        room,
        user,
        username,
        reason,
    };
    if let Some(frame) = hub.encode_event(&event) {
        hub.broadcast(room, &frame);
    }
    hub.remove_member(room, user);
    hub.set_roles(room, &heirs, None);
}

/// The role `user` acts with in a room of `kind` where they have `role`: a server admin keeps
/// order in every named room they are in, `public` included, which has no owner, so they count
/// as at least a moderator there, to act and to be acted on (the writer applies the same rule).
fn acting_role(role: RoomRole, user: &UserRow, kind: RoomKind) -> RoomRole {
    if user.is_admin && kind != RoomKind::Direct {
        role.max(RoomRole::Moderator)
    } else {
        role
    }
}

/// A new room name refused for being, or looking like, another room's (see
/// [`crate::auth::look_alike_key`]).
fn name_taken(name: &str, other: &str) -> RequestError {
    let message = if auth::name_key(name) == auth::name_key(other) {
        format!("a room named {name:?} exists")
    } else {
        format!("{name:?} looks like the room #{other}; choose another name")
    };
    RequestError::new(ErrorCode::RoomNameTaken, message)
}

/// A role as the log says it (not Rust's `Debug` spelling).
fn role_name(role: RoomRole) -> &'static str {
    match role {
        RoomRole::Member => "member",
        RoomRole::Moderator => "moderator",
        RoomRole::Owner => "owner",
    }
}
