//! The outbound half of a connection, and the one place where the connection's state lives.
//!
//! The state moves OPEN → CLOSING → CLOSED here only (CONNECTING is the handshake, before a
//! connection exists). The receiver reports what arrived; [`Sender::on_event`] and
//! [`Sender::on_violation`] turn that into replies (pongs, the close echo, the failing close
//! frame) and state changes. Keeping both in the sender lets a split connection's writer, which
//! owns the sender, apply them for the reader on another thread.

use super::Role;
use super::close::{CloseCode, CloseFrame};
use super::extension::Deflater;
use super::frame::{Decoded, FrameHeader, OpCode, encode_frame};
use super::message::{DataKind, Event, Message};
use super::observer::{Direction, FrameObserver, Tap};
use crate::proto::error::{Error, ProtocolError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Where a connection is in its life (RFC 6455 §4–§7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Open: messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's (RFC 6455 §7.1.2).
    Closing,
    /// Both close frames have been exchanged, or the connection was failed.
    Closed,
}

/// Data payloads at least this long may be written from the caller's buffer after a header
/// queued by [`Sender::send_header`], instead of being copied into the output.
pub(crate) const DIRECT_WRITE_MIN: usize = 16 * 1024;

/// How many pongs in a row are sent one for one before newer ones replace the last
/// (see `Sender::answer_ping`).
pub(crate) const PONGS_KEPT: usize = 32;

/// Encodes outgoing frames and owns the connection state. See the module docs.
#[derive(Debug)]
pub struct Sender {
    role: Role,
    state: State,
    out: Vec<u8>,
    /// A streamed message is being sent as fragments: its kind, and whether it is compressed.
    streaming: Option<(DataKind, bool)>,
    deflater: Option<Deflater>,
    /// The peer's close frame, once received.
    peer_close: Option<Option<CloseFrame>>,
    /// The close frame we sent, once sent.
    our_close: Option<Option<CloseFrame>>,
    /// The frame hook, if one is set.
    tap: Tap,
    /// Where the pong answering the latest ping starts in `out`, while it is the last frame
    /// queued and none of its bytes has been shown or taken: a newer ping replaces it.
    auto_pong: Option<usize>,
    /// How many automatic pongs in a row sit unseen at the tail of the output.
    pongs_in_a_row: usize,
    /// How many of those are sent one for one ([`PONGS_KEPT`]; tests of the replacement set 1).
    pongs_kept: usize,
    /// Whether `data_to_send` has shown the output since `auto_pong` was queued: a writer may be
    /// writing those bytes and `advance` later, so they must stay as they were.
    shown: AtomicBool,
    /// When the messages queued next are sent, from the I/O layer (`note_time`): the
    /// compressor tells a busy connection from a quiet one by it.
    now: Option<Instant>,
}

impl Sender {
    /// A sender for `role`: a client masks every frame (RFC 6455 §5.3), a server never does.
    pub fn new(role: Role) -> Sender {
        Sender {
            role,
            state: State::Open,
            out: Vec::new(),
            streaming: None,
            deflater: None,
            peer_close: None,
            our_close: None,
            tap: Tap::new(Direction::Sent),
            auto_pong: None,
            pongs_in_a_row: 0,
            pongs_kept: PONGS_KEPT,
            shown: AtomicBool::new(false),
            now: None,
        }
    }

    /// Sets (or with `None` removes) the hook that sees every frame queued for sending; see
    /// [`observer`](super::observer).
    pub fn set_frame_observer(&mut self, observer: Option<FrameObserver>) {
        self.tap.set_observer(observer);
    }

    /// Enables compression of outgoing data messages (permessage-deflate, RFC 7692).
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(crate) fn set_deflater(&mut self, deflater: Option<Deflater>) {
        self.deflater = deflater;
    }

    /// Tells the time the messages queued next are sent at (the core has no clock). With
    /// permessage-deflate a message sent 100 ms or more after the previous one gives its zlib
    /// state back at once, so a connection that sends now and then holds none between messages;
    /// until a time is given every message counts as busy (the state is kept until
    /// [`shrink`](Self::shrink)). Without compression the time is not used.
    pub fn note_time(&mut self, now: Instant) {
        self.now = Some(now);
    }

    /// [`note_time`](Self::note_time) with the time `clock` tells, if messages are compressed:
    /// only then is the time used, so a connection without compression pays no clock read.
    pub(crate) fn note_time_if_compressing(&mut self, clock: impl FnOnce() -> Instant) {
        if self.deflater.is_some() {
            self.note_time(clock());
        }
    }

    /// Releases what a quiet connection should not hold: the compressor's zlib state, keeping
    /// only its window of recent plaintext to prime a fresh state with (permessage-deflate; see
    /// `deflate::resumable`). A fragmented message in progress keeps it.
    pub fn shrink(&mut self) {
        if let Some(deflater) = self.deflater.as_mut() {
            deflater.park();
        }
    }

    /// Whether it holds more than [`shrink`](Self::shrink) would leave.
    pub fn holds_more_than_idle(&self) -> bool {
        self.deflater.as_ref().is_some_and(Deflater::is_live)
    }

    /// The connection's state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the peer's close frame has arrived: nothing more will be read.
    pub fn close_received(&self) -> bool {
        self.peer_close.is_some()
    }

    /// Bytes waiting to be written to the peer. They stay as shown until taken with
    /// [`advance`](Self::advance): only output queued after this call may still change (a pong
    /// replaced by a newer one, see [`on_event`](Self::on_event)).
    pub fn data_to_send(&self) -> &[u8] {
        if self.auto_pong.is_some() {
            self.shown.store(true, Ordering::Relaxed);
        }
        &self.out
    }

    /// Whether bytes wait to be written. Unlike [`data_to_send`](Self::data_to_send) this shows
    /// nothing, so a queued pong can still be replaced by a newer one.
    pub fn has_data_to_send(&self) -> bool {
        !self.out.is_empty()
    }

    /// Drops the first `n` bytes of [`data_to_send`](Self::data_to_send), once written.
    pub fn advance(&mut self, n: usize) {
        self.auto_pong = None;
        if n >= self.out.len() {
            self.out.clear();
            if self.out.capacity() > 64 * 1024 {
                self.out = Vec::new();
            }
        } else {
            self.out.drain(..n);
        }
    }

    /// Takes all bytes waiting to be written.
    pub fn take_data_to_send(&mut self) -> Vec<u8> {
        self.auto_pong = None;
        std::mem::take(&mut self.out)
    }

    /// Queues a message (or control frame) for sending.
    ///
    /// Errors: [`Error::AlreadyClosed`] once a close frame was sent; [`Error::InvalidInput`] for a
    /// control payload over 125 bytes, a close code that may not be sent, a reason over 123 bytes,
    /// or a data message while a streamed one is unfinished.
    pub fn send(&mut self, message: &Message) -> Result<(), Error> {
        match message {
            Message::Text(text) => self.send_data(DataKind::Text, text.as_bytes()),
            Message::Binary(data) => self.send_data(DataKind::Binary, data),
            Message::Ping(data) => self.send_control(OpCode::Ping, data),
            Message::Pong(data) => self.send_control(OpCode::Pong, data),
            Message::Close(frame) => self.close(frame.clone()),
        }
    }

    /// Queues a whole data frame encoded elsewhere (a broadcast encodes its frame once for every
    /// member). Only for a server, whose frames are not masked.
    ///
    /// Errors as for [`send`](Self::send); [`Error::InvalidInput`] for a client.
    pub fn send_encoded(&mut self, frame: &[u8]) -> Result<(), Error> {
        self.check_open()?;
        if self.role == Role::Client {
            return Err(Error::InvalidInput("a client masks each frame itself"));
        }
        if self.streaming.is_some() {
            return Err(Error::InvalidInput("a streamed message is unfinished"));
        }
        // The frame hook and the trace log see a broadcast like any frame this sender encodes;
        // the header is decoded again only when someone listens.
        if self.tap.active()
            && let Ok(Decoded::Complete(header, header_len)) = FrameHeader::decode(frame)
        {
            self.tap.whole(&header, &frame[header_len..]);
        }
        self.auto_pong = None;
        self.out.extend_from_slice(frame);
        Ok(())
    }

    /// Queues only the frame header of a large data message whose payload goes on the wire
    /// unchanged (a server does not mask, and no compression is negotiated), and returns `true`:
    /// the caller then writes [`data_to_send`](Self::data_to_send) followed by the payload, e.g.
    /// with one vectored write, and hands whatever part of the payload it could not write to
    /// [`queue_unwritten`](Self::queue_unwritten) so the frame is finished by later writes.
    ///
    /// Returns `false` and queues nothing when the frame must be encoded whole: a control
    /// message, a payload under [`DIRECT_WRITE_MIN`], a client (which masks), or compression.
    /// Errors as for [`send`](Self::send).
    pub fn send_header(&mut self, message: &Message) -> Result<bool, Error> {
        let kind = match message {
            Message::Text(_) => DataKind::Text,
            Message::Binary(_) => DataKind::Binary,
            _ => return Ok(false),
        };
        let len = message.len();
        if self.role == Role::Client || self.deflater.is_some() || len < DIRECT_WRITE_MIN {
            return Ok(false);
        }
        self.check_open()?;
        if self.streaming.is_some() {
            return Err(Error::InvalidInput("a streamed message is unfinished"));
        }
        let header = FrameHeader::new(kind.opcode(), len as u64);
        self.tap.whole(&header, message.as_bytes());
        self.auto_pong = None;
        header.encode(&mut self.out);
        Ok(true)
    }

    /// Queues the part of a payload the caller could not write after
    /// [`send_header`](Self::send_header); it goes out with the next bytes written.
    pub fn queue_unwritten(&mut self, rest: &[u8]) {
        self.auto_pong = None;
        self.out.extend_from_slice(rest);
    }

    /// Queues one fragment of a message sent piece by piece (RFC 6455 §5.4).
    ///
    /// The first call starts the message with `kind`; `fin` ends it.
    pub fn send_fragment(&mut self, kind: DataKind, data: &[u8], fin: bool) -> Result<(), Error> {
        self.check_open()?;
        let (opcode, compressed) = match self.streaming {
            Some((current, _)) if current != kind => {
                return Err(Error::InvalidInput(
                    "fragment kind differs from its message's",
                ));
            }
            Some((_, compressed)) => (OpCode::Continuation, compressed),
            // The first fragment decides for the whole message (RFC 7692 §6.1: RSV1 on the
            // first frame only).
            None => (
                kind.opcode(),
                self.deflater
                    .as_ref()
                    .is_some_and(|d| d.wants(data.len(), fin)),
            ),
        };
        self.streaming = if fin { None } else { Some((kind, compressed)) };
        match self.deflater.as_mut() {
            Some(deflater) if compressed => {
                let Ok(payload) = deflater.compress_part(data, fin, self.now) else {
                    return Err(self.on_compress_error());
                };
                self.push_frame(opcode, fin, opcode != OpCode::Continuation, &payload);
            }
            _ => self.push_frame(opcode, fin, false, data),
        }
        Ok(())
    }

    /// Queues a close frame and moves to CLOSING (or CLOSED if the peer's close already arrived).
    ///
    /// `None` sends an empty close frame (the peer will report 1005).
    pub fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), Error> {
        // A frame that may never be sent is the caller's mistake whatever the state.
        if let Some(frame) = &frame {
            frame.check_sendable()?;
        }
        if self.our_close.is_some() || self.state == State::Closed {
            return Err(Error::AlreadyClosed);
        }
        let payload = frame.as_ref().map_or_else(Vec::new, CloseFrame::to_payload);
        self.push_frame(OpCode::Close, true, false, &payload);
        self.our_close = Some(frame);
        self.state = if self.peer_close.is_some() {
            State::Closed
        } else {
            State::Closing
        };
        Ok(())
    }

    /// Reacts to an event the receiver produced: answers a ping, echoes a close.
    ///
    /// A ping is answered while the peer's close has not arrived, also after our own close
    /// (RFC 6455 §5.5.2). Pings that come faster than their pongs leave get one pong, for the
    /// most recent (§5.5.3): a pong queued here that is still the last frame, not yet shown by
    /// [`data_to_send`](Self::data_to_send) nor taken, is replaced by the newer one. (The frame
    /// hook has seen the replaced pong queued.)
    pub fn on_event(&mut self, event: &Event) {
        match event {
            // RFC 6455 §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame
            // in response, unless it already received a Close frame."
            Event::Message(Message::Ping(data))
                if self.peer_close.is_none() && self.state != State::Closed =>
            {
                self.answer_ping(data);
            }
            Event::Message(Message::Close(frame)) => {
                self.peer_close = Some(frame.clone());
                if self.our_close.is_none() {
                    // RFC 6455 §5.5.1: reply with a close frame, "typically echoing the status code".
                    let echo = frame.as_ref().map(|f| CloseFrame::new(f.code, ""));
                    let payload = echo
                        .as_ref()
                        .map(CloseFrame::to_payload)
                        .unwrap_or_default();
                    self.push_frame(OpCode::Close, true, false, &payload);
                    self.our_close = Some(echo);
                }
                self.state = State::Closed;
            }
            _ => {}
        }
    }

    /// Fails the connection after a peer's violation (RFC 6455 §7.1.7): queues a close frame with
    /// the violation's code, unless one was already sent, and moves to CLOSED.
    pub fn on_violation(&mut self, error: ProtocolError) {
        if self.our_close.is_none() && self.state != State::Closed {
            let frame = CloseFrame::new(error.close_code(), "");
            self.push_frame(OpCode::Close, true, false, &frame.to_payload());
            self.our_close = Some(Some(frame));
        }
        self.state = State::Closed;
    }

    /// Fails the connection after our compressor failed: its output is a truncated stream that
    /// must never go out as a frame. Queues a 1011 close (RFC 6455 §7.4.1, "an unexpected
    /// condition") unless one was sent, moves to CLOSED, and returns the error for the caller.
    fn on_compress_error(&mut self) -> Error {
        if self.our_close.is_none() && self.state != State::Closed {
            let frame = CloseFrame::new(CloseCode::InternalError, "");
            self.push_frame(OpCode::Close, true, false, &frame.to_payload());
            self.our_close = Some(Some(frame));
        }
        self.state = State::Closed;
        self.streaming = None;
        Error::CompressionFailed
    }

    /// Ends the connection without a close frame (the transport died).
    pub fn on_transport_closed(&mut self) {
        self.state = State::Closed;
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.state == State::Open {
            Ok(())
        } else {
            Err(Error::AlreadyClosed)
        }
    }

    fn send_data(&mut self, kind: DataKind, data: &[u8]) -> Result<(), Error> {
        self.check_open()?;
        if self.streaming.is_some() {
            return Err(Error::InvalidInput("a streamed message is unfinished"));
        }
        if let Some(deflater) = self.deflater.as_mut() {
            match deflater.compress(data, self.now) {
                Ok(Some(compressed)) => {
                    self.push_frame(kind.opcode(), true, true, &compressed);
                    return Ok(());
                }
                Ok(None) => {}
                Err(_) => return Err(self.on_compress_error()),
            }
        }
        self.push_frame(kind.opcode(), true, false, data);
        Ok(())
    }

    fn send_control(&mut self, opcode: OpCode, data: &[u8]) -> Result<(), Error> {
        self.check_open()?;
        if data.len() > 125 {
            return Err(Error::InvalidInput(
                "control frame payload over 125 bytes (RFC 6455 §5.5)",
            ));
        }
        self.push_frame(opcode, true, false, data);
        Ok(())
    }

    /// Queues the pong for a ping. Pongs for pings that come faster than they leave are each
    /// answered up to [`PONGS_KEPT`] in a row (peers such as the Autobahn suite expect every ping
    /// of a short burst answered); past that, a newer pong replaces the last one while it is still
    /// the unseen tail of the output (RFC 6455 §5.5.3: "an endpoint MAY elect to send a Pong frame
    /// for only the most recently processed Ping frame"), so a flood cannot grow the output.
    fn answer_ping(&mut self, data: &[u8]) {
        let shown = std::mem::replace(self.shown.get_mut(), false);
        let continuing = self.auto_pong.is_some() && !shown;
        if !continuing {
            self.pongs_in_a_row = 0;
        }
        let start = match self.auto_pong {
            Some(start) if continuing && self.pongs_in_a_row >= self.pongs_kept => {
                self.out.truncate(start);
                start
            }
            _ => {
                self.pongs_in_a_row += 1;
                self.out.len()
            }
        };
        self.push_frame(OpCode::Pong, true, false, data);
        self.auto_pong = Some(start);
    }

    /// Sends only `n` pongs in a row one for one (tests of the replacement past the burst).
    #[cfg(test)]
    pub(crate) fn set_pongs_kept(&mut self, n: usize) {
        self.pongs_kept = n;
    }

    fn push_frame(&mut self, opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8]) {
        self.auto_pong = None;
        let mut header = FrameHeader::new(opcode, payload.len() as u64);
        header.fin = fin;
        header.rsv1 = rsv1;
        if self.role == Role::Client {
            // RFC 6455 §5.3: a fresh key per frame, from a strong source of entropy (§10.3).
            header.mask = Some(rand::random());
        }
        self.tap.whole(&header, payload);
        encode_frame(&header, payload, &mut self.out);
    }
}

#[cfg(test)]
#[path = "sender_pong_tests.rs"]
mod pong_tests;
