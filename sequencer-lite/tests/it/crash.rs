//! Crash recovery: a sequencer process killed (SIGKILL) under load reopens at exactly the
//! acknowledged state. Every acknowledged operation is present once, nothing is present twice,
//! and the root equals a replay of the logged batches.
//!
//! The sequencer runs in a child process: this test binary re-run with `--ignored --exact
//! crash::child_sequencer_process` and the data directory in `KEEL_CRASH_DIR`.

use std::{
    collections::HashMap,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use keel_sequencer::{api, Client, Sequencer};
use keel_state::{BatchOp, Encode, MemStore, State};

use crate::common::{config, fund, settle, transfer, DEPTH};

const ACCOUNTS: u32 = 8;

/// Not a test: the child process's entry point (see the module docs).
#[test]
#[ignore = "entry point of the crash test's child process"]
fn child_sequencer_process() {
    let Ok(dir) = std::env::var("KEEL_CRASH_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    let seq = Sequencer::open(config(dir)).unwrap();
    fund(&seq, ACCOUNTS);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tmp = dir.join("port.tmp");
        std::fs::write(&tmp, port.to_string()).unwrap();
        std::fs::rename(&tmp, dir.join("port")).unwrap();
        api::serve(seq, listener).await.unwrap();
    });
}

fn start(dir: &Path) -> (Child, Client) {
    let _ = std::fs::remove_file(dir.join("port"));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash::child_sequencer_process",
            "--nocapture",
        ])
        .env("KEEL_CRASH_DIR", dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if let Ok(p) = std::fs::read_to_string(dir.join("port")) {
            return (child, Client::new(format!("http://127.0.0.1:{p}")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the sequencer process did not start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sequencer_reopens_with_every_acknowledged_operation_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, client) = start(dir.path());
    settle(&client).await;

    // four writers, each sending from its own two accounts, as fast as acknowledgements come
    let acked: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4u32 {
        let (client, acked) = (client.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            let mut nonce = [0u64; 2];
            for k in 0.. {
                let from = 2 * w + (k % 2);
                let op = transfer(from, (from + 3) % ACCOUNTS, 1, nonce[(k % 2) as usize]);
                match client.submit(&op).await {
                    Ok(_) => {
                        nonce[(k % 2) as usize] += 1;
                        acked.lock().unwrap().push(BatchOp::L2(op).encode());
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    // kill -9 mid-load, once a few batches are cut
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if acked.lock().unwrap().len() >= 150 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 150);

    let (mut child, client) = start(dir.path());
    let reopened = client.status().await.unwrap();
    let st = settle(&client).await;
    eprintln!(
        "killed after {} acknowledgements; reopened at batch {} with {} operations to re-cut; settled at batch {}",
        acked.len(),
        reopened.last_batch,
        reopened.waiting,
        st.last_batch
    );
    assert!(st.halted.is_none());

    // every batch, from the stream
    let mut stream = client.stream(1).await.unwrap();
    let mut replay = State::open(MemStore::new(), DEPTH).unwrap();
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    for n in 1..=st.last_batch {
        let b = stream.next().await.unwrap().unwrap();
        assert_eq!(b.number.0, n);
        replay.apply_batch(&b).unwrap();
        for op in &b.ops {
            *seen.entry(op.encode()).or_default() += 1;
        }
    }
    assert!(
        seen.values().all(|&c| c == 1),
        "an operation is in two places"
    );
    let lost: Vec<_> = acked.iter().filter(|op| !seen.contains_key(*op)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged operations lost",
        lost.len()
    );
    assert_eq!(
        st.root,
        replay.root().unwrap(),
        "the reopened root is not the replay's"
    );

    // and it goes on: the next nonce of each account is accepted
    let a = client.account(0).await.unwrap();
    client.submit(&transfer(0, 1, 1, a.nonce)).await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
}
