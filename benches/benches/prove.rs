//! Batch proofs: the circuit's layout per operation, and proven throughput (transfers per second)
//! of full batches by Keel's prover on the CPU backend and on the GPU backend, against
//! halo2-axiom's `create_proof` on the same circuit, keys and CPU (the peer), in one run, with
//! the time of each stage.
//!
//! `KEEL_PROVE_SHAPES` lists shapes, comma-separated: `NxD@k`, or `fill-D@k` (the largest
//! capacity `2^k` rows hold at depth `D`), or `NxD` (the smallest `k` that holds it). The default,
//! `fill-24@17`, is a full batch at the depth. Each shape is proven `KEEL_PROVE_RUNS`
//! times (default 3) on each path after one untimed proof (which also prepares Keel's key coset
//! values), the paths taking turns run by run; the line printed names the median, transfers per
//! second (`N / median`) and seconds per transfer, and the ratio line halo2's median over Keel's.
//!
//! The GPU path runs where an adapter is found (`auto`); on a machine without one it says so. On a
//! software adapter (lavapipe) it runs once, for correctness, and is not timed.
//! `KEEL_GPU=off|auto|require` picks the GPU policy. The development SRS is used: timings do not
//! depend on the toxic waste.
//!
//! The peer, the circuit before its custom gates (halo2-base, commit 765a037), is measured by
//! `scripts/prove-peer`, which builds that commit's version of this bench and runs it at the same
//! depth in the same session.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use keel_prover::{
    gpu::{AdapterClass, GpuContext, GpuPolicy, MsmConfig},
    keys::{kzg_params, BatchKeys, Srs},
    kzg::{cpu_factory, gpu_factory, MsmParams},
    sample_witness, BatchProver, Engine, Shape, Timings,
};

fn shapes() -> Vec<Shape> {
    let spec = std::env::var("KEEL_PROVE_SHAPES").unwrap_or_else(|_| "fill-24@17".into());
    spec.split(',')
        .map(|s| s.parse().expect("KEEL_PROVE_SHAPES"))
        .collect()
}

fn share(t: &Timings) -> String {
    let total = t.total.as_secs_f64();
    let pct = |d: Duration| 100.0 * d.as_secs_f64() / total;
    if let Some(s) = &t.stages {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        return format!(
            "layout {:.0} ms | synthesis {:.0} | witness+advice {:.0} (synthesis included) | lookups {:.0} | products {:.0} | quotient {:.0} | vanishing {:.0} | evaluations {:.0} | opening {:.0} ms; backend: {} NTTs {:.0} ms, {} MSMs {:.0} ms (thread-summed), gates of {} parts on the device {:.0} ms, {:.1} MiB to the device and {:.1} MiB back, {} redone on the CPU{}",
            ms(t.witness.saturating_sub(s.witness)),
            ms(s.synthesis),
            ms(s.witness),
            ms(s.lookups),
            ms(s.products),
            ms(s.quotient),
            ms(s.vanishing),
            ms(s.evaluations),
            ms(s.opening),
            s.backend.ntts,
            ms(s.backend.ntt),
            s.backend.msms,
            ms(s.backend.msm),
            s.backend.quotients,
            ms(s.backend.quotient),
            s.backend.bytes_up as f64 / (1 << 20) as f64,
            s.backend.bytes_down as f64 / (1 << 20) as f64,
            s.backend.fallbacks,
            s.utilisation().map_or(String::new(), |u| format!(
                "; GPU busy {:.0} ms, {:.0}% of the proof",
                ms(s.backend.busy.unwrap_or_default()),
                100.0 * u
            )),
        );
    }
    format!(
        "witness {:.1}% | commitments {:.1}% ({} MSMs) | FFT+quotient {:.1}% | opening {:.1}%",
        pct(t.witness),
        pct(t.commitments),
        t.commits,
        pct(t.fft_quotient),
        pct(t.opening),
    )
}

