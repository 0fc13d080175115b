//! A connection's codec that gives its zlib state back while the connection is quiet.
//!
//! With context takeover (RFC 7692 §7.2.1–7.2.2) each direction's stream goes on from message to
//! message, but what a stream needs from its past is only its LZ77 window: DEFLATE's
//! back-references reach at most 2^window_bits bytes back (RFC 1951 §3.2.5). So a connection
//! keeps the full zlib state while it is busy, and once it goes quiet ([`Deflater::park`],
//! [`Inflater::park`], called by the reader after its quiet window) it returns the state to a
//! shared pool and keeps just the last window of plaintext. The next message takes a fresh state
//! and primes it with those bytes as a preset dictionary; the peer's stream cannot tell.
//!
//! A message that comes after a quiet spell ([`BUSY_GAP`] since the previous one) parks the state
//! again as soon as it is done: a chat connection sending now and then never holds a state
//! between its messages, so memory follows the messages in flight, not the connections. The core
//! reads no clock: each message comes with the time the I/O layer gave (`note_time` on the
//! connection, its receiver or its sender); without one it counts as busy, as plain context
//! takeover keeps its state, and only `shrink` (after the reader's quiet window) parks it.
//!
//! Memory of a quiet connection: the bytes of history, at most 2^window_bits per direction,
//! instead of about 200–300 KiB of zlib state.

use super::codec::{self, CompressError};
use super::negotiation::MIN_COMPRESS_WINDOW_BITS;
use super::pool::{self, DeflaterKind, InflaterKind};
use crate::proto::error::ProtocolError;
use std::time::{Duration, Instant};

/// Messages closer together than this keep the zlib state from one to the next (priming a state
/// costs more than compressing a small message with a live one); a message after a longer gap
/// gives the state back as soon as it is done. The reader's quiet window is as long.
const BUSY_GAP: Duration = Duration::from_millis(100);

/// The least compression level of a message that wakes a quiet connection's compressor: a fresh
/// state must be primed anyway, and a higher level adds little to that cost for a smaller
/// message (docs/compression.md). Level 0 (store) is kept as configured.
const QUIET_LEVEL: u32 = 6;

fn quiet_level(level: u32) -> u32 {
    if level == 0 {
        0
    } else {
        level.max(QUIET_LEVEL)
    }
}

/// When the last message went through, by the times the I/O layer gives; tells a busy connection
/// from a quiet one.
#[derive(Debug, Default)]
struct Pace {
    last: Option<Instant>,
}

impl Pace {
    /// Whether `now` is less than [`BUSY_GAP`] after the last message. Without a time the
    /// connection cannot be told quiet, so it counts as busy.
    fn recent(&self, now: Option<Instant>) -> bool {
        match now {
            Some(now) => self
                .last
                .is_some_and(|last| now.saturating_duration_since(last) < BUSY_GAP),
            None => true,
        }
    }

    /// Records a message at `now`; whether it came within [`BUSY_GAP`] of the previous one.
    fn busy(&mut self, now: Option<Instant>) -> bool {
        let busy = self.recent(now);
        if now.is_some() {
            self.last = now;
        }
        busy
    }
}

/// The last bytes of a stream's plaintext, up to its window.
#[derive(Debug)]
struct History {
    bytes: Vec<u8>,
    window: usize,
}

impl History {
    fn new(window_bits: u8) -> History {
        History {
            bytes: Vec::new(),
            window: 1 << window_bits,
        }
    }

    /// Appends `data`. Up to twice the window is kept so that trimming is amortised: a message
    /// costs a copy of itself (or of the window, when larger), not a move of the whole window.
    fn record(&mut self, data: &[u8]) {
        if data.len() >= self.window {
            self.bytes.clear();
            self.bytes
                .extend_from_slice(&data[data.len() - self.window..]);
            return;
        }
        if self.bytes.len() + data.len() > 2 * self.window {
            self.trim();
        }
        self.bytes.extend_from_slice(data);
    }

    /// Drops all but the last window of bytes.
    fn trim(&mut self) {
        let excess = self.bytes.len().saturating_sub(self.window);
        self.bytes.drain(..excess);
    }

    /// Trims, and gives back the spare capacity: what a quiet connection keeps.
    fn settle(&mut self) {
        self.trim();
        if self.bytes.is_empty() {
            self.bytes = Vec::new();
        } else {
            self.bytes.shrink_to_fit();
        }
    }

