//! A reference to a connection's writer that does not keep the connection alive, for groups
//! such as [`Room`](crate::Room) that must not hold ended connections (and their descriptors).

use super::writer::{Shared, Writer};
use std::sync::{Arc, Weak};

/// Upgrades to a [`Writer`] while any strong writer (the connection's own, or a clone) lives.
#[derive(Clone, Debug)]
pub(crate) struct WeakWriter(Weak<Shared>);

impl WeakWriter {
    pub(crate) fn upgrade(&self) -> Option<Writer> {
        self.0.upgrade().map(|shared| Writer { shared })
    }

    /// Whether both refer to the same connection.
    pub(crate) fn same_connection(&self, writer: &Writer) -> bool {
        std::ptr::eq(self.0.as_ptr(), Arc::as_ptr(&writer.shared))
    }
}

impl Writer {
    /// A reference that does not keep this connection alive.
    pub(crate) fn downgrade(&self) -> WeakWriter {
        WeakWriter(Arc::downgrade(&self.shared))
    }
}
