//! `keel devnet` end to end, at small sizes, through a settings file: a first run proves and
//! commits its batches; a second resumes and is stopped by Ctrl-C (SIGINT), cleanly; a third
//! resumes, kills the primary mid-run (the standby takes over and the run completes), then
//! activates exit mode and exits every account with payouts equal to the supply; a fourth is
//! refused, the devnet being over.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::l1::{keys_dir, verifier_file, SHAPE};

/// The small devnet's settings, on the embedded L1 (a rerun resumes it).
fn settings(path: &Path) {
    settings_on(path, "embedded");
}

/// The small devnet's settings on `l1`.
pub(crate) fn settings_on(path: &Path, l1: &str) {
    let text = format!(
        "[devnet]\nl1 = {l1:?}\naccounts = 2\nrate = 2\n\
         [sequencer]\ndepth = {}\nbatch-capacity = {}\nbatch-deadline-ms = 50\ntakeover-backoff-ms = 1000\n\
         [prover]\nkeys-dir = {:?}\nk = {}\ngpu = \"off\"\n\
         [l1]\nblock-time-ms = 100\nfailover-timeout-ms = 6000\n",
        SHAPE.depth,
        SHAPE.capacity,
        keys_dir().to_str().unwrap(),
        SHAPE.k
    );
    std::fs::write(path, text).unwrap();
}

/// Runs `keel --config F devnet --devnet.dir D ARGS --json` to its end: (exit code, summary,
/// stderr).
fn devnet(config: &Path, dir: &Path, args: &[&str]) -> (Option<i32>, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_keel"))
        .arg("--config")
        .arg(config)
        .arg("devnet")
        .arg("--devnet.dir")
        .arg(dir)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), summary, err)
}

/// A `--kill-primary-at … --exit` run's summary: sequencer-0 killed, sequencer-1 took over in
/// epoch 2 and the killed node rejoined, nothing else died, and both accounts exited with payouts
/// equal to the supply.
fn assert_took_over_and_exited(s: &Value) {
    let f = &s["failover"];
    assert_eq!(f["killed"], "sequencer-0", "{s}");
    assert!(f["first_accepted_ms"].as_u64().is_some(), "{s}");
    assert!(f["first_committed_ms"].as_u64().is_some(), "{s}");
    assert_eq!(f["restarted"], true, "{s}");
    assert!(f["rejoined_ms"].as_u64().is_some(), "{s}");
    assert_eq!(
        s["restarts"],
        serde_json::json!([]),
        "nothing died unexpectedly: {s}"
    );
    assert_eq!(
        (s["primary"].as_str(), s["epoch"].as_u64()),
        (Some("sequencer-1"), Some(2)),
        "{s}"
    );
    let x = &s["exit"];
    assert_eq!(x["accounts"], 2, "{s}");
    assert_eq!(x["paid"], x["supply"], "{s}");
}

/// Process `name`'s ready file in the devnet `dir`.
fn ready(dir: &Path, name: &str) -> Option<keel_http::Ready> {
    keel_http::Ready::read(&dir.join("run").join(format!("{name}.ready")))
}

fn port_answers(url: &str) -> bool {
    let addr = url.trim_start_matches("http://");
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(500)).is_ok()
}

