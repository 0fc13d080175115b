//! The permessage-deflate codec (RFC 7692 §7.2): raw DEFLATE via flate2's zlib-rs backend.
//!
//! Sending: compress with a sync flush and strip the trailing `00 00 ff ff` (§7.2.1).
//! Receiving: append it back and inflate (§7.2.2), in bounded steps, so a small message that
//! would inflate to gigabytes fails with 1009 after allocating no more than the limit.

use super::negotiation::MIN_COMPRESS_WINDOW_BITS;
use crate::proto::error::ProtocolError;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The empty stored block a sync flush ends with; removed on send, restored on receive.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// How much output space one inflate step may add (the message grows by at most this per step).
const INFLATE_STEP: usize = 32 * 1024;

/// Decompresses incoming messages.
#[derive(Debug)]
pub(crate) struct Inflater {
    inner: Decompress,
    /// The peer resets its context after each message (its `*_no_context_takeover`), so we may too.
    reset_after_message: bool,
    /// The peer ended a stream with a BFINAL block (§7.2.3.4); the rest of the message is ignored
    /// and the next message starts a new stream.
    stream_ended: bool,
    /// Compressed bytes of the current message have arrived.
    message_started: bool,
    /// The context was reset at the end of the last message (see [`Inflater::take_reset`]).
    was_reset: bool,
}

impl Inflater {
    /// An inflater for a peer compressing with `window_bits` (8–15). Inflating with a larger window
    /// than the peer's is always correct, so 8 becomes zlib's smallest, 9.
    pub(crate) fn new(window_bits: u8, reset_after_message: bool) -> Inflater {
        Inflater {
            inner: Decompress::new_with_window_bits(false, window_bits.clamp(9, 15)),
            reset_after_message,
            stream_ended: false,
            message_started: false,
            was_reset: false,
        }
    }

    /// Whether the context was reset since the last call: the next message refers to nothing
    /// before it.
    pub(crate) fn take_reset(&mut self) -> bool {
        std::mem::take(&mut self.was_reset)
    }

    /// Starts from `history`, the last bytes this peer's stream produced (at most its window), as
    /// if they had just been inflated: RFC 7692 §7.2.2's continuing context, restored on a fresh
    /// state. A raw inflate stream takes a dictionary at any point.
    pub(crate) fn prime(&mut self, history: &[u8]) -> Result<(), ProtocolError> {
        self.inner
            .set_dictionary(history)
            .map(|_| ())
            .map_err(|_| ProtocolError::InvalidCompressedData)
    }

    /// Back to a fresh stream, for reuse by another connection.
    pub(crate) fn clear(&mut self) {
        self.inner.reset(false);
        self.stream_ended = false;
        self.message_started = false;
        self.was_reset = false;
    }

    /// Inflates `input` (part of a compressed message) onto `out`; at `message_end` also the
    /// restored tail. Adds at most `budget` bytes to `out`: one more fails with
    /// [`ProtocolError::MessageTooLarge`] (1009). Corrupt data fails with
    /// [`ProtocolError::InvalidCompressedData`] (1007).
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        message_end: bool,
        out: &mut Vec<u8>,
        budget: usize,
    ) -> Result<(), ProtocolError> {
        let start = out.len();
        self.message_started |= !input.is_empty();
        self.feed(input, out, start, budget)?;
        if message_end {
            // A message with no compressed bytes at all is empty. Appending the tail to nothing
            // would leave the inflater inside a block header, so it is skipped: some senders
            // write nothing for an empty message instead of §7.2.3.6's single 0x00.
            if std::mem::take(&mut self.message_started) {
                self.feed(&TAIL, out, start, budget)?;
            }
            if self.reset_after_message || self.stream_ended {
                self.inner.reset(false);
                self.stream_ended = false;
                self.was_reset = true;
            }
        }
        Ok(())
    }

    fn feed(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        start: usize,
        budget: usize,
    ) -> Result<(), ProtocolError> {
        loop {
            if self.stream_ended {
                return Ok(());
            }
            let produced = out.len() - start;
            if produced > budget {
                return Err(ProtocolError::MessageTooLarge);
            }
            // Room for the budget plus one byte, which proves the budget is exceeded; grown in
            // steps so memory follows real output, never a peer's claim.
            let room = budget - produced + 1;
            if out.capacity() == out.len() {
                out.reserve_exact(room.min(INFLATE_STEP.max(produced)));
            }
            let space = out.capacity() - out.len();
            let (in_before, out_before) = (self.inner.total_in(), self.inner.total_out());
            let status = self
                .inner
                .decompress_vec(input, out, FlushDecompress::Sync)
                .map_err(|_| ProtocolError::InvalidCompressedData)?;
            let consumed = (self.inner.total_in() - in_before) as usize;
            let written = (self.inner.total_out() - out_before) as usize;
            input = &input[consumed..];
            if status == Status::StreamEnd {
                self.stream_ended = true;
            }
            if out.len() - start > budget {
                return Err(ProtocolError::MessageTooLarge);
            }
            // Done when the input is used up and the output did not fill the space offered (a
            // full output may hide more pending bytes). No progress at all means zlib wants input.
            if (input.is_empty() && written < space) || (consumed == 0 && written == 0) {
                return Ok(());
            }
        }
    }
}

