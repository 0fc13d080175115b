//! The inbound half of a connection: bytes in, validated messages and control frames out.
//!
//! Payload bytes are unmasked, validated and moved to the message as they arrive, so a frame is
//! never held whole in the input buffer and invalid UTF-8 fails in the read that brings it, large
//! frames read straight into the message included (RFC 6455 §8.1, Autobahn 6.4.x).

use super::Role;
use super::close::CloseFrame;
use super::control_rate::{ControlRate, DEFAULT_CONTROL_FRAMES_PER_SECOND};
use super::extension::Inflater;
use super::frame::{Decoded, FrameHeader, OpCode};
use super::mask::{apply_mask, apply_mask_ascii};
use super::message::{Chunk, DataKind, Event, Message};
use super::observer::{Direction, FrameObserver, Tap};
use super::read_buffer::ReadBuffer;
use super::utf8::Utf8Validator;
use crate::proto::error::ProtocolError;
use intake::{BUFFERED_READ_MAX, DIRECT_READ_MIN, DIRECT_ROOM_START, Prediction, ReadTarget};
use std::time::Instant;

mod intake;

/// Size limits the receiver enforces before allocating (RFC 6455 §10.4); from
/// [`Config`](crate::proto::config::Config)'s fields of the same names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The largest frame payload accepted.
    pub(crate) max_frame_size: usize,
    /// The largest message accepted (after decompression).
    pub(crate) max_message_size: usize,
}

/// A message being received.
#[derive(Debug)]
struct Incoming {
    kind: DataKind,
    /// Bytes of the message received so far (after decompression).
    size: usize,
    /// No piece handed out yet (streaming mode).
    first: bool,
    /// The message's first frame had RSV1 set (RFC 7692).
    compressed: bool,
}

/// The frame whose payload is arriving.
#[derive(Debug)]
struct CurrentFrame {
    header: FrameHeader,
    remaining: u64,
    /// Payload bytes already unmasked, to keep the mask in phase.
    offset: usize,
}

/// Decodes and validates incoming frames. See the module docs.
#[derive(Debug)]
pub struct Receiver {
    role: Role,
    limits: Limits,
    buf: ReadBuffer,
    frame: Option<CurrentFrame>,
    incoming: Option<Incoming>,
    message: Vec<u8>,
    control: Vec<u8>,
    utf8: Utf8Validator,
    inflater: Option<Inflater>,
    streaming: bool,
    target: ReadTarget,
    /// An error found while committing bytes read straight into the message.
    error: Option<ProtocolError>,
    /// The frame hook, if one is set.
    tap: Tap,
    /// After a direct read, `message` is longer than what was received: its tail is zeroed room
    /// for the next direct read, kept so that each byte is zeroed once per message rather than
    /// once per read. This is the received length; `message` is cut to it before other use.
    direct_filled: Option<usize>,
    /// The size to read a next frame in one go (header and payload), after a data frame too big
    /// for the input buffer's initial size, not read straight into the message and at most
    /// `BUFFERED_READ_MAX`; 0 otherwise.
    whole_read_hint: usize,
    /// The header and payload sizes a vectored read is shaped for, after a large message.
    prediction: Option<Prediction>,
    /// Bytes a predicted read put at the start of `message` before their frame's header was
    /// decoded (still masked): kept there if that frame is read straight into the message,
    /// otherwise moved behind the input buffer's bytes.
    early: usize,
    /// The bound on pings and pongs per second; `None`: unbounded.
    control_rate: Option<ControlRate>,
    /// The time of the latest read, from the I/O layer (`note_time`); until one is given, pings
    /// and pongs are not counted and the decompressor counts every message as busy.
    now: Option<Instant>,
}

impl Receiver {
    /// A receiver for `role` (a server expects masked frames, a client unmasked ones).
    pub fn new(role: Role, limits: Limits, read_buffer_size: usize) -> Receiver {
        Receiver {
            role,
            limits,
            buf: ReadBuffer::new(read_buffer_size),
            frame: None,
            incoming: None,
            message: Vec::new(),
            control: Vec::new(),
            utf8: Utf8Validator::new(),
            inflater: None,
            streaming: false,
            target: ReadTarget::Buffer,
            error: None,
            tap: Tap::new(Direction::Received),
            direct_filled: None,
            whole_read_hint: 0,
            prediction: None,
            early: 0,
            control_rate: Some(ControlRate::new(DEFAULT_CONTROL_FRAMES_PER_SECOND)),
            now: None,
        }
    }

