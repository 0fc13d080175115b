//! Where a message sits in a room's history: the room's epoch and the entry's id.

use std::fmt;

/// A stream entry id, `MS-SEQ` as Redis Streams write it (the in-memory log uses `0-SEQ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EntryId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence within the millisecond.
    pub seq: u64,
}

impl EntryId {
    /// Parses `MS-SEQ`.
    pub fn parse(text: &str) -> Option<EntryId> {
        let (ms, seq) = text.split_once('-')?;
        Some(EntryId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A delivered message's place: `EPOCH:MS-SEQ` as text. The epoch changes when the room's
/// history is lost as a whole (a broker restarted without persistence, a new process for
/// in-memory rooms), so an offset from an older epoch is known to be out of reach.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Offset {
    /// The room's epoch when the message was delivered.
    pub epoch: String,
    /// The entry's id within that epoch.
    pub id: EntryId,
}

impl Offset {
    /// Parses the text form written by `Display` (`EPOCH:MS-SEQ`); `None` for anything else.
    pub fn parse(text: &str) -> Option<Offset> {
        let (epoch, id) = text.rsplit_once(':')?;
        let valid_epoch = !epoch.is_empty()
            && epoch.len() <= 64
            && epoch.bytes().all(|b| b.is_ascii_alphanumeric());
        valid_epoch.then_some(())?;
        Some(Offset {
            epoch: epoch.to_owned(),
            id: EntryId::parse(id)?,
        })
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.epoch, self.id)
    }
}

/// A fresh random epoch: 16 hex digits.
pub(crate) fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_and_reject_garbage() {
        let offset = Offset::parse("00ab:1700000000000-3").unwrap();
        assert_eq!(
            offset.id,
            EntryId {
                ms: 1_700_000_000_000,
                seq: 3
            }
        );
        assert_eq!(offset.to_string(), "00ab:1700000000000-3");
        for bad in [
            "", "x", ":1-2", "ab:1", "ab:1-", "a b:1-2", "ab:-1-2", "ab:1-2-3",
        ] {
            assert!(Offset::parse(bad).is_none(), "{bad:?} parsed");
        }
    }

    #[test]
    fn entry_ids_order_by_time_then_sequence() {
        let a = EntryId::parse("5-9").unwrap();
        let b = EntryId::parse("6-0").unwrap();
        assert!(a < b && EntryId::parse("6-1").unwrap() > b);
    }
}
