//! The frame hook: a callback that sees every frame a connection sends and receives.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use syncws::proto::{Connection, Direction, FrameObserver, Role};
//! use syncws::proto::config::Config;
//! use syncws::proto::message::Message;
//!
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let log = Arc::clone(&seen);
//! let hook: FrameObserver = Arc::new(move |direction, header, payload| {
//!     log.lock().unwrap().push(format!("{direction:?} {} {payload:?}", header.opcode.name()));
//! });
//! let mut server = Connection::new(Role::Server, &Config::default());
//! server.set_frame_observer(Some(hook));
//! // RFC 6455 §5.7: a masked ping "Hello" from a client; the server answers with a pong.
//! server.receive_data(&[0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
//! server.next_event()?;
//! assert_eq!(*seen.lock().unwrap(), [
//!     "Received Ping [72, 101, 108, 108, 111]",
//!     "Sent Pong [72, 101, 108, 108, 111]",
//! ]);
//! # Ok::<(), syncws::proto::Error>(())
//! ```
//!
//! # What the hook sees
//!
//! Once per frame, after the frame is complete: its header as on the wire (with the masking key,
//! if any) and its payload **unmasked** but otherwise as on the wire — a permessage-deflate frame
//! (RSV1 set) shows its compressed bytes. The receiver never holds a whole frame (payload moves
//! to the message as it arrives), so the hook gets at most the first [`OBSERVED_PAYLOAD_MAX`]
//! bytes of the payload: when `payload.len() < header.payload_len` the rest was not kept. A frame
//! that fails the connection (bad header, invalid UTF-8 halfway) is still reported, with the
//! part of its payload that arrived before the failure.
//!
//! A sent frame is reported when it is queued, before it is written to the stream.
//!
//! The hook runs on the thread that reads or sends, inside the call; keep it short. Without a
//! hook (and without the `log` feature) nothing is copied and nothing is called.
//!
//! # The `log` feature
//!
//! With the crate feature `log`, every frame is also logged through the [`log`] crate at level
//! `trace`, target `syncws::proto::frame`, as a one-line [`summary`](crate::proto::dissect::summary). The cost
//! when that level is disabled is one check per frame.
//!
//! [`log`]: https://docs.rs/log

use super::frame::FrameHeader;
use std::sync::Arc;

/// Which way a frame went, from the point of view of the connection that reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Queued by this end for the peer.
    Sent,
    /// Arrived from the peer.
    Received,
}

impl Direction {
    /// An arrow as browsers' developer tools draw it: `↑` sent, `↓` received.
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::Sent => "↑",
            Direction::Received => "↓",
        }
    }
}

/// The frame hook: called with the direction, the header and the (unmasked, possibly truncated)
/// payload of every frame. See the [module docs](self).
pub type FrameObserver = Arc<dyn Fn(Direction, &FrameHeader, &[u8]) + Send + Sync>;

/// How many payload bytes of one frame the hook is shown at most.
pub const OBSERVED_PAYLOAD_MAX: usize = 4096;

/// Collects the observed prefix of one frame's payload and reports the frame when it ends.
pub(crate) struct Tap {
    observer: Option<FrameObserver>,
    direction: Direction,
    /// The header of the frame in progress, while someone listens.
    current: Option<FrameHeader>,
    /// The first bytes of its payload; the buffer is reused from frame to frame.
    kept: Vec<u8>,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap")
            .field("observer", &self.observer.is_some())
            .field("direction", &self.direction)
            .finish()
    }
}

impl Tap {
    pub(crate) fn new(direction: Direction) -> Tap {
        Tap {
            observer: None,
            direction,
            current: None,
            kept: Vec::new(),
        }
    }

    pub(crate) fn set_observer(&mut self, observer: Option<FrameObserver>) {
        self.observer = observer;
    }

    /// Whether anyone listens; when not, the connection skips the tap entirely.
    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.observer.is_some() || log_enabled()
    }

    /// A frame's header was decoded; its payload follows through [`payload`](Self::payload).
    #[inline]
    pub(crate) fn start(&mut self, header: FrameHeader) {
        if self.active() {
            self.kept.clear();
            self.current = Some(header);
        }
    }

    /// Unmasked payload bytes of the frame in progress.
    #[inline]
    pub(crate) fn payload(&mut self, bytes: &[u8]) {
        if self.current.is_some() {
            let room = OBSERVED_PAYLOAD_MAX - self.kept.len();
            self.kept.extend_from_slice(&bytes[..room.min(bytes.len())]);
        }
    }

    /// The frame in progress ended (completely, or because the connection failed).
    #[inline]
    pub(crate) fn finish(&mut self) {
        if let Some(header) = self.current.take() {
            self.report(&header, &self.kept);
        }
    }

    /// The connection failed with `error` during the frame in progress: reports what arrived.
    #[cold]
    pub(crate) fn fail<E>(&mut self, error: E) -> E {
        self.finish();
        error
    }

    /// Reports a whole frame at once (the sending side has it in memory).
    #[inline]
    pub(crate) fn whole(&self, header: &FrameHeader, payload: &[u8]) {
        if self.active() {
            self.report(header, &payload[..payload.len().min(OBSERVED_PAYLOAD_MAX)]);
        }
    }

    fn report(&self, header: &FrameHeader, payload: &[u8]) {
        if let Some(observer) = &self.observer {
            observer(self.direction, header, payload);
        }
        log_frame(self.direction, header, payload);
    }
}

#[cfg(feature = "log")]
#[inline]
fn log_enabled() -> bool {
    log::log_enabled!(target: "syncws::proto::frame", log::Level::Trace)
}