    /// Tells the time of the read that brought the bytes decoded next (the core has no clock).
    /// From the first call on, pings and pongs are counted against
    /// [`set_control_frame_rate`](Self::set_control_frame_rate)'s bound; past it
    /// [`next_event`](Self::next_event) fails with [`ProtocolError::ControlFrameFlood`] (close
    /// code 1008). With permessage-deflate it also tells a busy connection from a quiet one: a
    /// message ending 100 ms or more after the previous one gives its zlib state back at once. The
    /// I/O layer calls it once per read.
    pub fn note_time(&mut self, now: Instant) {
        self.now = Some(now);
    }

    /// Bounds the pings and pongs accepted per second, and at once (default: 1,000); `None`
    /// accepts any number. Takes effect with [`note_time`](Self::note_time).
    pub fn set_control_frame_rate(&mut self, per_second: Option<u32>) {
        self.control_rate = per_second.map(ControlRate::new);
    }

    /// Sets (or with `None` removes) the hook that sees every received frame; see
    /// [`observer`](super::observer).
    pub fn set_frame_observer(&mut self, observer: Option<FrameObserver>) {
        self.tap.set_observer(observer);
    }

    /// Which end this receiver belongs to.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub fn role(&self) -> Role {
        self.role
    }

    /// Enables RSV1 and decompression for permessage-deflate (RFC 7692).
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(crate) fn set_inflater(&mut self, inflater: Option<Inflater>) {
        self.inflater = inflater;
    }

    /// In streaming mode data arrives as [`Event::Chunk`]s as soon as it is read, instead of whole
    /// messages. The mode may change between events.
    pub fn set_streaming(&mut self, streaming: bool) {
        self.streaming = streaming;
    }

    /// Whether part of a message has been handed out as chunks and the rest has not: whole-message
    /// reading cannot resume until the message ends.
    pub fn is_mid_stream(&self) -> bool {
        self.streaming
            && self
                .incoming
                .as_ref()
                .is_some_and(|incoming| !incoming.first)
    }

    /// Whether a data message has begun arriving and not yet ended.
    pub fn is_receiving_message(&self) -> bool {
        self.incoming.is_some()
    }

    /// Decodes the next event from the bytes received so far; `Ok(None)` means more bytes are needed.
    ///
    /// An error is a peer's violation: the connection must be failed with its close code.
    pub fn next_event(&mut self) -> Result<Option<Event>, ProtocolError> {
        // On each error path the hook still sees the frame that failed the connection, as far
        // as it arrived (`tap.fail`); the success paths pay nothing for that.
        if let Some(e) = self.error.take() {
            return Err(self.tap.fail(e));
        }
        loop {
            if self.frame.is_none() {
                let decoded = FrameHeader::decode(self.buf.filled())?;
                if self.early > 0 && !self.early_bytes_begin_a_direct_payload(&decoded) {
                    // Not the frame the read was shaped for: its bytes go behind the buffer's.
                    self.buf.extend(&self.message[..self.early]);
                    self.message.clear();
                    self.early = 0;
                    continue;
                }
                let Decoded::Complete(header, used) = decoded else {
                    return Ok(None);
                };
                self.buf.consume(used);
                self.tap.start(header);
                self.start_frame(header).map_err(|e| self.tap.fail(e))?;
                self.predict_after(&header, used);
                if self.early > 0 {
                    // The payload's first bytes are already in the message.
                    let early = std::mem::take(&mut self.early);
                    self.direct_filled = Some(early);
                    self.accept_direct(0, early).map_err(|e| self.tap.fail(e))?;
                }
            }
            if let Some(event) = self.take_payload().map_err(|e| self.tap.fail(e))? {
                return Ok(Some(event));
            }
            if self.frame.is_some() {
                return Ok(None);
            }
        }
    }

    /// Validates a header against RFC 6455 §5 and the limits, and sets up for its payload.
    fn start_frame(&mut self, header: FrameHeader) -> Result<(), ProtocolError> {
        let op = header.opcode;
        // RFC 6455 §5.2: "MUST be 0 unless an extension is negotiated that defines meanings for
        // non-zero values". RFC 7692 §6: RSV1 marks the first frame of a compressed data message.
        let rsv1_allowed = self.inflater.is_some() && matches!(op, OpCode::Text | OpCode::Binary);
        if header.rsv2 || header.rsv3 || (header.rsv1 && !rsv1_allowed) {
            return Err(ProtocolError::ReservedBits);
        }
        // RFC 6455 §5.1: a server MUST fail on an unmasked frame, a client on a masked one.
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        match op {
            OpCode::Reserved(bits) => return Err(ProtocolError::ReservedOpcode(bits)),
            OpCode::Close | OpCode::Ping | OpCode::Pong => {
                // RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or
                // less and MUST NOT be fragmented."
                if header.payload_len > 125 {
                    return Err(ProtocolError::ControlFrameTooLong);
                }
                if !header.fin {
                    return Err(ProtocolError::FragmentedControlFrame);
                }
                self.control.clear();
            }
            OpCode::Continuation => match &self.incoming {
                None => return Err(ProtocolError::UnexpectedContinuation),
                Some(incoming) => {
                    self.check_sizes(&header, incoming.size, incoming.compressed)?;
                }
            },
            OpCode::Text | OpCode::Binary => {
                // RFC 6455 §5.4: fragments of one message are not interleaved with another's.
                if self.incoming.is_some() {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                self.check_sizes(&header, 0, header.rsv1)?;
                let kind = if op == OpCode::Text {
                    DataKind::Text
                } else {
                    DataKind::Binary
                };
                self.incoming = Some(Incoming {
                    kind,
                    size: 0,
                    first: true,
                    compressed: header.rsv1,
                });
                self.direct_filled = None;
                if self.early > 0 {
                    // A predicted read already put the payload's start there.
                } else if !self.message.is_empty() && self.room_suits(&header) {
                    // Room from a predicted read whose stream filled only the header's slice (a
                    // `Read` without real vectored reads, such as TLS): the payload goes there.
                    self.direct_filled = Some(0);
                } else if !self.kept_buffer_suits(&header) {
                    // Room held for a prediction that missed, or a kept buffer that does not suit
                    // this payload, is not kept.
                    self.message = Vec::new();
                    if !self.streaming && !header.rsv1 {
                        // Small messages at once; larger ones grow as bytes arrive from the room
                        // a direct read starts with, so an announced length costs no more than
                        // that until the bytes are really sent.
                        let start = header.payload_len.min(DIRECT_ROOM_START as u64) as usize;
                        self.message.reserve_exact(start);
                    }
                }
            }
        }
        if !op.is_control() {
            let len = header.payload_len;
            let whole = len as usize + super::frame::MAX_HEADER_LEN;
            // Payloads read straight into the message need no room in the buffer.
            let direct = len >= DIRECT_READ_MIN && !header.rsv1 && !self.streaming;
            self.whole_read_hint =
                if whole > self.buf.initial() && !direct && len <= BUFFERED_READ_MAX {
                    whole
                } else {
                    0
                };
        }
        self.frame = Some(CurrentFrame {
            remaining: header.payload_len,
            header,
            offset: 0,
        });
        Ok(())
    }

    /// RFC 6455 §10.4: limits are checked on the announced length, before any byte is stored.
    fn check_sizes(
        &self,
        header: &FrameHeader,
        so_far: usize,
        compressed: bool,
    ) -> Result<(), ProtocolError> {
        if header.payload_len > self.limits.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooLarge);
        }
        // Compressed payloads are checked as they inflate (`Inflater` stops at the limit).
        if !compressed && so_far as u64 + header.payload_len > self.limits.max_message_size as u64 {
            return Err(ProtocolError::MessageTooLarge);
        }
        Ok(())
    }

    /// Moves the buffered part of the current frame's payload on; returns an event when one is due.
    fn take_payload(&mut self) -> Result<Option<Event>, ProtocolError> {
        let Some(frame) = self.frame.as_ref() else {
            return Ok(None);
        };
        let available = (self.buf.filled().len() as u64).min(frame.remaining) as usize;
        if available == 0 && frame.remaining > 0 && self.direct_filled.is_some() {
            // Mid-payload after a direct read: nothing to move, and the zeroed room is kept.
            return Ok(None);
        }
        self.settle_direct();
        let Some(frame) = self.frame.as_mut() else {
            return Ok(None);
        };
        let bytes = &mut self.buf.filled_mut()[..available];
        // Whether the validator may need these bytes (see `check_utf8` below): only then is it
        // worth noting whether they are all ASCII while unmasking.
        let ends_message = frame.header.fin && frame.remaining == available as u64;
        let checked_whole_below = ends_message && !self.streaming;
        let may_check_utf8 = self
            .incoming
            .as_ref()
            .is_some_and(|i| i.kind == DataKind::Text && !i.compressed && !checked_whole_below);
        let ascii = unmask(bytes, frame.header.mask, frame.offset, may_check_utf8);
        frame.offset += available;
        frame.remaining -= available as u64;
        let frame_done = frame.remaining == 0;
        let header = frame.header;
        self.tap.payload(bytes);
        if frame_done {
            self.tap.finish();
        }

        if header.opcode.is_control() {
            self.control.extend_from_slice(bytes);
            self.buf.consume(available);
            if !frame_done {
                return Ok(None);
            }
            self.frame = None;
            return self.control_event(header.opcode).map(Some);
        }

        let Some(incoming) = self.incoming.as_mut() else {
            return Ok(None);
        };
        let message_done = frame_done && header.fin;
        // In streaming mode the buffer holds only what has not been handed out yet: normally
        // nothing, or the start of a message assembled before streaming was switched on.
        let start = self.message.len();
        match (incoming.compressed, self.inflater.as_mut()) {
            (true, Some(inflater)) => {
                let budget = self.limits.max_message_size - incoming.size;
                inflater.inflate(bytes, message_done, &mut self.message, budget, self.now)?;
            }
            _ => self.message.extend_from_slice(bytes),
        }
        self.buf.consume(available);
        let new = &self.message[start..];
        incoming.size += new.len();
        if incoming.size > self.limits.max_message_size {
            return Err(ProtocolError::MessageTooLarge);
        }
        // A whole message is checked by `String::from_utf8` below, in this same call: the
        // validator is needed only for pieces that come before the end, or in streaming mode.
        let whole_message_checked_below = message_done && !self.streaming;
        let check_utf8 = incoming.kind == DataKind::Text && !whole_message_checked_below;
        // `ascii` describes `new` only when it is the very bytes unmasked (not inflated).
        if check_utf8 && !(ascii && !incoming.compressed && self.utf8.at_char_boundary()) {
            self.utf8
                .feed(new)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        if frame_done {
            self.frame = None;
        }
        if message_done && incoming.kind == DataKind::Text {
            // Also resets the validator when the last piece was left to `String::from_utf8`.
            let ended_whole = self.utf8.finish();
            if check_utf8 {
                ended_whole.map_err(|_| ProtocolError::InvalidUtf8)?;
            }
        }
        if self.streaming {
            if self.message.is_empty() && !message_done && !(incoming.first && frame_done) {
                return Ok(None);
            }
            let chunk = Chunk {
                kind: incoming.kind,
                data: std::mem::take(&mut self.message),
                first: std::mem::replace(&mut incoming.first, false),
                last: message_done,
            };
            if message_done {
                self.incoming = None;
            }
            return Ok(Some(Event::Chunk(chunk)));
        }
        if !message_done {
            return Ok(None);
        }
        let kind = incoming.kind;
        self.incoming = None;
        let data = std::mem::take(&mut self.message);
        let message = match kind {
            // Validated piece by piece above; this pass makes it a `String`.
            DataKind::Text => {
                Message::Text(String::from_utf8(data).map_err(|_| ProtocolError::InvalidUtf8)?)
            }
            DataKind::Binary => Message::Binary(data),
        };
        Ok(Some(Event::Message(message)))
    }

    fn control_event(&mut self, opcode: OpCode) -> Result<Event, ProtocolError> {
        if let (OpCode::Ping | OpCode::Pong, Some(rate), Some(now)) =
            (opcode, self.control_rate.as_mut(), self.now)
            && !rate.admit(now)
        {
            return Err(ProtocolError::ControlFrameFlood);
        }
        let payload = std::mem::take(&mut self.control);
        let message = match opcode {
            OpCode::Ping => Message::Ping(payload),
            OpCode::Pong => Message::Pong(payload),
            _ => Message::Close(CloseFrame::parse(&payload)?),
        };
        Ok(Event::Message(message))
    }
}

/// Unmasks `bytes` if a key is given. Returns whether they are known to be all ASCII: looked at
/// only for text, and only when the masking pass sees every byte anyway (`false`: not known).
fn unmask(bytes: &mut [u8], mask: Option<[u8; 4]>, offset: usize, text: bool) -> bool {
    match mask {
        Some(key) if text => apply_mask_ascii(bytes, key, offset),
        Some(key) => {
            apply_mask(bytes, key, offset);
            false
        }
        None => false,
    }
}

#[cfg(test)]
mod room_tests;
