//! A run's report: the summary's figures, as a table or as JSON.

use std::io::Write;

use serde::Serialize;

use crate::supervisor::Restart;

/// A `--kill-primary-at` kill and what followed it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FailoverReport {
    /// The node killed (`sequencer-i`).
    pub killed: String,
    /// The batch committed on the L1 when it was killed.
    pub at_batch: u64,
    /// From the kill to the first operation another node accepted.
    pub first_accepted_ms: Option<u64>,
    /// From the kill to the L1's first commitment of a later batch.
    pub first_committed_ms: Option<u64>,
    /// Whether the killed node was started again.
    pub restarted: bool,
    /// From the kill to the killed node serving again as a standby.
    pub rejoined_ms: Option<u64>,
}

/// The council's exit mode and every account's exit.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExitReport {
    /// Accounts that exited.
    pub accounts: u32,
    /// What the exits paid.
    pub paid: u64,
    /// What the accounts' deposits total.
    pub supply: u64,
}

/// The summary's figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// The devnet's directory.
    pub dir: String,
    /// Whether this run resumed it.
    pub resumed: bool,
    /// Whether Ctrl-C ended it.
    pub interrupted: bool,
    /// The run's length.
    pub seconds: f64,
    /// Transfers accepted.
    pub operations_accepted: u64,
    /// Transfers refused.
    pub operations_refused: u64,
    /// Accepted per second.
    pub operations_per_second: f64,
    /// Batches the L1 committed in the run.
    pub batches_committed: u64,
    /// The first batch of the run.
    pub first_batch: u64,
    /// The last batch committed.
    pub last_batch: u64,
    /// Proofs made in the run.
    pub proofs: u64,
    /// Their mean time.
    pub proof_seconds_mean: Option<f64>,
    /// What made them.
    pub prover_backend: String,
    /// The L1's height at the end.
    pub l1_height: u64,
    /// The proven root.
    pub root: String,
    /// The primary at the end.
    pub primary: String,
    /// Its epoch.
    pub epoch: u64,
    /// `--kill-primary-at`'s figures.
    pub failover: Option<FailoverReport>,
    /// `--exit`'s figures.
    pub exit: Option<ExitReport>,
    /// Every process the supervisor restarted after it died unexpectedly.
    pub restarts: Vec<Restart>,
}

fn secs(ms: Option<u64>) -> String {
    ms.map_or("-".into(), |m| format!("{:.1} s", m as f64 / 1000.0))
}

impl Summary {
    /// Writes the summary: pretty JSON, or a table.
    pub fn print(&self, json: bool, out: &mut impl Write) -> std::io::Result<()> {
        if json {
            serde_json::to_writer_pretty(&mut *out, self)?;
            return writeln!(out);
        }
        let s = self;
        let mut rows: Vec<(&str, String)> = vec![
            (
                "devnet",
                format!("{}{}", s.dir, if s.resumed { " (resumed)" } else { "" }),
            ),
            (
                "ended",
                if s.interrupted {
                    "interrupted (Ctrl-C); a rerun resumes"
                } else {
                    "completed"
                }
                .into(),
            ),
            ("run time", format!("{:.1} s", s.seconds)),
            (
                "operations",
                format!(
                    "{} accepted ({:.2}/s), {} refused",
                    s.operations_accepted, s.operations_per_second, s.operations_refused
                ),
            ),
            (
                "batches committed",
                if s.batches_committed == 0 {
                    "0".into()
                } else {
                    format!(
                        "{} (batches {}..={} on the L1)",
                        s.batches_committed, s.first_batch, s.last_batch
                    )
                },
            ),
            (
                "proofs",
                match s.proof_seconds_mean {
                    Some(m) => format!("{} made, {m:.1} s mean, {}", s.proofs, s.prover_backend),
                    None => format!("none made this run ({})", s.prover_backend),
                },
            ),
            ("L1 height", s.l1_height.to_string()),
            ("proven root", s.root.clone()),
            ("primary", format!("{} (epoch {})", s.primary, s.epoch)),
        ];
        if let Some(f) = &s.failover {
            rows.push((
                "failover",
                format!(
                    "{} killed at batch {}; first operation accepted by the new primary after {}, \
                     first batch committed after {}; {}",
                    f.killed,
                    f.at_batch,
                    secs(f.first_accepted_ms),
                    secs(f.first_committed_ms),
                    match (f.restarted, f.rejoined_ms) {
                        (_, Some(ms)) =>
                            format!("it rejoined as a standby after {}", secs(Some(ms))),
                        (true, None) => "it was restarted but had not rejoined".into(),
                        (false, _) => "it was not restarted".into(),
                    }
                ),
            ));
        }
        rows.push((
            "restarts",
            if s.restarts.is_empty() {
                "none".into()
            } else {
                s.restarts
                    .iter()
                    .map(|r| format!("{} ({}, down {})", r.name, r.ended, secs(Some(r.down_ms))))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ));
        if let Some(x) = &s.exit {
            rows.push((
                "exit",
                format!(
                    "{} accounts exited; payouts {} = supply {}",
                    x.accounts, x.paid, x.supply
                ),
            ));
        }
        let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        writeln!(out, "keel devnet summary")?;
        for (k, v) in rows {
            writeln!(out, "  {k:width$}  {v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_the_failover_figures_and_every_restart() {
        let s = Summary {
            failover: Some(FailoverReport {
                killed: "sequencer-0".into(),
                at_batch: 3,
                first_accepted_ms: Some(9_100),
                first_committed_ms: None,
                restarted: true,
                rejoined_ms: Some(12_000),
            }),
            restarts: vec![Restart {
                name: "l1".into(),
                ended: "signal: 9 (SIGKILL)".into(),
                cause: vec![],
                down_ms: 500,
            }],
            ..Default::default()
        };
        let mut out = Vec::new();
        s.print(false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("accepted by the new primary after 9.1 s"),
            "{text}"
        );
        assert!(text.contains("first batch committed after -"), "{text}");
        assert!(
            text.contains("rejoined as a standby after 12.0 s"),
            "{text}"
        );
        assert!(
            text.contains("l1 (signal: 9 (SIGKILL), down 0.5 s)"),
            "{text}"
        );
        let mut out = Vec::new();
        s.print(true, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["failover"]["first_accepted_ms"], 9_100);
        assert_eq!(v["restarts"][0]["name"], "l1");
    }
}