/// The layout of one operation at several depths, from the circuit itself.
fn layout_sweep() {
    for depth in [3u8, 8, 16, 24, 26] {
        let s = Shape::per_operation(depth);
        let by: Vec<String> = s.rows_by.iter().map(|(g, r)| format!("{g} {r}")).collect();
        println!(
            "layout: depth {depth:>2}: {} advice cells per operation ({} rows × {} columns; {} glue rows; {})",
            s.advice_cells,
            s.rows,
            s.advice_columns,
            s.glue_rows,
            by.join(", ")
        );
    }
    let s = Shape::per_operation(24);
    println!(
        "layout: {} advice, {} fixed columns, {} lookup argument(s) over a {}-row table, degree {}",
        s.advice_columns, s.fixed_columns, s.lookups, s.table_rows, s.degree
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench(_: &mut Criterion) {
    layout_sweep();
    let policy = match std::env::var("KEEL_GPU").as_deref() {
        Ok("off") => GpuPolicy::Off,
        Ok("require") => GpuPolicy::Require,
        _ => GpuPolicy::Auto,
    };
    let runs: usize = std::env::var("KEEL_PROVE_RUNS")
        .ok()
        .map_or(3, |v| v.parse().expect("KEEL_PROVE_RUNS is a number"));
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
    for shape in shapes() {
        let stats = shape.statistics();
        println!(
            "shape N={} D={} k={}: {} of {} rows used ({} per operation), {} advice × {} fixed columns, degree {}",
            shape.capacity,
            shape.depth,
            shape.k,
            stats.rows,
            1u64 << shape.k,
            stats.rows / shape.capacity,
            stats.advice_columns,
            stats.fixed_columns,
            stats.degree,
        );
        let srs = kzg_params(&Srs::Dev, shape.k).expect("dev SRS");
        let cpu = MsmParams::new(srs.clone(), cpu_factory());
        let started = Instant::now();
        let keys = BatchKeys::generate(&cpu, shape).expect("keys");
        println!(
            "  keys generated in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let w = sample_witness(&shape).expect("a full batch");
        let mut backends = vec![
            (
                "halo2",
                BatchProver::new(cpu.clone(), keys.clone()).with_engine(Engine::Halo2),
            ),
            ("keel-cpu", BatchProver::new(cpu, keys.clone())),
        ];
        if let Some(ctx) = &gpu {
            let factory = gpu_factory(ctx.clone(), MsmConfig::default());
            let mut params = MsmParams::new(srs, factory);
            match params.clone().with_device_kernels(ctx) {
                Ok(p) => params = p,
                Err(e) => println!("  no GPU NTT or quotient ({e}): those stay on the CPU"),
            }
            backends.push(("keel-gpu", BatchProver::new(params, keys.clone())));
        }
        let mut timed = Vec::new();
        for (name, prover) in &backends {
            let (proof, t) = prover.prove(&w, |_| {}).expect("proof");
            prover
                .verifier()
                .verify(&proof)
                .expect("the proof verifies");
            println!(
                "  {name} ({}): first proof {:.2} s: {}",
                prover.backend(),
                t.total.as_secs_f64(),
                share(&t)
            );
            if *name == "keel-gpu" && software {
                println!("  keel-gpu: software adapter, run once for correctness, not timed");
                continue;
            }
            timed.push((*name, prover, Vec::new()));
        }
        for _ in 0..runs {
            for (name, prover, times) in &mut timed {
                let (_, t) = prover.prove(&w, |_| {}).expect("proof");
                println!("  {name}: {:.2} s: {}", t.total.as_secs_f64(), share(&t));
                times.push(t.total.as_secs_f64());
            }
        }
        let mut medians = Vec::new();
        for (name, _, times) in &timed {
            let m = median(times.clone());
            medians.push((*name, m));
            let shown: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
            println!(
                "prove/{name}/N{}-D{}-k{}: median {m:.2} s of [{}]: {:.3} transfers/s, {:.3} s per transfer",
                shape.capacity,
                shape.depth,
                shape.k,
                shown.join(", "),
                shape.capacity as f64 / m,
                m / shape.capacity as f64,
            );
        }
        // Keel's provers as a prover service runs them: each batch laid out while the previous
        // one is proven, against the same proofs one at a time
        let mut pipelined = Vec::new();
        for (name, prover, times) in &timed {
            if *name == "halo2" {
                continue;
            }
            let batches = vec![w.clone(); runs.max(2)];
            let p = prover.prove_pipelined(&batches).expect("pipelined proofs");
            for proof in &p.proofs {
                prover.verifier().verify(proof).expect("the proof verifies");
            }
            let one = median(times.clone());
            let secs = p.wall.as_secs_f64();
            let rate = (batches.len() * shape.capacity) as f64 / secs;
            println!(
                "pipelined/{name}/N{}-D{}-k{}: {} proofs in {secs:.2} s: {rate:.3} transfers/s, {:.2}× one at a time{}",
                shape.capacity,
                shape.depth,
                shape.k,
                batches.len(),
                batches.len() as f64 * one / secs,
                p.utilisation().map_or(String::new(), |u| format!(
                    "; GPU busy {:.0}% of the time",
                    100.0 * u
                )),
            );
            if let (Ok(Some(plan)), Some(ctx)) = (prover.device_memory(), &gpu) {
                let mib = |b: u64| b as f64 / (1 << 20) as f64;
                println!(
                    "  {name}: device memory {:.0} MiB planned a proof (bases {:.0}, tables {:.0}, key {:.0}, working {:.0}), {:.0} MiB the most in use",
                    mib(plan.total()),
                    mib(plan.bases),
                    mib(plan.tables),
                    mib(plan.key),
                    mib(plan.working),
                    mib(ctx.memory_peak()),
                );
            }
            pipelined.push((*name, rate));
        }
        if let [("keel-cpu", cpu), ("keel-gpu", gpu)] = pipelined[..] {
            println!(
                "ratio/pipelined: Keel GPU {gpu:.3} transfers/s / Keel CPU {cpu:.3} transfers/s = {:.2}×",
                gpu / cpu
            );
        }
        let of = |n: &str| medians.iter().find(|(m, _)| *m == n).map(|(_, t)| *t);
        if let (Some(peer), Some(keel)) = (of("halo2"), of("keel-cpu")) {
            println!(
                "ratio/N{}-D{}-k{}: halo2-axiom create_proof {peer:.2} s / Keel's prover on the CPU {keel:.2} s = {:.2}×",
                shape.capacity,
                shape.depth,
                shape.k,
                peer / keel
            );
        }
        if let (Some(cpu), Some(gpu)) = (of("keel-cpu"), of("keel-gpu")) {
            println!(
                "ratio: Keel CPU {cpu:.2} s / Keel GPU {gpu:.2} s = {:.2}×",
                cpu / gpu
            );
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
