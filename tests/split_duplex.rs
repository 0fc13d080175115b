//! Issue 17's headline over ws://: both ends split, each end's writer thread sends while its
//! reader thread reads, both directions at once. No read may wait for a data write, so none of
//! these may stall into the server's write timeout (1008).

mod duplex;

use duplex::{connect_ws, connect_ws_small_buffers, exchange};
use syncws::Server;

fn small(addr: std::net::SocketAddr) -> (syncws::Reader, syncws::Writer) {
    connect_ws_small_buffers(addr, 16 << 10)
}

#[test]
fn eight_one_mib_messages_each_way_at_once() {
    exchange(Server::builder(), connect_ws, 8, 1 << 20);
    exchange(Server::builder(), small, 8, 1 << 20);
}

#[test]
fn sixty_four_one_mib_messages_each_way_at_once() {
    exchange(Server::builder(), connect_ws, 64, 1 << 20);
}

#[test]
fn two_hundred_fifty_six_64_kib_messages_each_way_at_once() {
    exchange(Server::builder(), connect_ws, 256, 64 << 10);
    exchange(Server::builder(), small, 256, 64 << 10);
}

/// Small messages deadlocked the old design only in numbers: 20 000 over small buffers.
#[test]
fn thousands_of_1_kib_messages_each_way_at_once() {
    exchange(Server::builder(), connect_ws, 2000, 1 << 10);
    exchange(Server::builder(), small, 20_000, 1 << 10);
}