    /// The last window of bytes.
    fn window(&self) -> &[u8] {
        &self.bytes[self.bytes.len().saturating_sub(self.window)..]
    }

    fn clear(&mut self) {
        self.bytes.clear();
    }
}

/// Whether a busy connection keeps its state: it holds a place already, or takes a free one.
fn keep(kept: &mut bool, busy: bool) -> bool {
    if busy && !*kept {
        *kept = pool::try_keep();
    }
    busy && *kept
}

/// Gives back the place a kept state held, if any.
fn release(kept: &mut bool) {
    if std::mem::take(kept) {
        pool::unkeep();
    }
}

/// Compresses outgoing messages; see the module docs.
#[derive(Debug)]
pub(crate) struct Deflater {
    kind: DeflaterKind,
    /// The zlib state while the connection is busy; `None` once parked.
    live: Option<codec::Deflater>,
    /// What the live state was built with: its level is higher after a quiet spell.
    live_kind: DeflaterKind,
    /// Plaintext since the context last started (empty without context takeover).
    history: History,
    /// Inside a message sent in fragments: the state cannot be parked.
    mid_message: bool,
    pace: Pace,
    /// Holds one of the pool's places for a state kept between messages.
    kept: bool,
}

impl Deflater {
    /// A compressor with an LZ77 window of `window_bits` (9–15), or `None` for an 8-bit window,
    /// which zlib cannot compress with: the endpoint then sends uncompressed.
    pub(crate) fn new(
        window_bits: u8,
        reset_after_message: bool,
        level: u32,
        threshold: usize,
    ) -> Option<Deflater> {
        let kind = DeflaterKind {
            window_bits,
            reset_after_message,
            level,
            threshold,
        };
        if !(MIN_COMPRESS_WINDOW_BITS..=15).contains(&window_bits) {
            return None;
        }
        Some(Deflater {
            kind,
            // Taken from the pool by the first compressed message.
            live: None,
            live_kind: kind,
            history: History::new(window_bits),
            mid_message: false,
            pace: Pace::default(),
            kept: false,
        })
    }

    /// Whether a message starting with `len` bytes (the whole message when `whole`) is worth
    /// compressing: messages under the threshold go as they are.
    pub(crate) fn wants(&self, len: usize, whole: bool) -> bool {
        !whole || len >= self.kind.threshold
    }

    /// The compressed message, or `None` to send this message uncompressed; `now` is when it is
    /// sent (see [`Pace`]). An error leaves the codec poisoned (see
    /// [`codec::Deflater::compress`]): the connection must be failed.
    pub(crate) fn compress(
        &mut self,
        data: &[u8],
        now: Option<Instant>,
    ) -> Result<Option<Vec<u8>>, CompressError> {
        if !self.wants(data.len(), true) {
            return Ok(None);
        }
        let compressed = self.wake(now).compress(data)?;
        // Sent uncompressed, the message is not part of the stream's history.
        if compressed.is_some() {
            self.remember(data);
        }
        self.message_done(now);
        Ok(compressed)
    }

    /// Compresses one fragment of a message, sent at `now`; see
    /// [`codec::Deflater::compress_part`].
    pub(crate) fn compress_part(
        &mut self,
        data: &[u8],
        message_end: bool,
        now: Option<Instant>,
    ) -> Result<Vec<u8>, CompressError> {
        let compressed = self.wake(now).compress_part(data, message_end)?;
        self.remember(data);
        self.mid_message = !message_end;
        if message_end {
            self.message_done(now);
        }
        Ok(compressed)
    }

    /// Makes the next compression step fail, as a broken backend would (tests of the error path).
    #[cfg(test)]
    pub(crate) fn fail_next_step(&mut self) {
        self.wake(None).fail_next_step = true;
    }

    /// Whether the zlib state is held (parking would release it).
    pub(crate) fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// Releases the zlib state, keeping the window of history, unless a fragmented message is in
    /// progress. For a connection that went quiet.
    pub(crate) fn park(&mut self) {
        if self.mid_message {
            return;
        }
        if let Some(live) = self.live.take() {
            pool::give_deflater(self.live_kind, live);
        }
        release(&mut self.kept);
        self.history.settle();
    }

    /// A message after a quiet spell gives the state back at once, as does one on a busy
    /// connection when too many states are kept already.
    fn message_done(&mut self, now: Option<Instant>) {
        if !keep(&mut self.kept, self.pace.busy(now)) {
            self.park();
        }
    }

