//! `keel sla`: the deployment's recovery window, answered from its deadlines.

use std::time::Duration;

use clap::Args;
use keel_committer::{
    sla::{
        BLOCK_TIME, COUNCIL_MEMBERS, COUNCIL_THRESHOLD, FAILOVER_TIMEOUT,
        FORCED_INCLUSION_DEADLINE, PROOF_DEADLINE,
    },
    Deadlines,
};

/// The deadlines to report (the library defaults unless overridden).
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlaArgs {
    /// L1 block time, seconds.
    #[arg(long = "l1.block-time-s", default_value_t = BLOCK_TIME.as_secs())]
    block_time_s: u64,
    /// Silence after which a standby may claim the sequencer lease, seconds.
    #[arg(long = "l1.failover-timeout-s", default_value_t = FAILOVER_TIMEOUT.as_secs())]
    failover_timeout_s: u64,
    /// Age of an unserved forced entry after which anyone may activate exit mode, seconds.
    #[arg(long = "l1.forced-inclusion-deadline-s", default_value_t = FORCED_INCLUSION_DEADLINE.as_secs())]
    forced_inclusion_s: u64,
    /// Time without a proven batch after which anyone may activate exit mode, seconds.
    #[arg(long = "l1.proof-deadline-s", default_value_t = PROOF_DEADLINE.as_secs())]
    proof_deadline_s: u64,
    /// Council threshold.
    #[arg(long = "council.threshold", default_value_t = COUNCIL_THRESHOLD)]
    council_threshold: u16,
    /// Council size.
    #[arg(long = "council.members", default_value_t = COUNCIL_MEMBERS)]
    council_members: u16,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One line of the SLA: a question, its bound, and what enforces it.
struct Line {
    key: &'static str,
    question: &'static str,
    bound: Duration,
    how: String,
}

fn lines(d: &Deadlines, t: u16, n: u16) -> Vec<Line> {
    vec![
        Line {
            key: "failover",
            question: "a standby takes over within",
            bound: d.failover_timeout + d.block_time,
            how: "FAILOVER_TIMEOUT + one L1 block; the L1 refuses the old epoch".into(),
        },
        Line {
            key: "forced_inclusion",
            question: "a forced transaction is included within",
            bound: d.forced_inclusion,
            how: "FORCED_INCLUSION_DEADLINE; past it anyone may activate exit mode".into(),
        },
        Line {
            key: "exit_mode",
            question: "exit mode is reachable within",
            bound: d.proof.min(d.forced_inclusion),
            how: format!(
                "the earlier of PROOF_DEADLINE and FORCED_INCLUSION_DEADLINE; at once by {t} of {n} council members"
            ),
        },
    ]
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

pub(crate) fn run(args: SlaArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        1 <= args.council_threshold && args.council_threshold <= args.council_members,
        "the council threshold {} must be between 1 and the council size {}",
        args.council_threshold,
        args.council_members
    );
    let d = Deadlines {
        block_time: Duration::from_secs(args.block_time_s),
        failover_timeout: Duration::from_secs(args.failover_timeout_s),
        forced_inclusion: Duration::from_secs(args.forced_inclusion_s),
        proof: Duration::from_secs(args.proof_deadline_s),
    };
    let lines = lines(&d, args.council_threshold, args.council_members);
    if args.json {
        let mut o = serde_json::Map::new();
        for l in &lines {
            o.insert(format!("{}_s", l.key), l.bound.as_secs().into());
        }
        o.insert("block_time_s".into(), args.block_time_s.into());
        o.insert("council_threshold".into(), args.council_threshold.into());
        o.insert("council_members".into(), args.council_members.into());
        println!("{}", serde_json::Value::Object(o));
    } else {
        for l in &lines {
            println!("{:<40} {:>8}   {}", l.question, human(l.bound), l.how);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_follows_the_deadlines() {
        let d = Deadlines::default();
        let l = lines(&d, 6, 8);
        assert_eq!(l[0].bound, FAILOVER_TIMEOUT + BLOCK_TIME);
        assert_eq!(l[1].bound, FORCED_INCLUSION_DEADLINE);
        assert_eq!(l[2].bound, FORCED_INCLUSION_DEADLINE.min(PROOF_DEADLINE));
        assert!(l[2].how.contains("6 of 8"));
        assert_eq!(human(Duration::from_secs(32)), "32 s");
        assert_eq!(human(Duration::from_secs(1800)), "30 min");
        assert_eq!(human(Duration::from_secs(7200)), "2 h");
    }
}
