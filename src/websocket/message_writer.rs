//! A message sent in fragments through [`std::io::Write`].

use super::WebSocket;
use crate::error::Error;
use crate::proto::State;
use crate::proto::close::CloseCode;
use crate::proto::message::DataKind;
use crate::proto::utf8::Utf8Validator;
use std::io::{self, Read, Write};
use std::time::Instant;

/// Sends one message in fragments of [`Config::write_fragment_size`](crate::Config::write_fragment_size) as it is written
/// (RFC 6455 §5.4). Call [`finish`](Self::finish) to send the last fragment.
///
/// Each `write` takes all of its buffer (`Ok(len)`) or none of it (`Err`), so repeating a write
/// that failed, e.g. with a timeout ([`io::ErrorKind::WouldBlock`] or `TimedOut`), neither loses
/// nor repeats a byte. A fragment that a write timeout interrupted stays queued (in memory, up to
/// one write's worth) and is finished by the next call.
///
/// A message that cannot be finished never looks finished to the peer: dropping the writer
/// without [`finish`](Self::finish), a text message ending inside a UTF-8 character, or a
/// transport error in the middle fails the connection with 1011 (internal error) instead.
///
/// ```no_run
/// # fn main() -> Result<(), syncws::Error> {
/// use std::io::Write;
/// let (mut ws, _) = syncws::connect("ws://127.0.0.1:9001/")?;
/// let mut writer = ws.send_stream(syncws::DataKind::Binary)?;
/// std::io::copy(&mut std::fs::File::open("big.bin")?, &mut writer)?;
/// writer.finish()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MessageWriter<'a, S: Read + Write> {
    ws: &'a mut WebSocket<S>,
    kind: DataKind,
    /// The fragment being filled (never `capacity` long between calls).
    buf: Vec<u8>,
    capacity: usize,
    utf8: Utf8Validator,
    /// The last fragment was queued, or the connection was failed: nothing more to do.
    finished: bool,
}

impl<'a, S: Read + Write> MessageWriter<'a, S> {
    /// A writer for one message of `kind`, in fragments of [`Config::write_fragment_size`](crate::Config::write_fragment_size).
    pub(super) fn new(ws: &'a mut WebSocket<S>, kind: DataKind) -> Self {
        let capacity = ws.config.write_fragment_size;
        MessageWriter {
            ws,
            kind,
            buf: Vec::with_capacity(capacity.min(64 << 10)),
            capacity,
            utf8: Utf8Validator::new(),
            finished: false,
        }
    }

    /// Sends what is buffered as the final fragment, ending the message.
    ///
    /// Errors: [`Error::InvalidInput`] if a text message ended inside a UTF-8 character (the
    /// connection is then failed with 1011); [`Error::Io`] if the final fragment could not be
    /// written: after a timeout it stays queued and [`WebSocket::flush`] (or any later call)
    /// finishes it.
    pub fn finish(mut self) -> Result<(), Error> {
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<(), Error> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        if self.kind == DataKind::Text && self.utf8.finish().is_err() {
            self.ws
                .fail(CloseCode::InternalError, "unfinished UTF-8 character");
            return Err(Error::InvalidInput(
                "text message ended inside a UTF-8 character",
            ));
        }
        let sender = self.ws.conn.sender();
        sender.note_time_if_compressing(Instant::now);
        if let Err(error) = sender.send_fragment(self.kind, &self.buf, true) {
            if self.ws.conn.state() != State::Closed {
                self.ws
                    .fail(CloseCode::InternalError, "message not finished");
            }
            return Err(error.into());
        }
        self.buf.clear();
        self.flush_queued()
    }

    /// Writes what is queued. A timeout leaves it queued; any other failure fails the connection
    /// (the message can never be finished).
    fn flush_queued(&mut self) -> Result<(), Error> {
        match self.ws.flush_pending() {
            Err(error) if !error.is_timeout() => {
                self.ws.conn.sender().on_transport_closed();
                self.finished = true;
                Err(error)
            }
            other => other,
        }
    }

    /// Queues the full fragment in `buf` (not the last).
    fn queue_fragment(&mut self) -> Result<(), Error> {
        let sender = self.ws.conn.sender();
        sender.note_time_if_compressing(Instant::now);
        sender.send_fragment(self.kind, &self.buf, false)?;
        self.buf.clear();
        Ok(())
    }
}

fn to_io(error: Error) -> io::Error {
    match error {
        Error::Io(io) => io,
        Error::InvalidInput(why) => io::Error::new(io::ErrorKind::InvalidInput, why),
        other => io::Error::other(other.to_string()),
    }
}

impl<S: Read + Write> Write for MessageWriter<'_, S> {
    /// Takes all of `data` or, with an error, none of it (see [`MessageWriter`]).
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.finished {
            return Err(to_io(Error::AlreadyClosed));
        }
        // What an earlier write left queued goes first; a timeout here has taken nothing.
        self.flush_queued().map_err(to_io)?;
        if data.is_empty() {
            return Ok(0);
        }
        if self.ws.conn.state() != State::Open {
            return Err(to_io(Error::AlreadyClosed));
        }
        let mut utf8 = self.utf8.clone();
        if self.kind == DataKind::Text && utf8.feed(data).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "text message is not UTF-8",
            ));
        }
        // From here on every byte of `data` is taken: fragments are queued, and a timeout
        // only stops the writing (the next call goes on with it).
        self.utf8 = utf8;
        let mut rest = data;
        let mut writable = true;
        while !rest.is_empty() {
            let take = (self.capacity - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() < self.capacity {
                break;
            }
            if let Err(error) = self.queue_fragment() {
                // Only a closed connection refuses a fragment; the message is lost either way.
                self.finished = true;
                return Err(to_io(error));
            }
            if writable {
                match self.flush_queued() {
                    Ok(()) => {}
                    // Stop writing; the rest of `data` is queued and goes with the next call.
                    Err(error) if error.is_timeout() => writable = false,
                    Err(error) => return Err(to_io(error)),
                }
            }
        }
        Ok(data.len())
    }

    /// Writes the queued fragments; the fragment being filled waits for more data or
    /// [`finish`](MessageWriter::finish).
    fn flush(&mut self) -> io::Result<()> {
        self.flush_queued().map_err(to_io)
    }
}

impl<S: Read + Write> Drop for MessageWriter<'_, S> {
    /// Dropped unfinished: the message cannot be completed, so the connection is failed with
    /// 1011 rather than ending the message early.
    fn drop(&mut self) {
        if !self.finished {
            self.finished = true;
            self.ws.fail(CloseCode::InternalError, "message abandoned");
        }
    }
}
