//! The input buffer the I/O layer reads into and the decoder parses from.
//!
//! Its bytes are zeroed once when it grows and never again: a read goes into the free space at the
//! end (`spare_mut`), then `commit` marks those bytes filled. Bytes are consumed from the front;
//! when all are consumed both ends reset to zero, so a small buffer serves any stream of frames.

#[derive(Debug)]
pub(crate) struct ReadBuffer {
    data: Vec<u8>,
    start: usize,
    end: usize,
    initial: usize,
}

impl ReadBuffer {
    pub(crate) fn new(initial: usize) -> ReadBuffer {
        ReadBuffer {
            data: Vec::new(),
            start: 0,
            end: 0,
            initial: initial.max(crate::proto::frame::MAX_HEADER_LEN),
        }
    }

    /// The size it starts at and shrinks back to.
    pub(crate) fn initial(&self) -> usize {
        self.initial
    }

    /// The filled, unconsumed bytes.
    pub(crate) fn filled(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    pub(crate) fn filled_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.start..self.end]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Free space to read into, never empty: compacts, or allocates the buffer on first use.
    pub(crate) fn spare_mut(&mut self) -> &mut [u8] {
        if self.data.is_empty() {
            self.data = vec![0; self.initial];
        }
        if self.end == self.data.len() {
            if self.start > 0 {
                self.compact();
            } else {
                let doubled = self.data.len() * 2;
                self.data.resize(doubled, 0);
            }
        }
        &mut self.data[self.end..]
    }

    /// Free space of at least `want` bytes, growing the buffer (zeroed once) if needed.
    pub(crate) fn spare_at_least(&mut self, want: usize) -> &mut [u8] {
        if self.data.len() - self.end < want {
            if self.start > 0 {
                self.compact();
            }
            if self.data.len() - self.end < want {
                // Exactly: `resize` alone would round the capacity up to a power of two.
                self.data.reserve_exact(self.end + want - self.data.len());
                self.data.resize(self.end + want, 0);
            }
        }
        self.spare_mut()
    }

    /// Drops a grown buffer while it holds nothing, so it returns to its initial size.
    pub(crate) fn shrink_to_initial_if_idle(&mut self) {
        if self.is_empty() && self.data.len() > self.initial {
            self.data = Vec::new();
        }
    }

    pub(crate) fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.data.len());
    }

    /// Appends `bytes`, growing as needed (for callers that hand over data they already hold).
    pub(crate) fn extend(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let spare = self.spare_mut();
            let n = spare.len().min(bytes.len());
            spare[..n].copy_from_slice(&bytes[..n]);
            self.commit(n);
            bytes = &bytes[n..];
        }
    }

    /// Gives the memory back when it holds nothing and has grown past its initial size.
    pub(crate) fn shrink_if_idle(&mut self) {
        self.shrink_to_initial_if_idle();
    }

    /// Bytes held, for memory accounting.
    pub(crate) fn capacity(&self) -> usize {
        self.data.capacity()
    }

    fn compact(&mut self) {
        self.data.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_consume_and_compact() {
        let mut buf = ReadBuffer::new(16);
        buf.extend(b"0123456789abcdef");
        buf.consume(10);
        assert_eq!(buf.filled(), b"abcdef");
        // Full at the end: the next spare compacts instead of growing.
        assert_eq!(buf.spare_mut().len(), 10);
        assert_eq!(buf.capacity(), 16);
        buf.consume(6);
        assert!(buf.is_empty());
        assert_eq!(buf.spare_mut().len(), 16);
    }

    #[test]
    fn spare_at_least_grows_once_and_shrinks_when_idle() {
        let mut buf = ReadBuffer::new(16);
        buf.extend(b"abc");
        assert!(buf.spare_at_least(100).len() >= 100);
        assert_eq!(buf.filled(), b"abc");
        let grown = buf.capacity();
        assert_eq!(grown, 103, "exactly the room asked for, not rounded up");
        assert!(buf.spare_at_least(50).len() >= 50);
        assert_eq!(buf.capacity(), grown);
        buf.shrink_to_initial_if_idle();
        assert_eq!(buf.capacity(), grown, "not while it holds bytes");
        buf.consume(3);
        buf.shrink_to_initial_if_idle();
        assert_eq!(buf.spare_mut().len(), 16);
    }

    #[test]
    fn grows_only_when_full_from_the_start() {
        let mut buf = ReadBuffer::new(16);
        buf.extend(&[7; 40]);
        assert_eq!(buf.filled().len(), 40);
        assert!(buf.capacity() >= 40);
        buf.consume(40);
        buf.shrink_if_idle();
        assert_eq!(buf.capacity(), 0);
    }
}