#[cfg(not(feature = "log"))]
#[inline]
fn log_enabled() -> bool {
    false
}

#[cfg(feature = "log")]
fn log_frame(direction: Direction, header: &FrameHeader, payload: &[u8]) {
    if log_enabled() {
        log::trace!(target: "syncws::proto::frame", "{}", super::dissect::summary(direction, header, payload));
    }
}

#[cfg(not(feature = "log"))]
fn log_frame(_: Direction, _: &FrameHeader, _: &[u8]) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::config::Config;
    use crate::proto::frame::{FrameHeader, OpCode, encode_frame};
    use crate::proto::{Connection, Role};
    use std::sync::Mutex;

    type Seen = Arc<Mutex<Vec<(Direction, FrameHeader, Vec<u8>)>>>;

    fn hooked(role: Role) -> (Connection, Seen) {
        let seen: Seen = Arc::default();
        let sink = Arc::clone(&seen);
        let mut conn = Connection::new(role, &Config::default());
        conn.set_frame_observer(Some(Arc::new(move |d, h, p| {
            sink.lock().unwrap().push((d, *h, p.to_vec()));
        })));
        (conn, seen)
    }

    fn masked(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut header = FrameHeader::new(opcode, payload.len() as u64);
        header.fin = fin;
        header.mask = Some([1, 2, 3, 4]);
        let mut out = Vec::new();
        encode_frame(&header, payload, &mut out);
        out
    }

    fn summaries(seen: &Seen) -> Vec<String> {
        let seen = seen.lock().unwrap();
        seen.iter()
            .map(|(d, h, p)| crate::proto::dissect::summary(*d, h, p))
            .collect()
    }

    #[test]
    fn sees_fragments_controls_and_replies_in_order() {
        let (mut server, seen) = hooked(Role::Server);
        let mut wire = masked(OpCode::Text, false, b"Hel");
        wire.extend(masked(OpCode::Ping, true, b"?"));
        wire.extend(masked(OpCode::Continuation, true, b"lo"));
        wire.extend(masked(OpCode::Close, true, &[0x03, 0xe8]));
        // One byte at a time: the hook fires once per frame whatever the read sizes.
        for byte in wire {
            server.receive_data(&[byte]);
            while server.next_event().unwrap().is_some() {}
        }
        assert_eq!(
            summaries(&seen),
            [
                "received Text masked len=3 \"Hel\"",
                "received Ping fin masked len=1 \"?\"",
                "sent Pong fin len=1 \"?\"",
                "received Continuation fin masked len=2 \"lo\"",
                "received Close fin masked len=2 code=1000 (normal closure)",
                "sent Close fin len=2 code=1000 (normal closure)",
            ]
        );
    }

    #[test]
    fn a_frame_that_fails_the_connection_is_still_seen() {
        let (mut server, seen) = hooked(Role::Server);
        server.receive_data(&masked(OpCode::Text, true, b"ok \xff more"));
        assert!(server.next_event().is_err());
        assert_eq!(
            summaries(&seen),
            [
                "received Text fin masked len=9 6f 6b 20 ff 20 6d 6f 72 65",
                "sent Close fin len=2 code=1007 (invalid frame payload data)",
            ]
        );
        // A header that breaks a rule is reported before its payload arrives.
        let (mut client, seen) = hooked(Role::Client);
        client.receive_data(&masked(OpCode::Text, true, b"masked by a server"));
        assert!(client.next_event().is_err());
        assert_eq!(summaries(&seen)[0], "received Text fin masked len=18 …");
    }

    #[test]
    fn large_frames_show_their_first_bytes_only() {
        let (mut client, seen) = hooked(Role::Client);
        let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut wire = Vec::new();
        encode_frame(
            &FrameHeader::new(OpCode::Binary, 100_000),
            &payload,
            &mut wire,
        );
        // Through read_buf/commit, so the payload takes the direct path into the message.
        let mut rest = &wire[..];
        let mut events = 0;
        while !rest.is_empty() {
            let buf = client.receiver().read_buf();
            let n = buf.len().min(rest.len());
            buf[..n].copy_from_slice(&rest[..n]);
            client.receiver().commit(n);
            rest = &rest[n..];
            while client.next_event().unwrap().is_some() {
                events += 1;
            }
        }
        assert_eq!(events, 1);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].1.payload_len, 100_000);
        assert_eq!(seen[0].2, payload[..OBSERVED_PAYLOAD_MAX]);
    }

    #[test]
    fn removing_the_hook_stops_it() {
        let (mut client, seen) = hooked(Role::Client);
        client
            .send(&crate::proto::message::Message::text("one"))
            .unwrap();
        client.set_frame_observer(None);
        client
            .send(&crate::proto::message::Message::text("two"))
            .unwrap();
        assert_eq!(seen.lock().unwrap().len(), 1);
        // A client's frames carry a fresh key each; the hook sees the payload unmasked.
        let seen = seen.lock().unwrap();
        assert!(seen[0].1.mask.is_some());
        assert_eq!(seen[0].2, b"one");
    }

    #[test]
    fn a_frame_encoded_once_for_a_broadcast_is_seen() {
        let (mut server, seen) = hooked(Role::Server);
        let mut frame = Vec::new();
        encode_frame(&FrameHeader::new(OpCode::Text, 6), b"to all", &mut frame);
        server.sender().send_encoded(&frame).unwrap();
        assert_eq!(server.data_to_send(), frame);
        assert_eq!(summaries(&seen), ["sent Text fin len=6 \"to all\""]);
    }
}
