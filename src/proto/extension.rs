//! Extension codecs plugged into the receiver and sender. Only permessage-deflate (RFC 7692) is
//! defined; without the `deflate` feature these types have no values, so the hooks cost nothing.

#[cfg(feature = "deflate")]
pub(crate) use super::deflate::resumable::{Deflater, Inflater};

#[cfg(not(feature = "deflate"))]
pub(crate) use disabled::{Deflater, Inflater};

#[cfg(not(feature = "deflate"))]
mod disabled {
    use crate::proto::error::ProtocolError;
    use std::time::Instant;

    /// Decompresses incoming messages (permessage-deflate).
    #[derive(Debug)]
    pub(crate) enum Inflater {}

    impl Inflater {
        /// Inflates `input` onto `out`, producing at most `budget` bytes before failing with 1009.
        pub(crate) fn inflate(
            &mut self,
            _input: &[u8],
            _message_end: bool,
            _out: &mut Vec<u8>,
            _budget: usize,
            _now: Option<Instant>,
        ) -> Result<(), ProtocolError> {
            match *self {}
        }

        /// Whether it holds a zlib state that [`park`](Self::park) would release.
        pub(crate) fn is_live(&self) -> bool {
            match *self {}
        }

        /// Releases the zlib state of a quiet connection.
        pub(crate) fn park(&mut self) {
            match *self {}
        }
    }

    /// Compresses outgoing messages (permessage-deflate).
    #[derive(Debug)]
    pub(crate) enum Deflater {}

    /// The compressor failed (never, without a compressor).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct CompressError;

    impl Deflater {
        /// Whether a message starting with `len` bytes is worth compressing.
        pub(crate) fn wants(&self, _len: usize, _whole: bool) -> bool {
            match *self {}
        }

        /// The compressed payload, or `None` to send this message uncompressed.
        pub(crate) fn compress(
            &mut self,
            _data: &[u8],
            _now: Option<Instant>,
        ) -> Result<Option<Vec<u8>>, CompressError> {
            match *self {}
        }

        /// Compresses one fragment of a message.
        pub(crate) fn compress_part(
            &mut self,
            _data: &[u8],
            _message_end: bool,
            _now: Option<Instant>,
        ) -> Result<Vec<u8>, CompressError> {
            match *self {}
        }

        /// Whether it holds a zlib state that [`park`](Self::park) would release.
        pub(crate) fn is_live(&self) -> bool {
            match *self {}
        }

        /// Releases the zlib state of a quiet connection.
        pub(crate) fn park(&mut self) {
            match *self {}
        }
    }
}
