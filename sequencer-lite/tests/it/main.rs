//! Integration tests of the sequencer over loopback: crash recovery with a killed process, bad
//! input, and the batch stream.

mod admission;
mod bad_input;
mod common;
mod crash;
mod stream;
mod verify;
