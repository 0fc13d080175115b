//! Where received bytes land: the input buffer, or the message itself for a large payload
//! (one copy, socket to message, instead of two), shaped by what the last message looked like;
//! and giving memory back when the connection goes quiet.

use super::{Receiver, unmask};
use crate::proto::error::ProtocolError;
use crate::proto::extension::Inflater;
use crate::proto::frame::{Decoded, FrameHeader, OpCode};
use crate::proto::message::DataKind;

/// Where the last `read_buf` pointed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadTarget {
    Buffer,
    /// Straight into the message, after `len` bytes: a large payload skips the input buffer.
    Message {
        len: usize,
    },
    /// A predicted frame: its header's `head` bytes into the buffer, then on into the message
    /// (see `Receiver::read_bufs`).
    Predicted {
        head: usize,
    },
}

/// After a message that came in one frame read straight into the message, the next one is
/// expected to be like it: its header length and payload length.
#[derive(Debug, Clone, Copy)]
pub(super) struct Prediction {
    head: usize,
    payload: usize,
}

/// From this size on, a payload is read straight into the message (zeroed room, then unmasked
/// in place): one pass less over the bytes than through the input buffer, worth the extra read
/// for the header.
///
/// Below it, while data frames too big for the input buffer keep coming, the buffer grows to hold
/// a whole one, so each arrives in one read rather than in buffer-sized pieces; it shrinks back to
/// its initial size when a smaller frame comes. So the initial size can stay small (an idle
/// connection holds only that) at no cost in reads for mid-sized messages.
pub(super) const DIRECT_READ_MIN: u64 = 16 * 1024;

/// The most the input buffer grows to take in the rest of a frame in one read, for payloads that
/// cannot go straight into the message (compressed ones, or in streaming mode): without it a
/// 64 KiB compressed frame would take 32 reads of the initial 2 KiB.
pub(super) const BUFFERED_READ_MAX: u64 = 64 * 1024;

/// The most read straight into the message at once.
pub(super) const DIRECT_READ_MAX: u64 = 1 << 20;

/// The room a payload read straight into the message gets before any of it arrived; from there
/// the message at most doubles per read, so room follows the bytes that came, not the length a
/// header announces (a 14-byte header announcing 16 MiB costs this, not 1 MiB). Small, because a
/// peer can hold it per connection for free; a large message pays a few extra reads the first time
/// only, since later ones are predicted (`read_bufs`).
pub(super) const DIRECT_ROOM_START: usize = 4 * 1024;

/// The largest buffer of a sent message kept for the next message to be received into, when no
/// read is predicted: the size from which payloads are read straight into the message instead.
/// It is held while the connection waits, so it is bounded like the input buffer's growth.
pub(super) const KEPT_BUFFER_MAX: usize = DIRECT_READ_MIN as usize;

/// The largest payload a predicted read allocates room for: the room is held while the
/// connection waits for its next message, so it is bounded like the input buffer's growth.
/// Larger predictions (up to `DIRECT_READ_MAX`) are read into room only when the application
/// handed one over by sending a message (`recycle`): memory it had in use anyway.
pub(super) const PREDICTED_ROOM_MAX: usize = BUFFERED_READ_MAX as usize;

impl Receiver {
    /// Hands over bytes received from the peer.
    pub fn receive_data(&mut self, data: &[u8]) {
        self.buf.extend(data);
    }

    /// Where the I/O layer should read next; follow with [`commit`](Self::commit).
    ///
    /// Usually the input buffer; while a large payload is arriving, the end of the message itself,
    /// so the bytes are copied once (socket to message) rather than twice.
    pub fn read_buf(&mut self) -> &mut [u8] {
        if let Some(remaining) = self.direct_remaining() {
            let len = self.direct_filled.unwrap_or(self.message.len());
            // Room follows the bytes that arrived, not the announced length (RFC 6455 §10.4): a
            // header alone gets `DIRECT_ROOM_START`, then the message at most doubles per read,
            // unless room is already there (a recycled buffer).
            let room_end = self.message.len().max(DIRECT_ROOM_START).max(2 * len);
            let end = len + remaining.min(DIRECT_READ_MAX as usize).min(room_end - len);
            if self.message.len() < end {
                if self.message.capacity() < end {
                    // Exactly: `Vec`'s own doubling would count the zeroed room as arrived.
                    let capacity = room_end.min(len + remaining);
                    self.message.reserve_exact(capacity - self.message.len());
                }
                self.message.resize(end, 0);
            }
            self.target = ReadTarget::Message { len };
            return &mut self.message[len..end];
        }
        self.settle_direct();
        self.target = ReadTarget::Buffer;
        match &self.frame {
            // The rest of a frame that will not fit: room for all of it (up to a bound), so it
            // comes in one read rather than in buffer-sized pieces (a mid-sized frame, a
            // pipelined one, or a large one that is not read straight into the message).
            Some(frame) => {
                let rest = frame.remaining.min(BUFFERED_READ_MAX) as usize;
                return self.buf.spare_at_least(rest);
            }
            None if self.buf.is_empty() && self.whole_read_hint > 0 => {
                return self.buf.spare_at_least(self.whole_read_hint);
            }
            None if self.buf.is_empty() => self.buf.shrink_to_initial_if_idle(),
            None => {}
        }
        self.buf.spare_mut()
    }

