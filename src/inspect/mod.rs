//! Seeing the protocol at work: a guided tour of RFC 6455 and the tools to watch live frames.

pub mod tour;
