//! Integration tests of the sequencer over loopback: crash recovery with a killed process, bad
//! input, the batch stream, and the standby's replica.

mod ack;
mod admission;
mod bad_input;
mod common;
mod crash;
mod follow;
mod openapi;
mod standby;
mod stream;
mod vectors;
mod verify;
