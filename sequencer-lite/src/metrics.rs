//! Prometheus metrics, rendered in the text exposition format for `GET /metrics`.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::Duration,
};

/// Counters kept by the sequencer.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) accepted: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    wal_groups: AtomicU64,
    wal_ops: AtomicU64,
    wal_write_ns: AtomicU64,
    verify_groups: AtomicU64,
    verify_sigs: AtomicU64,
    verify_failed_groups: AtomicU64,
    verify_ns: AtomicU64,
    batches: AtomicU64,
    batch_ops: AtomicU64,
    batch_ns: AtomicU64,
}

impl Metrics {
    pub(crate) fn reject(&self, reason: &'static str) {
        *self
            .rejected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    pub(crate) fn wal_group(&self, ops: usize, took: Duration) {
        self.wal_groups.fetch_add(1, Ordering::Relaxed);
        self.wal_ops.fetch_add(ops as u64, Ordering::Relaxed);
        self.wal_write_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(crate) fn verify_group(&self, sigs: usize, valid: bool, took: Duration) {
        self.verify_groups.fetch_add(1, Ordering::Relaxed);
        self.verify_sigs.fetch_add(sigs as u64, Ordering::Relaxed);
        if !valid {
            self.verify_failed_groups.fetch_add(1, Ordering::Relaxed);
        }
        self.verify_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(crate) fn batch(&self, ops: usize, took: Duration) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batch_ops.fetch_add(ops as u64, Ordering::Relaxed);
        self.batch_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    /// The text exposition, with the gauges the caller passes (`name`, help, value).
    pub(crate) fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let counters = [
            (
                "keel_sequencer_accepted_total",
                "Operations accepted into the log.",
                get(&self.accepted),
            ),
            (
                "keel_sequencer_wal_groups_total",
                "Group commits written.",
                get(&self.wal_groups),
            ),
            (
                "keel_sequencer_wal_ops_total",
                "Operations written by group commits.",
                get(&self.wal_ops),
            ),
            (
                "keel_sequencer_wal_write_seconds_total",
                "Time spent in group-commit writes (fsync included).",
                get(&self.wal_write_ns) / 1e9,
            ),
            (
                "keel_sequencer_verify_groups_total",
                "Signature groups checked as one batch by the verifier stage.",
                get(&self.verify_groups),
            ),
            (
                "keel_sequencer_verify_signatures_total",
                "Signatures checked by the verifier stage.",
                get(&self.verify_sigs),
            ),
            (
                "keel_sequencer_verify_failed_groups_total",
                "Groups with an invalid signature (their submitters then checked one by one).",
                get(&self.verify_failed_groups),
            ),
            (
                "keel_sequencer_verify_seconds_total",
                "Time spent in the verifier stage's batch checks.",
                get(&self.verify_ns) / 1e9,
            ),
            (
                "keel_sequencer_batches_total",
                "Batches committed.",
                get(&self.batches),
            ),
            (
                "keel_sequencer_batch_ops_total",
                "Operations in committed batches.",
                get(&self.batch_ops),
            ),
            (
                "keel_sequencer_batch_seconds_total",
                "Time spent executing, logging and committing batches.",
                get(&self.batch_ns) / 1e9,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP keel_sequencer_rejected_total Submissions refused, by reason.\n# TYPE keel_sequencer_rejected_total counter"
        );
        for (reason, n) in self
            .rejected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "keel_sequencer_rejected_total{{reason=\"{reason}\"}} {n}"
            );
        }
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}