    /// Like [`read_buf`](Self::read_buf), but may offer a second slice to read on into (a
    /// vectored read); follow with [`commit`](Self::commit) of the total.
    ///
    /// After a large message that came in one frame, the next is expected to be like it: the
    /// first slice is just its header's length and the second room for its payload, so header and
    /// payload arrive in one read, the payload already in the message (large echoes: one read
    /// per message, as for a plain TCP echo, instead of two). When the guess is wrong, the bytes
    /// are moved behind the input buffer's and decoded as usual.
    pub fn read_bufs(&mut self) -> (&mut [u8], &mut [u8]) {
        let predicted = match self.prediction {
            Some(prediction)
                if self.frame.is_none()
                    && self.incoming.is_none()
                    && self.buf.is_empty()
                    && self.early == 0
                    && !self.streaming =>
            {
                prediction
            }
            _ => return (self.read_buf(), &mut []),
        };
        if self.message.len() < predicted.payload && predicted.payload > PREDICTED_ROOM_MAX {
            // Room this large only when recycled: the header comes alone, the payload after it.
            return (self.read_buf(), &mut []);
        }
        if self.message.len() < predicted.payload {
            self.message.resize(predicted.payload, 0);
        }
        self.target = ReadTarget::Predicted {
            head: predicted.head,
        };
        let head = &mut self.buf.spare_mut()[..predicted.head];
        (head, &mut self.message[..predicted.payload])
    }

    /// Marks `n` bytes of the last [`read_buf`](Self::read_buf) or
    /// [`read_bufs`](Self::read_bufs) as filled by the peer.
    pub fn commit(&mut self, n: usize) {
        match self.target {
            ReadTarget::Buffer => self.buf.commit(n),
            ReadTarget::Predicted { head } => {
                self.target = ReadTarget::Buffer;
                self.buf.commit(n.min(head));
                // As for a direct read: never past the room offered.
                self.early = (n - n.min(head)).min(self.message.len());
            }
            ReadTarget::Message { len } => {
                // A `Read` that reports more than it was given must not make us slice past the end.
                let n = n.min(self.message.len() - len);
                self.direct_filled = Some(len + n);
                self.target = ReadTarget::Buffer;
                if let Err(e) = self.accept_direct(len, n) {
                    self.error = Some(e);
                }
            }
        }
    }

