//! Batch proofs: circuit size per operation, proof time per batch on the CPU and on the GPU MSM
//! path (same run, same keys), and each phase's share of the prover's time.
//!
//! `KEEL_PROVE_SHAPES` lists `capacity x depth @ k` shapes (default `1x3@16,2x8@17`).
//! The GPU path runs where an adapter is found (`auto`); on a machine without one it says so.
//! On a software adapter (lavapipe) it runs once, for correctness, and is not timed.
//! `KEEL_GPU=off|auto|require` picks the GPU policy; `KEEL_PROVE_TIMED=0` makes one proof per
//! shape and path (for the phase shares) and skips the criterion loops.
//! The development SRS is used: timings do not depend on the toxic waste.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use keel_prover::{
    gpu::{AdapterClass, GpuContext, GpuPolicy, MsmConfig},
    keys::{kzg_params, BatchKeys, Srs},
    kzg::{cpu_factory, gpu_factory, MsmParams},
    BatchProver, Shape, Timings,
};
use keel_state::{
    test_utils::{funded_state, transfer},
    BatchWitness, Epoch,
};

fn shapes() -> Vec<Shape> {
    let spec = std::env::var("KEEL_PROVE_SHAPES").unwrap_or_else(|_| "1x3@16,2x8@17".into());
    spec.split(',')
        .map(|s| {
            let (nd, k) = s.split_once('@').expect("shape is NxD@k");
            let (n, d) = nd.split_once('x').expect("shape is NxD@k");
            Shape {
                capacity: n.trim().parse().expect("capacity"),
                depth: d.trim().parse().expect("depth"),
                k: k.trim().parse().expect("k"),
            }
        })
        .collect()
}

/// A full batch of transfers between funded accounts.
fn witness(shape: &Shape) -> BatchWitness {
    let accounts = 4u32.min(1 << shape.depth.min(31));
    let mut s = funded_state(shape.depth, accounts, 1 << 40);
    let ops = (0..shape.capacity as u64)
        .map(|n| {
            let from = (n % u64::from(accounts)) as u32;
            let to = (from + 1) % accounts;
            let nonce = n / u64::from(accounts);
            transfer(from, to, 7, nonce)
        })
        .collect();
    s.execute_batch(Epoch(1), ops).expect("valid batch")
}

fn share(t: &Timings) -> String {
    let total = t.total.as_secs_f64();
    let pct = |d: Duration| 100.0 * d.as_secs_f64() / total;
    format!(
        "witness {:.1}% | commitments {:.1}% ({} MSMs) | FFT+quotient {:.1}% | opening {:.1}% | total {:.2} s",
        pct(t.witness),
        pct(t.commitments),
        t.commits,
        pct(t.fft_quotient),
        pct(t.opening),
        total
    )
}

/// Where a slot's cells go: the layout alone (no proof) for a few depths, one and two slots.
/// Cells per operation = cells(N=2) - cells(N=1); the slope over depth is the cost of one tree
/// level (four Merkle paths per operation: two leaves, before and after).
fn layout_sweep() {
    let cells = |capacity, depth| {
        Shape {
            capacity,
            depth,
            k: 17,
        }
        .statistics()
        .advice_cells
    };
    let depths = [3u8, 8, 16, 24];
    let per_op: Vec<usize> = depths.iter().map(|&d| cells(2, d) - cells(1, d)).collect();
    for (d, c) in depths.iter().zip(&per_op) {
        println!("layout: depth {d:>2}: {c} advice cells per operation");
    }
    let levels = f64::from(depths[3] - depths[0]);
    let per_level = (per_op[3] - per_op[0]) as f64 / levels;
    let fixed = per_op[0] as f64 - per_level * f64::from(depths[0]);
    println!(
        "layout: per operation = {fixed:.0} (signature, range checks, hashes, queue) + {per_level:.0} per tree level; \
         at depth 24 the tree is {:.0}% of an operation",
        100.0 * per_level * 24.0 / per_op[3] as f64
    );
}

fn bench(c: &mut Criterion) {
    layout_sweep();
    let policy = match std::env::var("KEEL_GPU").as_deref() {
        Ok("off") => GpuPolicy::Off,
        Ok("require") => GpuPolicy::Require,
        _ => GpuPolicy::Auto,
    };
    // KEEL_PROVE_TIMED=0: one proof per shape and path (phase shares only), no criterion loop
    let timed = std::env::var("KEEL_PROVE_TIMED").map_or(true, |v| v != "0");
    let gpu = match GpuContext::acquire(policy) {
        Ok(Some(ctx)) => Some(ctx),
        Ok(None) => None,
        Err(e) => {
            println!("no GPU path: {e}");
            None
        }
    };
    let software = gpu
        .as_ref()
        .is_some_and(|ctx| ctx.class() == AdapterClass::Software);
    let mut group = c.benchmark_group("prove");
    group.sample_size(10);
    for shape in shapes() {
        let stats = shape.statistics();
        println!(
            "shape N={} D={} k={}: {} advice cells ({} per op), {} lookup cells, {} advice columns, rows {}",
            shape.capacity,
            shape.depth,
            shape.k,
            stats.advice_cells,
            stats.advice_cells / shape.capacity,
            stats.lookup_cells,
            stats.params.num_advice_per_phase[0],
            1u64 << shape.k
        );
        let srs = kzg_params(&Srs::Dev, shape.k).expect("dev SRS");
        let cpu = MsmParams::new(srs.clone(), cpu_factory());
        let keys = BatchKeys::generate(&cpu, shape).expect("keys");
        let w = witness(&shape);
        let mut backends = vec![("cpu", BatchProver::new(cpu, keys.clone()))];
        if let Some(ctx) = &gpu {
            let factory = gpu_factory(ctx.clone(), MsmConfig::default());
            backends.push((
                "gpu",
                BatchProver::new(MsmParams::new(srs, factory), keys.clone()),
            ));
        }
        for (name, prover) in &backends {
            let (proof, t) = prover.prove(&w, |_| {}).expect("proof");
            prover
                .verifier()
                .verify(&proof)
                .expect("the proof verifies");
            println!("  {name} ({}): {}", prover.backend(), share(&t));
            if !timed {
                continue;
            }
            if *name == "gpu" && software {
                // lavapipe shares the CPU's cores: one run shows the path works, a
                // criterion loop of minutes-long proofs would say nothing about GPUs
                println!("  gpu: software adapter, run once for correctness, not timed");
                continue;
            }
            let id = BenchmarkId::new(*name, format!("N{}-D{}", shape.capacity, shape.depth));
            group.bench_with_input(id, &w, |b, w| {
                b.iter(|| prover.prove(w, |_| {}).expect("proof"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
