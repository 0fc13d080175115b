//! Idle codec states shared by every connection of the process.
//!
//! A zlib compressor is about 150 KiB (window 12) to 270 KiB (window 15), mostly hash tables; a
//! connection that went quiet gives its state back here (reset) and keeps only its window of
//! history (see `resumable`). Taking a pooled state costs a lock instead of an allocation, whose
//! pages would fault in again, and the pool's memory is shared rather than per connection.

use super::codec::{Deflater, Inflater};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// States that busy connections may keep between messages, per core, process-wide (compressors
/// and decompressors together). Beyond this, a busy connection primes a pooled state for each
/// message instead of keeping one, so the memory of kept states is bounded by the machine's
/// size, not by the number of busy connections.
const MAX_KEPT_PER_CORE: usize = 4;

static KEPT: AtomicUsize = AtomicUsize::new(0);

fn max_kept() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        cores * MAX_KEPT_PER_CORE
    })
}

/// Takes one of the [`max_kept`] places for a state kept between messages, if one is free.
pub(super) fn try_keep() -> bool {
    let max = max_kept();
    KEPT.fetch_update(Ordering::AcqRel, Ordering::Acquire, |kept| {
        (kept < max).then_some(kept + 1)
    })
    .is_ok()
}

/// Gives back a place taken with [`try_keep`].
pub(super) fn unkeep() {
    KEPT.fetch_sub(1, Ordering::AcqRel);
}

/// Idle states kept of each kind; more are freed. A few cover connections waking one after
/// another; many waking at once allocate, as they would without a pool.
const MAX_IDLE: usize = 4;

/// What a compressor was built with: only an equal one may be handed out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DeflaterKind {
    pub(super) window_bits: u8,
    pub(super) reset_after_message: bool,
    pub(super) level: u32,
    pub(super) threshold: usize,
}

/// What a decompressor was built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InflaterKind {
    pub(super) window_bits: u8,
    pub(super) reset_after_message: bool,
}

struct Idle {
    deflaters: Vec<(DeflaterKind, Deflater)>,
    inflaters: Vec<(InflaterKind, Inflater)>,
}

static IDLE: Mutex<Idle> = Mutex::new(Idle {
    deflaters: Vec::new(),
    inflaters: Vec::new(),
});

fn idle() -> MutexGuard<'static, Idle> {
    // The pool holds only reset states; a panic elsewhere cannot leave one half-updated.
    IDLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A reset compressor of `kind`, pooled or new (`None`: zlib cannot compress with that window).
pub(super) fn deflater(kind: DeflaterKind) -> Option<Deflater> {
    // Any level will do: a reset state takes a new level before its first input, so one kind of
    // state serves both a busy connection's level and a quiet one's (`resumable`).
    let pooled = {
        let mut idle = idle();
        let found = idle.deflaters.iter().rposition(|(k, _)| {
            DeflaterKind {
                level: kind.level,
                ..*k
            } == kind
        });
        found.map(|i| idle.deflaters.swap_remove(i))
    };
    if let Some((pooled_kind, mut deflater)) = pooled {
        if pooled_kind.level != kind.level {
            deflater.set_level(kind.level);
        }
        return Some(deflater);
    }
    Deflater::new(
        kind.window_bits,
        kind.reset_after_message,
        kind.level,
        kind.threshold,
    )
}

/// A reset decompressor of `kind`, pooled or new.
pub(super) fn inflater(kind: InflaterKind) -> Inflater {
    let pooled = {
        let mut idle = idle();
        let found = idle.inflaters.iter().rposition(|(k, _)| *k == kind);
        found.map(|i| idle.inflaters.swap_remove(i).1)
    };
    pooled.unwrap_or_else(|| Inflater::new(kind.window_bits, kind.reset_after_message))
}

/// Gives a compressor back; it is reset here, outside the lock.
pub(super) fn give_deflater(kind: DeflaterKind, mut deflater: Deflater) {
    deflater.clear();
    let mut idle = idle();
    if idle.deflaters.len() < MAX_IDLE {
        idle.deflaters.push((kind, deflater));
    }
}

/// Gives a decompressor back; it is reset here, outside the lock.
pub(super) fn give_inflater(kind: InflaterKind, mut inflater: Inflater) {
    inflater.clear();
    let mut idle = idle();
    if idle.inflaters.len() < MAX_IDLE {
        idle.inflaters.push((kind, inflater));
    }
}