    fn remember(&mut self, data: &[u8]) {
        if !self.kind.reset_after_message {
            self.history.record(data);
        }
    }

    /// The zlib state, taken from the pool and primed with the history if parked; after a quiet
    /// spell at [`QUIET_LEVEL`] at least.
    fn wake(&mut self, now: Option<Instant>) -> &mut codec::Deflater {
        let live = match self.live.take() {
            Some(live) => live,
            None => {
                let mut kind = self.kind;
                if !self.pace.recent(now) {
                    kind.level = quiet_level(kind.level);
                }
                // `new` checked the window, the only reason zlib could refuse.
                let mut live = pool::deflater(kind).expect("a window zlib compresses with");
                if !self.history.bytes.is_empty() {
                    live.prime(self.history.window());
                }
                self.live_kind = kind;
                live
            }
        };
        self.live.insert(live)
    }
}

/// Decompresses incoming messages; see the module docs.
#[derive(Debug)]
pub(crate) struct Inflater {
    kind: InflaterKind,
    /// The zlib state while the connection is busy; `None` once parked.
    live: Option<codec::Inflater>,
    /// Output since the peer's context last started (empty without context takeover).
    history: History,
    /// Inside a compressed message: the state cannot be parked.
    mid_message: bool,
    pace: Pace,
    /// Holds one of the pool's places for a state kept between messages.
    kept: bool,
}

impl Inflater {
    /// A decompressor for a peer compressing with `window_bits` (8–15).
    pub(crate) fn new(window_bits: u8, reset_after_message: bool) -> Inflater {
        let window_bits = window_bits.clamp(9, 15);
        Inflater {
            kind: InflaterKind {
                // Inflating with a larger window than the peer's is always correct, and zlib
                // resets a 15-bit state in place where a smaller one is built anew: pooled states
                // are then reused without allocating. Only the history follows the peer's window.
                window_bits: 15,
                reset_after_message,
            },
            // Taken from the pool by the first compressed message.
            live: None,
            history: History::new(window_bits),
            mid_message: false,
            pace: Pace::default(),
            kept: false,
        }
    }

    /// Inflates `input`, read at `now` (see [`Pace`]), onto `out`; see
    /// [`codec::Inflater::inflate`].
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        message_end: bool,
        out: &mut Vec<u8>,
        budget: usize,
        now: Option<Instant>,
    ) -> Result<(), ProtocolError> {
        let start = out.len();
        self.mid_message = !message_end;
        let live = self.wake()?;
        let result = live.inflate(input, message_end, out, budget);
        let reset = live.take_reset();
        result?;
        if self.kind.reset_after_message || reset {
            self.history.clear();
        } else {
            self.history.record(&out[start..]);
        }
        // A message after a quiet spell gives the state back at once (see `Deflater`).
        if message_end && !keep(&mut self.kept, self.pace.busy(now)) {
            self.park();
        }
        Ok(())
    }

    /// Whether the zlib state is held (parking would release it).
    pub(crate) fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// Releases the zlib state, keeping the window of history, unless a message is in progress.
    /// For a connection that went quiet.
    pub(crate) fn park(&mut self) {
        if self.mid_message {
            return;
        }
        if let Some(live) = self.live.take() {
            pool::give_inflater(self.kind, live);
        }
        release(&mut self.kept);
        self.history.settle();
    }

    /// The zlib state, taken from the pool and primed with the history if parked.
    fn wake(&mut self) -> Result<&mut codec::Inflater, ProtocolError> {
        let live = match self.live.take() {
            Some(live) => live,
            None => {
                let mut live = pool::inflater(self.kind);
                if !self.history.bytes.is_empty() {
                    live.prime(self.history.window())?;
                }
                live
            }
        };
        Ok(self.live.insert(live))
    }
}

impl Drop for Deflater {
    fn drop(&mut self) {
        release(&mut self.kept);
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        release(&mut self.kept);
    }
}

#[cfg(test)]
mod tests {
    //! Parking and priming must be invisible on the wire: random message sequences, parked at
    //! random points, must match an independent continuous zlib stream byte for byte.
    use super::*;
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

    const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
    const BUDGET: usize = 1 << 22;