    /// Offers the buffer of a message just sent for the next message to be received into, so an
    /// echo or a relay reuses one allocation instead of making (and, for large messages, zeroing)
    /// a new one per message. While a read is predicted, a buffer that fits the predicted payload
    /// becomes its room; otherwise a small one is kept, emptied, for the next message that comes
    /// through the input buffer (see `start_frame`). Anything else is dropped.
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        if !self.would_recycle(&buffer) {
            return;
        }
        if self.prediction.is_none() {
            buffer.clear();
        }
        self.message = buffer;
    }

    /// Whether [`recycle`](Self::recycle) would keep `buffer` now.
    pub fn would_recycle(&self, buffer: &Vec<u8>) -> bool {
        if self.incoming.is_some() || self.early > 0 || self.message.capacity() > 0 {
            return false;
        }
        match self.prediction {
            // Its length counts as initialized room; a buffer much larger than needed would hold
            // memory the bound on predictions is meant to cap.
            Some(prediction) => {
                buffer.len() >= prediction.payload && buffer.capacity() <= 2 * prediction.payload
            }
            None => buffer.capacity() <= KEPT_BUFFER_MAX,
        }
    }

    /// Cuts the zeroed room left by direct reads, so `message` holds exactly what was received.
    pub(super) fn settle_direct(&mut self) {
        if let Some(filled) = self.direct_filled.take() {
            self.message.truncate(filled);
        }
    }

    /// Whether received bytes are waiting to be decoded.
    pub fn has_buffered_data(&self) -> bool {
        !self.buf.is_empty() || self.early > 0
    }

    /// Releases what an idle connection should not hold, while no message is in progress: a grown
    /// input buffer, room for a predicted payload, a kept buffer larger than the input
    /// buffer's initial size (see [`holds_more_than_idle`](Self::holds_more_than_idle)), and
    /// the decompressor's zlib state (permessage-deflate keeps only its window of history).
    pub fn shrink(&mut self) {
        if self.buf.is_empty() {
            // Idle: the next frame is not expected to be like the last large one, so the next
            // read starts in the initial buffer (the rest of a large frame still comes at once).
            self.whole_read_hint = 0;
        }
        self.buf.shrink_if_idle();
        // permessage-deflate: the zlib state goes back to a pool, the window of history stays.
        if let Some(inflater) = self.inflater.as_mut() {
            inflater.park();
        }
        if self.incoming.is_none() && self.early == 0 {
            // Nor is it expected to be like the last large message: no room held for it.
            self.prediction = None;
            if self.message.capacity() > self.buf.initial() {
                self.message = Vec::new();
            } else {
                self.message.clear();
            }
        }
    }

    /// Whether it holds more than [`shrink`](Self::shrink) would leave: the memory kept so that
    /// large messages following each other are read without allocating, or a live zlib state.
    pub fn holds_more_than_idle(&self) -> bool {
        self.buf.capacity() > self.buf.initial()
            || self.message.capacity() > self.buf.initial()
            || self.inflater.as_ref().is_some_and(Inflater::is_live)
    }

    /// Bytes of buffer memory held, for measuring.
    pub fn buffered_capacity(&self) -> usize {
        self.buf.capacity() + self.message.capacity() + self.control.capacity()
    }

    /// Whether the bytes of a predicted read that went past the header's slice belong to the
    /// payload of a frame that is read straight into the message: the input buffer holds exactly
    /// one header, of a new data message that large, and the payload is at least that long.
    pub(super) fn early_bytes_begin_a_direct_payload(
        &self,
        decoded: &Decoded<FrameHeader>,
    ) -> bool {
        let Decoded::Complete(header, used) = *decoded else {
            return false;
        };
        used == self.buf.filled().len()
            && matches!(header.opcode, OpCode::Text | OpCode::Binary)
            && self.incoming.is_none()
            && self.room_suits(&header)
            && header.payload_len >= self.early as u64
    }

    /// Whether the room held in `message` suits a new data message's payload: one read straight
    /// into the message, and not so much smaller that the room would waste memory in it.
    pub(super) fn room_suits(&self, header: &FrameHeader) -> bool {
        !header.rsv1
            && !self.streaming
            && header.payload_len >= DIRECT_READ_MIN
            && self.message.len() as u64 <= 2 * header.payload_len
    }

    /// Whether the empty buffer kept by `recycle` can take a new data message read through the
    /// input buffer: the whole payload fits, and it is not so much larger that the message handed
    /// to the application would waste memory (at most twice its length).
    pub(super) fn kept_buffer_suits(&self, header: &FrameHeader) -> bool {
        let (len, capacity) = (header.payload_len, self.message.capacity() as u64);
        self.message.is_empty()
            && !header.rsv1
            && !self.streaming
            && len <= capacity
            && capacity <= 2 * len
    }

    /// Shapes the next read after a data frame's header (see `read_bufs`); control frames
    /// between messages leave the guess as it was.
    pub(super) fn predict_after(&mut self, header: &FrameHeader, header_len: usize) {
        if header.opcode.is_control() {
            return;
        }
        let one_frame_message = header.fin && header.opcode != OpCode::Continuation;
        let direct = header.payload_len >= DIRECT_READ_MIN && !header.rsv1 && !self.streaming;
        self.prediction = (one_frame_message && direct && header.payload_len <= DIRECT_READ_MAX)
            .then_some(Prediction {
                head: header_len,
                payload: header.payload_len as usize,
            });
    }

    /// The payload bytes still to come, if this is a good moment to read them straight into the
    /// message.
    pub(super) fn direct_remaining(&self) -> Option<usize> {
        let frame = self.frame.as_ref()?;
        let incoming = self.incoming.as_ref()?;
        let direct = !self.streaming
            && !incoming.compressed
            && !frame.header.opcode.is_control()
            && self.buf.is_empty()
            && frame.remaining >= DIRECT_READ_MIN;
        // At most `max_frame_size` (checked in `start_frame`), so it fits.
        direct.then_some(frame.remaining as usize)
    }

    /// Processes `n` payload bytes that were read straight into `self.message[at..]`.
    pub(super) fn accept_direct(&mut self, at: usize, n: usize) -> Result<(), ProtocolError> {
        let (Some(frame), Some(incoming)) = (self.frame.as_mut(), self.incoming.as_mut()) else {
            return Ok(());
        };
        let bytes = &mut self.message[at..at + n];
        // Fail fast: an impossible byte ends the connection in the read that brings it, even
        // though `String::from_utf8` checks the whole message again at its end (safe Rust has no
        // unchecked conversion). ASCII seen while unmasking needs no second look here, and the
        // piece that ends the message none at all: `String::from_utf8` follows in this read.
        let ends_message = frame.header.fin && frame.remaining == n as u64;
        let check_utf8 = incoming.kind == DataKind::Text && !ends_message;
        let ascii = unmask(bytes, frame.header.mask, frame.offset, check_utf8);
        self.tap.payload(bytes);
        frame.offset += n;
        frame.remaining -= n as u64;
        incoming.size += n;
        if check_utf8 && !(ascii && self.utf8.at_char_boundary()) {
            self.utf8
                .feed(bytes)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(())
    }
}
