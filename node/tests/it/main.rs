//! Take-over, fencing, rank and catch-up, with nodes in one process over an embedded L1: each
//! test runs in seconds, where the process-level failover tests of `keel` take minutes.

mod harness;
mod roles;