    /// A reproducible generator (xorshift64*), so a failure names its seed.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
        }

        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }

        /// A message that repeats earlier ones in part (so back-references reach into the
        /// history, across parks), sometimes empty, sometimes longer than any window.
        fn message(&mut self, earlier: &[Vec<u8>]) -> Vec<u8> {
            let len = match self.below(10) {
                0 => 0,
                1 => 40_000 + self.below(30_000),
                _ => self.below(3000),
            };
            let mut out = Vec::with_capacity(len);
            while out.len() < len {
                match (self.below(3), earlier.len()) {
                    (0, n) if n > 0 => {
                        let from = &earlier[n - 1 - self.below(n.min(8))];
                        let start = self.below(from.len());
                        let take = self.below(200).min(from.len() - start);
                        out.extend_from_slice(&from[start..start + take]);
                    }
                    (1, _) => {
                        out.extend_from_slice(b"{\"user\":\"someone\",\"text\":\"hello there\"}")
                    }
                    _ => out.push(b'a' + self.below(26) as u8),
                }
            }
            out.truncate(len);
            out
        }
    }

    /// A peer's continuous inflater: one zlib stream, never parked.
    fn continuous_inflate(inflater: &mut Decompress, wire: &[u8]) -> Vec<u8> {
        let mut input = wire.to_vec();
        input.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity(1 << 17);
        let mut input = &input[..];
        loop {
            let before = inflater.total_in();
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.capacity());
            }
            inflater
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
                .expect("the peer's continuous inflater accepts our stream");
            input = &input[(inflater.total_in() - before) as usize..];
            if input.is_empty() && out.capacity() > out.len() {
                return out;
            }
        }
    }

    /// A peer's continuous compressor: one zlib stream, sync-flushed, tail stripped.
    fn continuous_deflate(deflater: &mut Compress, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 1024);
        let mut input = data;
        loop {
            let before = deflater.total_in();
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity());
            }
            deflater
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .unwrap();
            input = &input[(deflater.total_in() - before) as usize..];
            if input.is_empty() && out.capacity() > out.len() {
                break;
            }
        }
        if out.is_empty() {
            // Nothing since the last flush: the empty stored block's header (RFC 7692 §7.2.3.6).
            return vec![0x00];
        }
        assert!(out.ends_with(&TAIL));
        out.truncate(out.len() - TAIL.len());
        out
    }

    #[test]
    fn parked_deflater_is_read_by_a_continuous_inflater() {
        for seed in 1..=24u64 {
            let mut rng = Rng(seed * 0x9e37_79b9);
            let bits = [9, 12, 15][seed as usize % 3];
            let mut ours = Deflater::new(bits, false, 1 + rng.below(9) as u32, 0).unwrap();
            let mut peer = Decompress::new_with_window_bits(false, bits);
            let mut sent = Vec::new();
            for round in 0..60 {
                let message = rng.message(&sent);
                let wire = if rng.chance(30) && message.len() > 1 {
                    // Fragmented: a park in the middle must not release the state.
                    let cut = rng.below(message.len());
                    let mut wire = ours.compress_part(&message[..cut], false, None).unwrap();
                    ours.park();
                    assert!(ours.is_live(), "seed {seed}: parked mid-message");
                    wire.extend(ours.compress_part(&message[cut..], true, None).unwrap());
                    wire
                } else {
                    ours.compress(&message, None).unwrap().unwrap()
                };
                let got = continuous_inflate(&mut peer, &wire);
                assert!(got == message, "seed {seed} round {round}: differs");
                if rng.chance(40) {
                    ours.park();
                    assert!(!ours.is_live());
                    assert!(ours.history.bytes.capacity() <= 1 << bits);
                }
                sent.push(message);
            }
        }
    }

    #[test]
    fn parked_inflater_reads_a_continuous_deflater() {
        for seed in 1..=24u64 {
            let mut rng = Rng(seed * 0x51_7cc1_b727);
            let bits = [9, 12, 15][seed as usize % 3];
            let level = Compression::new(1 + rng.below(9) as u32);
            let mut peer = Compress::new_with_window_bits(level, false, bits);
            let mut ours = Inflater::new(bits, false);
            let mut sent = Vec::new();
            for round in 0..60 {
                let message = rng.message(&sent);
                let wire = continuous_deflate(&mut peer, &message);
                let mut out = Vec::new();
                if rng.chance(30) && wire.len() > 1 {
                    // In frames: a park between them must not release the state.
                    let cut = rng.below(wire.len());
                    ours.inflate(&wire[..cut], false, &mut out, BUDGET, None)
                        .unwrap();
                    ours.park();
                    ours.inflate(&wire[cut..], true, &mut out, BUDGET, None)
                        .unwrap();
                } else {
                    ours.inflate(&wire, true, &mut out, BUDGET, None).unwrap();
                }
                assert!(out == message, "seed {seed} round {round}: differs");
                if rng.chance(40) {
                    ours.park();
                    assert!(!ours.is_live());
                    assert!(ours.history.bytes.capacity() <= 1 << bits);
                }
                sent.push(message);
            }
        }
    }

    #[test]
    fn pooled_states_serve_many_connections_without_mixing_them() {
        // Connections parking and waking in turn hand the same pooled states to each other.
        let mut rng = Rng(7);
        let mut pairs: Vec<(Deflater, Inflater, Vec<Vec<u8>>)> = (0..6)
            .map(|_| {
                (
                    Deflater::new(12, false, 1, 0).unwrap(),
                    Inflater::new(12, false),
                    Vec::new(),
                )
            })
            .collect();
        for _ in 0..300 {
            let (deflater, inflater, sent) = &mut pairs[rng.below(6)];
            let message = rng.message(sent);
            let wire = deflater.compress(&message, None).unwrap().unwrap();
            let mut out = Vec::new();
            inflater
                .inflate(&wire, true, &mut out, BUDGET, None)
                .unwrap();
            assert!(out == message);
            deflater.park();
            inflater.park();
            sent.push(message);
        }
    }

    #[test]
    fn the_times_given_tell_a_busy_connection_from_a_quiet_one() {
        // Instants handed in as the I/O layer would; nothing here waits.
        let t0 = Instant::now();
        let at = |ms: u64| Some(t0 + Duration::from_millis(ms));
        let mut pace = Pace::default();
        assert!(!pace.busy(at(0)), "the first message has none before it");
        assert!(pace.busy(at(99)));
        assert!(
            !pace.busy(at(199)),
            "100 ms after the previous one is quiet"
        );
        assert!(pace.recent(at(250)) && !pace.recent(at(299)));
        assert!(pace.busy(None), "without a time a message counts as busy");
        assert!(pace.recent(at(250)), "and leaves the last time as it was");
        assert!(pace.busy(at(150)), "a time before the last one is no gap");
    }

    #[test]
    fn a_message_after_a_quiet_spell_gives_its_state_back_at_once() {
        let t0 = Instant::now();
        let at = |ms: u64| Some(t0 + Duration::from_millis(ms));
        let message = b"{\"user\":\"someone\",\"text\":\"hello there\"}".repeat(4);
        let mut deflater = Deflater::new(12, false, 1, 0).unwrap();
        let mut inflater = Inflater::new(12, false);
        let mut exchange = |deflater: &mut Deflater, now| {
            let wire = deflater.compress(&message, now).unwrap().unwrap();
            let mut out = Vec::new();
            inflater
                .inflate(&wire, true, &mut out, BUDGET, now)
                .unwrap();
            assert_eq!(out, message);
            inflater.is_live()
        };
        // The first message is woken at the quiet level and parks when done.
        assert!(!exchange(&mut deflater, at(0)));
        assert_eq!(deflater.live_kind.level, QUIET_LEVEL);
        assert!(!deflater.is_live());
        // 10 ms later: busy, woken at the configured level (whether it then keeps the state
        // depends on the pool's free places, shared with other tests).
        exchange(&mut deflater, at(10));
        assert_eq!(deflater.live_kind.level, 1);
        // After a quiet second both directions give their state back as soon as it is done.
        assert!(!exchange(&mut deflater, at(1010)));
        assert!(!deflater.is_live());
    }

    #[test]
    fn without_context_takeover_a_parked_codec_keeps_nothing() {
        let mut deflater = Deflater::new(12, true, 1, 0).unwrap();
        let mut inflater = Inflater::new(12, true);
        for text in [&b"no context taken over, so nothing is kept"[..], b"again"] {
            let wire = deflater
                .compress(text, None)
                .unwrap()
                .unwrap_or_else(|| text.to_vec());
            let mut out = Vec::new();
            if wire != text {
                inflater
                    .inflate(&wire, true, &mut out, BUDGET, None)
                    .unwrap();
                assert_eq!(out, text);
            }
            deflater.park();
            inflater.park();
            assert_eq!(deflater.history.bytes.capacity(), 0);
            assert_eq!(inflater.history.bytes.capacity(), 0);
        }
    }
}
