//! Integration tests: the real server, in-process on port 0, with a fresh
//! SQLite file per test, driven over HTTP.

mod auth;
mod helpers;
mod semantics;
mod tokens;
mod validation;
mod verify;
