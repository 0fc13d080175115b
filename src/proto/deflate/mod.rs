//! permessage-deflate (RFC 7692): negotiation (always built, so a client can refuse extensions it
//! did not offer) and the codec (feature `deflate`).

#[cfg(feature = "deflate")]
pub(crate) mod codec;
pub mod negotiation;
#[cfg(feature = "deflate")]
mod pool;
#[cfg(feature = "deflate")]
pub(crate) mod resumable;

pub use negotiation::DeflateParams;

use super::receiver::Receiver;
use super::sender::Sender;
use crate::proto::config::DeflateConfig;

/// Puts the agreed codec on both halves of a connection.
#[cfg(feature = "deflate")]
pub(crate) fn install(
    receiver: &mut Receiver,
    sender: &mut Sender,
    params: &DeflateParams,
    config: &DeflateConfig,
) {
    use resumable::{Deflater, Inflater};
    let role = receiver.role();
    let (peer_resets, peer_bits) = params.incoming(role);
    receiver.set_inflater(Some(Inflater::new(peer_bits, peer_resets)));
    let deflater = if config.receive_only {
        None
    } else {
        let (resets, bits) = params.outgoing(role);
        Deflater::new(bits, resets, config.level, config.threshold)
    };
    sender.set_deflater(deflater);
}

/// Without the codec there is nothing to install (and negotiation never agrees).
#[cfg(not(feature = "deflate"))]
pub(crate) fn install(
    _receiver: &mut Receiver,
    _sender: &mut Sender,
    _params: &DeflateParams,
    _config: &DeflateConfig,
) {
}

#[cfg(all(test, feature = "deflate"))]
#[path = "idle_tests.rs"]
mod idle_tests;
