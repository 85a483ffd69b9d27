//! The layer against the real Tooken server and the example service, both
//! in-process on 127.0.0.1 port 0, talking HTTP.

mod cache;
mod helpers;
mod unavailable;
mod verify;

/// The example service itself, so the tests exercise exactly what it shows.
#[allow(dead_code)]
#[path = "../../examples/invoices.rs"]
mod invoices;
