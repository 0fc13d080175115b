//! What the room calls hand back: a delivery to format, what a join replayed, who is present.

use super::offset::Offset;
use crate::proto::message::Message;

/// One message as delivered to a room's members, given to
/// [`RoomsBuilder::format`](super::RoomsBuilder::format).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// Its place in the room's history; pass it back as `since` to resume after it.
    pub offset: Offset,
    /// The node (process) the message was broadcast on.
    pub node: String,
    /// The message as broadcast: text or binary.
    pub message: Message,
}

/// What [`Rooms::join_with`](super::Rooms::join_with) replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Joined {
    /// The history after `since` was incomplete (trimmed, or the room's epoch changed): the
    /// member got the gap message first, then every message still retained.
    pub gap: bool,
    /// Messages replayed before live delivery began.
    pub replayed: usize,
}

/// Who is in a room, on every node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Presence {
    /// `(node, identity)` for each member, sorted.
    pub members: Vec<(String, String)>,
}

impl Presence {
    /// How many members the room has.
    pub fn count(&self) -> usize {
        self.members.len()
    }
}