#[test]
fn a_devnet_runs_resumes_survives_a_killed_primary_and_exits_every_account() {
    let _heavy = crate::heavy();
    verifier_file(); // the shape's keys, made once for every test
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("keel.toml");
    settings(&config);
    let dir = tmp.path().join("devnet");

    // 1. a first run: two deposits and the transfers sent meanwhile, proven and committed
    let (code, s, err) = devnet(&config, &dir, &["--batches", "1"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("created"), "{err}");
    assert_eq!(s["interrupted"], false, "{s}");
    let first_last = s["last_batch"].as_u64().unwrap();
    assert!(first_last >= 2, "both deposits are committed: {s}");
    assert!(s["proofs"].as_u64().unwrap() >= first_last, "{s}");
    assert!(
        s["prover_backend"].as_str().unwrap().starts_with("CPU"),
        "{s}"
    );
    assert!(dir.join("logs/l1.log").is_file() && dir.join("logs/sequencer-1.log").is_file());

    // 2. a rerun resumes; Ctrl-C (SIGINT) stops the load and every process cleanly
    let mut child = Command::new(env!("CARGO_BIN_EXE_keel"))
        .arg("--config")
        .arg(&config)
        .args([
            "devnet",
            "--devnet.dir",
            dir.to_str().unwrap(),
            "--duration",
            "600",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let reader = {
        let (log, lines) = (log.clone(), BufReader::new(child.stderr.take().unwrap()));
        thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        })
    };
    let accepted = |text: &str| {
        text.lines()
            .filter_map(|l| {
                l.split("] ops ")
                    .nth(1)?
                    .split(' ')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0)
    };
    let start = Instant::now();
    while accepted(&log.lock().unwrap()) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "no operation accepted:\n{}",
            log.lock().unwrap()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "{}",
            log.lock().unwrap()
        );
        thread::sleep(Duration::from_millis(100));
    }
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let mut table = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut table).unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let text = log.lock().unwrap().clone();
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(
        text.contains(&format!("resuming {}", dir.display())),
        "{text}"
    );
    assert!(table.contains("interrupted (Ctrl-C)"), "{table}");
    // where each process served, from the ready files the devnet's processes wrote
    let urls: Vec<String> = ["l1", "sequencer-0", "sequencer-1"]
        .iter()
        .map(|n| ready(&dir, n).expect(n).api)
        .collect();
    for url in &urls {
        assert!(!port_answers(url), "{url} still answers after Ctrl-C");
    }

    // 3. resumed again: the primary is killed once a batch of the run is committed, the
    // standby takes over, the run completes; then exit mode and every account exits
    let (code, s, err) = devnet(
        &config,
        &dir,
        &["--batches", "3", "--kill-primary-at", "1", "--exit"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(s["first_batch"].as_u64().unwrap() > first_last, "{s}");
    assert!(s["batches_committed"].as_u64().unwrap() >= 3, "{s}");
    assert_took_over_and_exited(&s);
    assert!(err.contains("rebuilt from L1 data alone"), "{err}");

    // 4. the devnet is over: a rerun says so and changes nothing
    let (code, _, err) = devnet(&config, &dir, &["--batches", "1"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("is in exit mode"), "{err}");
}

#[test]
fn a_devnet_on_anvil_survives_a_killed_primary_and_exits_every_account() {
    let _heavy = crate::heavy();
    verifier_file(); // the shape's keys, made once for every test
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("keel.toml");
    settings_on(&config, "anvil");
    let dir = tmp.path().join("devnet");

    // the contracts deployed on anvil, real proofs verified on chain; the primary is killed
    // once two batches are committed, the standby takes over, then the council's exit mode and
    // every account exits from the chain's events and calldata alone
    let (code, s, err) = devnet(
        &config,
        &dir,
        &["--batches", "4", "--kill-primary-at", "2", "--exit"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("anvil at http://127.0.0.1:"), "{err}");
    assert!(s["batches_committed"].as_u64().unwrap() >= 4, "{s}");
    assert_took_over_and_exited(&s);
    assert!(dir.join("logs/anvil.log").is_file());
    let deployment: Value =
        serde_json::from_slice(&std::fs::read(dir.join("deployment.json")).unwrap()).unwrap();
    assert!(
        deployment["deployment"]["rollup"].is_string(),
        "{deployment}"
    );
    // the standbys' acknowledgements verified under the keys the contract registers
    for i in 0..2 {
        let log = std::fs::read_to_string(dir.join(format!("logs/sequencer-{i}.log"))).unwrap();
        assert!(!log.contains("unknown_standby"), "sequencer-{i}: {log}");
    }

    // anvil kept the chain in memory: the devnet cannot resume, and says so
    let (code, _, err) = devnet(&config, &dir, &["--batches", "1"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("cannot resume"), "{err}");
}

#[test]
fn a_devnet_on_anvil_proves_in_a_prover_farm() {
    let _heavy = crate::heavy();
    verifier_file();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("keel.toml");
    settings_on(&config, "anvil");
    let dir = tmp.path().join("devnet");
    // keel prover run reads the rollup (no key); keel committer posts with the sequencer's
    // EVM key; the nodes only sequence
    let (code, s, err) = devnet(&config, &dir, &["--batches", "2", "--devnet.provers", "1"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(s["batches_committed"].as_u64().unwrap() >= 2, "{s}");
    assert!(s["proofs"].as_u64().unwrap() >= 2, "{s}");
    assert_eq!(s["restarts"], serde_json::json!([]), "{s}");
    let prover = std::fs::read_to_string(dir.join("logs/prover-0.log")).unwrap();
    assert!(prover.contains("state rebuilt from the L1"), "{prover}");
    assert!(dir.join("logs/committer-0.log").is_file());
}

#[test]
fn a_devnet_refuses_bad_options_before_creating_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("devnet");
    let config = tmp.path().join("none.toml");
    std::fs::write(&config, "").unwrap();
    for (args, want) in [
        (
            vec!["--batches", "2", "--kill-primary-at", "2"],
            "must come before",
        ),
        (vec!["--batches", "0"], "at least 1"),
        (vec!["--devnet.accounts", "1"], "at least 2 accounts"),
        (vec!["--prover.k", "40"], "k must be in"),
        (vec!["--devnet.l1", "sepolia"], "not an L1"),
    ] {
        let (code, _, err) = devnet(&config, &dir, &args);
        assert_ne!(code, Some(0), "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!dir.join("devnet.json").exists(), "{args:?}");
    }
    // a directory that holds something else is not taken over
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let (code, _, err) = devnet(&config, &dir, &[]);
    assert_ne!(code, Some(0));
    assert!(err.contains("not a devnet"), "{err}");
}

/// Runs `keel --config F devnet --devnet.dir D ARGS --json` in the background.
fn spawn_devnet(config: &Path, dir: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_keel"))
        .arg("--config")
        .arg(config)
        .arg("devnet")
        .arg("--devnet.dir")
        .arg(dir)
        .args(args)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Its exit code, summary and stderr, once it ends.
fn finish(child: std::process::Child) -> (Option<i32>, Value, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits while `waiting` holds, failing if the devnet ends first or `timeout` passes.
fn while_running(
    devnet: &mut std::process::Child,
    what: &str,
    timeout: Duration,
    mut waiting: impl FnMut() -> bool,
) {
    let start = Instant::now();
    while waiting() {
        assert!(
            devnet.try_wait().unwrap().is_none(),
            "the devnet ended while waiting for {what}"
        );
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// SIGKILLs the process that announced itself in `name`'s ready file, and waits until the
/// devnet's supervisor has started it again and it is ready (a new pid in the file).
fn kill_and_await_restart(dir: &Path, name: &str, devnet: &mut std::process::Child) {
    let before = ready(dir, name).unwrap_or_else(|| panic!("{name} is not ready"));
    let pid = rustix::process::Pid::from_raw(before.pid as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    while_running(
        devnet,
        &format!("{name} to restart"),
        Duration::from_secs(180),
        || ready(dir, name).is_none_or(|r| r.pid == before.pid),
    );
}

#[test]
fn a_supervised_devnet_restarts_what_dies_and_holds_its_directory_against_a_second() {
    let _heavy = crate::heavy();
    verifier_file();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("keel.toml");
    settings(&config);
    let dir = tmp.path().join("devnet");
    let args = ["--batches", "3", "--devnet.provers", "1"];

    // two devnets on a new directory at the same moment: one runs, the other refuses clearly
    let a = spawn_devnet(&config, &dir, &args);
    let b = spawn_devnet(&config, &dir, &args);
    let (mut running, refused) = {
        let (mut a, mut b) = (a, b);
        let start = Instant::now();
        loop {
            if a.try_wait().unwrap().is_some() {
                break (b, finish(a));
            }
            if b.try_wait().unwrap().is_some() {
                break (a, finish(b));
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "neither refused"
            );
            thread::sleep(Duration::from_millis(50));
        }
    };
    let (code, _, err) = refused;
    assert_ne!(code, Some(0), "{err}");
    assert!(
        err.contains("is in use by another keel devnet (pid"),
        "{err}"
    );

    // the one that runs: once its prover is ready and a batch of the run is committed, the L1,
    // the standby and the prover are each killed once, and each comes back
    while_running(&mut running, "the prover", Duration::from_secs(300), || {
        ready(&dir, "prover-0").is_none()
    });
    use keel_committer::SettlementLayer;
    let l1 = keel_committer::RpcL1::connect(&ready(&dir, "l1").unwrap().api).unwrap();
    let first = l1.rollup().unwrap().checkpoint.batch;
    while_running(
        &mut running,
        "a batch committed",
        Duration::from_secs(300),
        || l1.rollup().is_ok_and(|v| v.checkpoint.batch == first),
    );
    kill_and_await_restart(&dir, "l1", &mut running);
    let http = reqwest::blocking::Client::new();
    let standby = ["sequencer-0", "sequencer-1"]
        .into_iter()
        .find(|n| {
            let api = ready(&dir, n).unwrap().api;
            http.get(format!("{api}/v1/node"))
                .send()
                .and_then(|r| r.json::<keel_sequencer::node::NodeStatus>())
                .is_ok_and(|s| s.role == keel_sequencer::node::Role::Standby)
        })
        .expect("a standby");
    kill_and_await_restart(&dir, standby, &mut running);
    kill_and_await_restart(&dir, "prover-0", &mut running);

    let (code, s, err) = finish(running);
    assert_eq!(code, Some(0), "{err}");
    assert!(s["batches_committed"].as_u64().unwrap() >= 3, "{s}");
    let mut restarted: Vec<&str> = s["restarts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    restarted.sort();
    let mut want = vec!["l1", standby, "prover-0"];
    want.sort();
    assert_eq!(restarted, want, "{s}");
    for r in s["restarts"].as_array().unwrap() {
        assert!(r["ended"].as_str().unwrap().contains("SIGKILL"), "{s}");
    }
    assert!(err.contains("restarted l1"), "{err}");
    // the directory stays usable: a rerun resumes it
    let (code, s, err) = devnet(&config, &dir, &["--batches", "1"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(s["resumed"], true, "{s}");
}