/// Compresses outgoing messages.
#[derive(Debug)]
pub(crate) struct Deflater {
    inner: Compress,
    reset_after_message: bool,
    threshold: usize,
    /// A compression step failed: the stream is broken for good.
    failed: bool,
    /// Test hook: the next compression step fails.
    #[cfg(test)]
    pub(super) fail_next_step: bool,
}

impl Deflater {
    /// A deflater with an LZ77 window of `window_bits` (9–15), or `None` for an 8-bit window, which
    /// zlib cannot compress with: the endpoint then sends uncompressed (RSV1 is per message).
    pub(crate) fn new(
        window_bits: u8,
        reset_after_message: bool,
        level: u32,
        threshold: usize,
    ) -> Option<Deflater> {
        if !(MIN_COMPRESS_WINDOW_BITS..=15).contains(&window_bits) {
            return None;
        }
        Some(Deflater {
            inner: Compress::new_with_window_bits(
                Compression::new(level.min(9)),
                false,
                window_bits,
            ),
            reset_after_message,
            threshold,
            failed: false,
            #[cfg(test)]
            fail_next_step: false,
        })
    }

    /// Starts from `history`, the last bytes sent (at most the window), so this fresh state may
    /// refer back into them as the peer's continuing inflater expects (RFC 7692 §7.2.1). Raw
    /// DEFLATE takes a dictionary on a fresh state. Without it the output is still valid, only
    /// larger, so a failure is not an error.
    pub(crate) fn prime(&mut self, history: &[u8]) {
        let _ = self.inner.set_dictionary(history);
    }

    /// Back to a fresh stream, for reuse by another connection.
    pub(crate) fn clear(&mut self) {
        self.inner.reset();
    }

    /// Another compression level, for a fresh (or just cleared) stream: with no input since,
    /// zlib has nothing to flush and the change cannot fail. Were it to, the old level stays.
    pub(crate) fn set_level(&mut self, level: u32) {
        let _ = self.inner.set_level(Compression::new(level.min(9)));
    }

    /// Whether a message starting with `len` bytes (the whole message when `whole`) is worth
    /// compressing: messages under the threshold go as they are.
    pub(crate) fn wants(&self, len: usize, whole: bool) -> bool {
        !whole || len >= self.threshold
    }

    /// The compressed message, or `None` to send this message uncompressed.
    ///
    /// Errors: [`CompressError`] when the backend fails; the stream is then unusable.
    pub(crate) fn compress(&mut self, data: &[u8]) -> Result<Option<Vec<u8>>, CompressError> {
        if !self.wants(data.len(), true) {
            return Ok(None);
        }
        let compressed = self.compress_part(data, true)?;
        // Without context takeover nothing of this message is remembered, so a message that
        // grew may as well go uncompressed.
        if self.reset_after_message && compressed.len() >= data.len() {
            return Ok(None);
        }
        Ok(Some(compressed))
    }

