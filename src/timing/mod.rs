//! When to ping, when to give up on a quiet peer, when to retry a connection.
//!
//! `backoff`, `heartbeat` and `watch` are pure policy: they take the time as an argument and
//! never read a clock, so tests drive them with made-up instants. `timer` is the one thread that
//! applies the heartbeat policy to many connections at once.

pub(crate) mod backoff;
pub(crate) mod heartbeat;
pub(crate) mod timer;
pub(crate) mod watch;
