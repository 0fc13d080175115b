//! A passive frame reader for tools that watch a byte stream without taking part in it.
//!
//! A relay or a capture tool feeds the bytes it forwards; the scanner calls a
//! [frame hook](super::observer) once per frame, exactly as a connection would, with the header
//! and the unmasked payload (at most [`OBSERVED_PAYLOAD_MAX`] bytes of it). It never changes or
//! holds back the bytes, checks no protocol rule but the header's own encoding, and its memory
//! is bounded whatever the frames announce.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use syncws::proto::{Direction, scanner::FrameScanner};
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let sink = Arc::clone(&seen);
//! let mut scanner = FrameScanner::new(Direction::Sent, Arc::new(move |_, header, payload| {
//!     sink.lock().unwrap().push((header.opcode, payload.to_vec()));
//! }));
//! // RFC 6455 §5.7's masked "Hello", arriving in two pieces.
//! let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
//! scanner.feed(&wire[..4])?;
//! scanner.feed(&wire[4..])?;
//! assert_eq!(*seen.lock().unwrap(), [(syncws::proto::frame::OpCode::Text, b"Hello".to_vec())]);
//! # Ok::<(), syncws::proto::error::ProtocolError>(())
//! ```
//!
//! [`OBSERVED_PAYLOAD_MAX`]: super::observer::OBSERVED_PAYLOAD_MAX

use super::frame::{Decoded, FrameHeader, MAX_HEADER_LEN};
use super::mask::apply_mask;
use super::observer::{Direction, FrameObserver, OBSERVED_PAYLOAD_MAX, Tap};
use crate::proto::error::ProtocolError;

/// Finds frame boundaries in a byte stream and reports each frame to a hook.
#[derive(Debug)]
pub struct FrameScanner {
    tap: Tap,
    /// The bytes of a header that is still incomplete.
    head: Vec<u8>,
    /// The frame whose payload is passing: its key, bytes seen so far, bytes still to come.
    current: Option<PayloadState>,
    /// The stream broke the framing; nothing more can be found in it.
    broken: Option<ProtocolError>,
}

#[derive(Debug)]
struct PayloadState {
    mask: Option<[u8; 4]>,
    offset: usize,
    remaining: u64,
}

impl FrameScanner {
    /// A scanner that reports every frame to `observer` with `direction`.
    pub fn new(direction: Direction, observer: FrameObserver) -> FrameScanner {
        let mut tap = Tap::new(direction);
        tap.set_observer(Some(observer));
        FrameScanner {
            tap,
            head: Vec::with_capacity(MAX_HEADER_LEN),
            current: None,
            broken: None,
        }
    }

    /// Looks at the next bytes of the stream.
    ///
    /// Errors: [`ProtocolError::InvalidLength`] when a header's 64-bit length has its top bit set
    /// (RFC 6455 §5.2); after that the stream cannot be framed and every call returns the error.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), ProtocolError> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        while !bytes.is_empty() || self.current.as_ref().is_some_and(|c| c.remaining == 0) {
            match self.current.as_mut() {
                Some(state) => {
                    let take = (bytes.len() as u64).min(state.remaining) as usize;
                    let (piece, rest) = bytes.split_at(take);
                    // Only the part the hook can be shown is copied and unmasked.
                    let room = OBSERVED_PAYLOAD_MAX.saturating_sub(state.offset);
                    let mut shown = piece[..room.min(piece.len())].to_vec();
                    if let Some(key) = state.mask {
                        apply_mask(&mut shown, key, state.offset);
                    }
                    self.tap.payload(&shown);
                    state.offset += take;
                    state.remaining -= take as u64;
                    if state.remaining == 0 {
                        self.current = None;
                        self.tap.finish();
                    }
                    bytes = rest;
                }
                None => {
                    // Add bytes to the header one at a time up to its full length: a header is
                    // at most 14 bytes, so this is cheap and never takes payload bytes.
                    let want = MAX_HEADER_LEN - self.head.len();
                    let mut used = 0;
                    let mut complete = None;
                    while used < want.min(bytes.len()) {
                        self.head.push(bytes[used]);
                        used += 1;
                        match FrameHeader::decode(&self.head) {
                            Ok(Decoded::Partial) => {}
                            Ok(Decoded::Complete(header, _)) => {
                                complete = Some(header);
                                break;
                            }
                            Err(e) => {
                                self.broken = Some(e);
                                return Err(e);
                            }
                        }
                    }
                    bytes = &bytes[used..];
                    if let Some(header) = complete {
                        self.head.clear();
                        self.tap.start(header);
                        self.current = Some(PayloadState {
                            mask: header.mask,
                            offset: 0,
                            remaining: header.payload_len,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the stream stopped between frames (nothing partial pending).
    pub fn is_idle(&self) -> bool {
        self.head.is_empty() && self.current.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::{FrameHeader, OpCode, encode_frame};
    use std::sync::{Arc, Mutex};

    type Seen = Arc<Mutex<Vec<(FrameHeader, Vec<u8>)>>>;

    fn scanner() -> (FrameScanner, Seen) {
        let seen: Seen = Arc::default();
        let sink = Arc::clone(&seen);
        let scanner = FrameScanner::new(
            Direction::Received,
            Arc::new(move |_, h, p| sink.lock().unwrap().push((*h, p.to_vec()))),
        );
        (scanner, seen)
    }

    #[test]
    fn every_split_of_a_stream_gives_the_same_frames() {
        let mut wire = Vec::new();
        let mut header = FrameHeader::new(OpCode::Text, 300);
        header.mask = Some([1, 2, 3, 4]);
        encode_frame(&header, &[b'x'; 300], &mut wire);
        encode_frame(&FrameHeader::new(OpCode::Ping, 0), &[], &mut wire);
        encode_frame(&FrameHeader::new(OpCode::Binary, 2), &[7, 8], &mut wire);
        for step in [1, 2, 3, 5, 13, 100, wire.len()] {
            let (mut scanner, seen) = scanner();
            for piece in wire.chunks(step) {
                scanner.feed(piece).unwrap();
            }
            assert!(scanner.is_idle());
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 3, "step {step}");
            assert_eq!(seen[0].1, vec![b'x'; 300]);
            assert_eq!((seen[1].0.opcode, seen[1].1.len()), (OpCode::Ping, 0));
            assert_eq!(seen[2].1, [7, 8]);
        }
    }

    #[test]
    fn a_huge_frame_is_shown_only_in_part() {
        let (mut scanner, seen) = scanner();
        let mut wire = Vec::new();
        FrameHeader::new(OpCode::Binary, 1 << 20).encode(&mut wire);
        scanner.feed(&wire).unwrap();
        let chunk = vec![0u8; 64 << 10];
        for _ in 0..16 {
            scanner.feed(&chunk).unwrap();
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0.payload_len, 1 << 20);
        assert_eq!(seen[0].1.len(), OBSERVED_PAYLOAD_MAX);
    }

    #[test]
    fn a_broken_length_stops_the_scanner() {
        let (mut scanner, _) = scanner();
        let bad = [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(scanner.feed(&bad), Err(ProtocolError::InvalidLength));
        assert_eq!(scanner.feed(&[0x81]), Err(ProtocolError::InvalidLength));
    }
}
