//! Extension codecs plugged into the receiver and sender. Only permessage-deflate (RFC 7692) is
//! defined; without the `deflate` feature these types have no values, so the hooks cost nothing.

use crate::error::ProtocolError;

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
    ) -> Result<(), ProtocolError> {
        match *self {}
    }
}

/// Compresses outgoing messages (permessage-deflate).
#[derive(Debug)]
pub(crate) enum Deflater {}

impl Deflater {
    /// The compressed payload, or `None` to send this message uncompressed.
    pub(crate) fn compress(&mut self, _data: &[u8]) -> Option<Vec<u8>> {
        match *self {}
    }
}