    /// Compresses one fragment of a message. Every fragment is flushed so it can be sent at once;
    /// at `message_end` the flush's tail is stripped (RFC 7692 §7.2.1) and, without context
    /// takeover, the context is reset.
    ///
    /// Errors: [`CompressError`] when the backend fails. The output so far is a truncated
    /// stream that must never be sent as a frame: the caller fails the connection (1011), and
    /// this deflater refuses every later call.
    pub(crate) fn compress_part(
        &mut self,
        data: &[u8],
        message_end: bool,
    ) -> Result<Vec<u8>, CompressError> {
        if self.failed {
            return Err(CompressError);
        }
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut input = data;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let before = self.inner.total_in();
            let status = self.step(input, &mut out);
            input = &input[(self.inner.total_in() - before) as usize..];
            if status.is_err() {
                self.failed = true;
                return Err(CompressError);
            }
            let full = out.capacity() == out.len();
            if input.is_empty() && !full {
                break;
            }
        }
        if message_end {
            // §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail end."
            if out.ends_with(&TAIL) {
                out.truncate(out.len() - TAIL.len());
            } else if out.is_empty() {
                // Nothing new since the last flush (an empty message, or an empty last fragment),
                // so zlib wrote no block. The receiver will append the tail all the same: send the
                // empty stored block's header byte it belongs to (§7.2.3.6), or it would read the
                // tail as the start of a block and corrupt the stream.
                out.push(0x00);
            }
            if self.reset_after_message {
                self.inner.reset();
            }
        }
        Ok(out)
    }

    /// One sync-flush step of the backend. A sync flush never fails on a valid stream; tests
    /// can make it fail to check that a failure never reaches the wire.
    fn step(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Status, ()> {
        #[cfg(test)]
        if self.fail_next_step {
            return Err(());
        }
        self.inner
            .compress_vec(input, out, FlushCompress::Sync)
            .map_err(|_| ())
    }
}

/// The compressor failed; what it produced is not a valid DEFLATE stream. The connection must be
/// failed with 1011 (RFC 6455 §7.4.1: "an unexpected condition that prevented it from fulfilling
/// the request").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompressError;

#[cfg(test)]
mod tests {
    //! RFC 7692 §7.2, with the RFC's own example bytes.
    use super::*;

    const BUDGET: usize = 1 << 20;

    fn inflate_all(inflater: &mut Inflater, data: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        let mut out = Vec::new();
        inflater.inflate(data, true, &mut out, BUDGET)?;
        Ok(out)
    }

