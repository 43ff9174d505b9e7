//! Hostile and broken clients: for each, a well-behaved client keeps calling the same
//! server the whole time and every one of its calls succeeds.

#[path = "../support/mod.rs"]
mod support;

mod harness;

mod frames;
mod handles;
mod handshake;
mod limits;
mod load;
