//! `keel prover run`: the prover service.

use keel_sequencer::node::ProverStatus;

use super::*;

/// `keel prover run`.
pub(super) fn serve(args: RunArgs) -> anyhow::Result<()> {
    use std::sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    };

    use keel_prover::worker::{self, Event, WorkerConfig};

    let (l1, transcript): (Arc<dyn keel_committer::SettlementLayer>, _) =
        match (&args.l1_rpc, args.evm.connect()?) {
            (Some(url), _) => (
                Arc::new(
                    keel_committer::RpcL1::connect(url)
                        .with_context(|| format!("connecting to the L1 at {url}"))?,
                ),
                keel_prover::Transcript::Blake2b,
            ),
            (None, Some(evm)) => (evm, keel_prover::Transcript::Keccak),
            (None, None) => anyhow::bail!("pass --l1.rpc or --evm.rpc"),
        };
    let view = l1.rollup()?;
    let shape = shape(args.capacity, view.depth, args.k)?;
    check_shape(shape)?;
    let committers = keel_committer::CommitterClient::new(args.committers.clone())?;
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(
        "prover {} (capacity {}, depth {}, k {}): loading keys from {}",
        args.shard,
        shape.capacity,
        shape.depth,
        shape.k,
        args.dir.display()
    );
    let prover = open_prover(&args.dir, shape, &srs(&args.srs), args.gpu, args.gpu_memory)?
        .with_transcript(transcript);
    if let Some(file) = &args.verifier {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        keel_prover::BatchVerifier::from_bytes(&bytes)
            .and_then(|v| v.check_keys(prover.keys()))
            .with_context(|| format!("{}", file.display()))?;
    }

    let status = Arc::new(Mutex::new(ProverStatus {
        backend: prover.backend(),
        shard: args.shard.to_string(),
        ..Default::default()
    }));
    let (started, on_device) = (std::time::Instant::now(), prover.on_device());
    let rt = tokio::runtime::Runtime::new()?;
    let stop = Arc::new(AtomicBool::new(false));
    let addr = listener.local_addr()?;
    {
        let (stop, status) = (stop.clone(), status.clone());
        listener.set_nonblocking(true)?;
        let listener = {
            let _enter = rt.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let app = axum::Router::new().route(
            "/v1/prover",
            axum::routing::get(move || {
                let mut s = status.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let uptime = started.elapsed();
                s.uptime_ms = uptime.as_millis() as u64;
                s.gpu_utilisation = on_device.then(|| {
                    (s.proofs.gpu_busy_ms_total as f64 / uptime.as_millis().max(1) as f64).min(1.0)
                });
                async move { axum::Json(s) }
            }),
        );
        let limits = args.http.limits();
        rt.spawn(async move {
            let served = keel_http::serve(listener, app, limits, async {
                let _ = crate::stop_signal().await;
            });
            if let Err(e) = served.await {
                tracing::error!("serving the status API: {e}");
            }
            stop.store(true, Ordering::Release);
        });
    }
    tracing::info!(
        "prover {} ready ({}): sequencers {:?}, committers {:?}, status on http://{addr}",
        args.shard,
        prover.backend(),
        args.sequencers,
        args.committers,
    );
    args.http.ready("prover", addr)?;
    let mut upstream = keel_node::proving::Remote {
        l1: l1.clone(),
        sequencers: args.sequencers.clone(),
        rt: rt.handle().clone(),
    };
    let mut sink =
        keel_node::proving::ToCommitters(keel_committer::Courier::new(committers, l1.clone()));
    let config = WorkerConfig {
        shard: args.shard,
        ..WorkerConfig::default()
    };
    let edit = |f: &mut dyn FnMut(&mut ProverStatus)| {
        f(&mut status.lock().unwrap_or_else(|p| p.into_inner()));
    };
    worker::run(
        &prover,
        &mut upstream,
        &mut sink,
        config,
        &stop,
        |e| match e {
            Event::Synced(n) => {
                tracing::info!("state rebuilt from the L1 at batch {n}");
                edit(&mut |s| s.synced_at = n.0);
            }
            Event::Following(n) => tracing::debug!("following from batch {n}"),
            Event::Applied(n, mine) => {
                tracing::debug!("batch {n} applied{}", if mine { ", proving" } else { "" });
                edit(&mut |s| s.applied = n.0);
            }
            Event::Proved(n, t) => edit(&mut |s| {
                let busy = t.gpu_busy().unwrap_or_default();
                s.proofs
                    .record(n.0, t.total.as_millis() as u64, busy.as_millis() as u64)
            }),
            Event::Delivered(n) => edit(&mut |s| s.delivered = n.0),
            Event::Trouble(why) => {
                tracing::warn!("{why}");
                edit(&mut |s| s.trouble = Some(why.to_owned()));
            }
        },
    )?;
    tracing::info!("stopped");
    Ok(())
}