    #[test]
    fn rfc_examples_inflate() {
        // §7.2.3.1: "Hello" compressed; §7.2.3.2 shows the same message twice with context
        // takeover, the second referring back to the first.
        let mut inflater = Inflater::new(15, false);
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate_all(&mut inflater, &hello).unwrap(), b"Hello");
        let again = [0xf2, 0x00, 0x11, 0x00, 0x00];
        assert_eq!(inflate_all(&mut inflater, &again).unwrap(), b"Hello");
        // §7.2.3.3: a stored (uncompressed) block.
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(inflate_all(&mut inflater, &stored).unwrap(), b"Hello");
        // §7.2.3.4: a BFINAL block; the next message starts a fresh stream.
        let mut inflater = Inflater::new(15, false);
        let last = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        assert_eq!(inflate_all(&mut inflater, &last).unwrap(), b"Hello");
        assert_eq!(inflate_all(&mut inflater, &hello).unwrap(), b"Hello");
    }

    #[test]
    fn pieces_inflate_like_the_whole() {
        let mut deflater = Deflater::new(15, false, 6, 0).unwrap();
        let text = "{\"id\": 12, \"name\": \"syncws\", \"tags\": [\"a\", \"b\"]}".repeat(200);
        let compressed = deflater.compress(text.as_bytes()).unwrap().unwrap();
        assert!(!compressed.ends_with(&TAIL));
        assert!(compressed.len() < text.len() / 10);
        let mut inflater = Inflater::new(15, false);
        let mut out = Vec::new();
        for piece in compressed.chunks(7) {
            inflater.inflate(piece, false, &mut out, BUDGET).unwrap();
        }
        inflater.inflate(&[], true, &mut out, BUDGET).unwrap();
        assert_eq!(out, text.as_bytes());
    }

    #[test]
    fn context_takeover_and_its_absence() {
        let message = b"the same message, sent twice, compresses to almost nothing the second time";
        for reset in [false, true] {
            let mut deflater = Deflater::new(12, reset, 6, 0).unwrap();
            let mut inflater = Inflater::new(12, reset);
            let first = deflater.compress(message).unwrap().unwrap();
            let second = deflater.compress(message).unwrap().unwrap();
            if reset {
                assert_eq!(first, second, "no context: each message stands alone");
                // Each also inflates on a fresh inflater.
                let mut fresh = Inflater::new(15, false);
                assert_eq!(inflate_all(&mut fresh, &second).unwrap(), message);
            } else {
                assert!(
                    second.len() < first.len() / 4,
                    "context takeover shrinks repeats"
                );
            }
            for compressed in [first, second] {
                assert_eq!(inflate_all(&mut inflater, &compressed).unwrap(), message);
            }
        }
    }

    #[test]
    fn fragments_compress_into_one_message() {
        let mut deflater = Deflater::new(15, false, 6, 0).unwrap();
        let mut wire = deflater.compress_part(b"first part, ", false).unwrap();
        wire.extend(deflater.compress_part(b"second part", true).unwrap());
        let mut inflater = Inflater::new(15, false);
        assert_eq!(
            inflate_all(&mut inflater, &wire).unwrap(),
            b"first part, second part"
        );
    }

    #[test]
    fn empty_messages_and_empty_last_fragments_keep_the_stream_in_step() {
        let mut deflater = Deflater::new(15, false, 6, 0).unwrap();
        let mut inflater = Inflater::new(15, false);
        // Context takeover: after a flush, an empty message makes zlib write nothing at all.
        for data in [&b"hello"[..], b"", b"", b"hello again", b""] {
            let compressed = deflater.compress(data).unwrap().unwrap();
            assert!(!compressed.is_empty());
            assert_eq!(inflate_all(&mut inflater, &compressed).unwrap(), data);
        }
        // A streamed message whose last fragment is empty.
        let mut wire = deflater
            .compress_part(b"all in the first fragment", false)
            .unwrap();
        wire.extend(deflater.compress_part(b"", true).unwrap());
        assert_eq!(
            inflate_all(&mut inflater, &wire).unwrap(),
            b"all in the first fragment"
        );
        let next = deflater.compress(b"next").unwrap().unwrap();
        assert_eq!(inflate_all(&mut inflater, &next).unwrap(), b"next");
        // A sender that writes no bytes at all for an empty message is understood too.
        assert_eq!(inflate_all(&mut inflater, b"").unwrap(), b"");
        assert_eq!(inflate_all(&mut inflater, b"").unwrap(), b"");
        let last = deflater.compress(b"still in step").unwrap().unwrap();
        assert_eq!(inflate_all(&mut inflater, &last).unwrap(), b"still in step");
    }

    #[test]
    fn window_8_is_not_compressed_with() {
        assert!(Deflater::new(8, false, 6, 0).is_none());
        assert!(Deflater::new(9, false, 6, 0).is_some());
        // But a peer's 8-bit window inflates fine.
        let mut deflater = Deflater::new(9, false, 6, 0).unwrap();
        let compressed = deflater.compress(b"abcabcabcabc").unwrap().unwrap();
        assert_eq!(
            inflate_all(&mut Inflater::new(8, false), &compressed).unwrap(),
            b"abcabcabcabc"
        );
    }

    #[test]
    fn threshold_and_incompressible_data() {
        let mut deflater = Deflater::new(15, true, 6, 100).unwrap();
        assert_eq!(deflater.compress(&[b'a'; 99]), Ok(None));
        assert!(deflater.compress(&[b'a'; 100]).unwrap().is_some());
        let noise: Vec<u8> = (0..4096).map(|_| rand::random::<u8>()).collect();
        assert_eq!(
            deflater.compress(&noise),
            Ok(None),
            "grew, and no context to keep"
        );
    }

    #[test]
    fn corrupt_data_is_1007() {
        let mut inflater = Inflater::new(15, false);
        let err = inflate_all(&mut inflater, &[0xff, 0xff, 0xff, 0xff]).unwrap_err();
        assert_eq!(err, ProtocolError::InvalidCompressedData);
    }

    #[test]
    fn budget_stops_a_bomb_without_allocating_past_it() {
        // 10 MiB of zeros compress to about 10 KiB; a 1 MiB budget must stop it.
        let mut deflater = Deflater::new(15, false, 9, 0).unwrap();
        let bomb = deflater.compress(&vec![0u8; 10 << 20]).unwrap().unwrap();
        assert!(bomb.len() < 16 << 10);
        let mut inflater = Inflater::new(15, false);
        let mut out = Vec::new();
        let err = inflater
            .inflate(&bomb, true, &mut out, 1 << 20)
            .unwrap_err();
        assert_eq!(err, ProtocolError::MessageTooLarge);
        assert!(out.capacity() <= (1 << 20) + 1, "{}", out.capacity());
        // Exactly at the budget is fine.
        let mut inflater = Inflater::new(15, false);
        let exact = Deflater::new(15, false, 9, 0)
            .unwrap()
            .compress(&vec![7u8; 1 << 20])
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        inflater.inflate(&exact, true, &mut out, 1 << 20).unwrap();
        assert_eq!(out.len(), 1 << 20);
    }

    #[test]
    fn a_failed_compression_is_an_error_and_poisons_the_deflater() {
        let mut deflater = Deflater::new(15, false, 6, 0).unwrap();
        let _ = deflater
            .compress(b"a first message, fine")
            .unwrap()
            .unwrap();
        deflater.fail_next_step = true;
        assert_eq!(deflater.compress(&[b'x'; 4096]), Err(CompressError));
        // The stream is broken: nothing more may come out of it, even once the backend works.
        deflater.fail_next_step = false;
        assert_eq!(deflater.compress_part(b"more", false), Err(CompressError));
        assert_eq!(deflater.compress(b"more"), Err(CompressError));
    }

    #[test]
    fn a_sender_fails_the_connection_with_1011_and_sends_no_truncated_frame() {
        use crate::proto::close::{CloseCode, CloseFrame};
        use crate::proto::frame::{Decoded, Frame, OpCode};
        use crate::proto::message::{DataKind, Message};
        use crate::proto::{Role, Sender, State};
        // Once as a whole message, once as a streamed fragment.
        for streamed in [false, true] {
            let mut sender = Sender::new(Role::Server);
            let mut deflater =
                crate::proto::deflate::resumable::Deflater::new(15, false, 6, 0).unwrap();
            deflater.fail_next_step();
            sender.set_deflater(Some(deflater));
            let data = vec![b'x'; 4096];
            let result = if streamed {
                sender.send_fragment(DataKind::Binary, &data, false)
            } else {
                sender.send(&Message::binary(data))
            };
            assert!(result.is_err(), "streamed: {streamed}");
            assert_eq!(sender.state(), State::Closed);
            let Decoded::Complete(frame, used) = Frame::decode(sender.data_to_send(), 125).unwrap()
            else {
                panic!("no close frame queued");
            };
            assert_eq!(frame.header.opcode, OpCode::Close, "a data frame went out");
            assert_eq!(
                used,
                sender.data_to_send().len(),
                "more than the close frame"
            );
            let close = CloseFrame::parse(&frame.payload).unwrap().unwrap();
            assert_eq!(close.code, CloseCode::InternalError);
            assert!(sender.send(&Message::text("later")).is_err());
        }
    }
}
