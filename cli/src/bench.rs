//! `keel bench`: the prover's stages on this machine's adapter against its CPU, in one run, for
//! anyone with any GPU to reproduce Keel's figures with one command.
//!
//! ```text
//!  MSM   2^lo … 2^hi   Keel's wgpu MSM (bases resident)   vs halo2curves' Pippenger, all cores
//!  NTT   2^lo … 2^hi   Keel's wgpu NTT (values up/back)   vs halo2-axiom's best_fft, all cores
//!  proof one batch     the prover with the GPU MSM path   vs the same prover on the CPU
//! ```
//!
//! Every GPU result is checked against the CPU's before anything is timed, and every proof is
//! verified with halo2-axiom's verifier (`"verified"` in the JSON). On a software adapter
//! (lavapipe) the GPU runs once per measurement, for correctness, and its time is not reported:
//! a speed figure there would say nothing about a GPU. `--quick` uses sizes a 2-core CPU finishes
//! in minutes.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Args;
use halo2_proofs::halo2curves::{
    bn256::{Fr, G1Affine, G1},
    ff::Field,
    group::{Curve, Group},
};
use keel_prover::{
    gpu::{
        ntt::omega, AdapterClass, CpuMsm, CpuNtt, GpuContext, GpuMsm, GpuNtt, GpuPolicy, Msm,
        MsmConfig, Ntt,
    },
    kzg::{gpu_factory, params_for, MsmParams},
    BatchProver, Engine, Shape, Timings,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{json, Value};

/// `keel bench`'s flags.
#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Small sizes a 2-core CPU finishes in minutes (MSM 2^10..2^12, NTT 2^10..2^14, one
    /// transfer at depth 3 in 2^11 rows): a check of the whole path, not a figure.
    #[arg(long)]
    quick: bool,
    /// MSM sizes, log2, `lo..hi` (default 16..20; --quick 10..12).
    #[arg(long = "bench.msm")]
    msm: Option<String>,
    /// NTT sizes, log2, `lo..hi` (default 16..20; --quick 10..14).
    #[arg(long = "bench.ntt")]
    ntt: Option<String>,
    /// The proof's circuit: `fill-D@k` (as many transfers at depth D as 2^k rows hold) or
    /// `NxD@k` (default fill-24@17; --quick 1x3@11).
    #[arg(long = "bench.proof")]
    proof: Option<String>,
    /// Timed runs of each measurement; the median is reported.
    #[arg(long = "bench.runs", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Directory of the circuit's keys (generated there if missing, once per shape).
    #[arg(long = "prover.keys-dir", default_value = crate::prover::DEFAULT_KEYS_DIR)]
    keys_dir: PathBuf,
    /// The adapter: `auto` (the best there is; a software one, such as lavapipe, makes the GPU
    /// side a correctness check), `require` (a hardware adapter, or fail), `software` (any
    /// adapter, lavapipe included, or fail), `off` (the CPU alone).
    #[arg(long = "prover.gpu", default_value = "auto")]
    gpu: GpuPolicy,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

fn range(spec: &str) -> anyhow::Result<std::ops::RangeInclusive<u32>> {
    let (lo, hi) = spec
        .split_once("..")
        .with_context(|| format!("{spec:?}: sizes are lo..hi, e.g. 16..20"))?;
    let (lo, hi): (u32, u32) = (lo.parse()?, hi.parse()?);
    anyhow::ensure!(
        (1..=28).contains(&lo) && lo <= hi && hi <= 28,
        "{spec:?}: sizes are log2 in 1..=28, lo ≤ hi"
    );
    Ok(lo..=hi)
}

fn parse_shape(spec: &str) -> anyhow::Result<Shape> {
    let shape: Shape = spec.parse()?;
    crate::prover::keys::check_shape(shape)?;
    Ok(shape)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The median of `runs` timed runs of `f`.
fn timed(runs: u32, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed());
    }
    Ok(median(times))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A row of the table: CPU and GPU times (the GPU's `None` when not timed) and their ratio.
fn row(stage: &str, size: String, cpu: Duration, gpu: Option<Duration>, checked: bool) -> Value {
    json!({
        "stage": stage,
        "size": size,
        "cpu_ms": ms(cpu),
        "gpu_ms": gpu.map(ms),
        "speedup": gpu.map(|g| cpu.as_secs_f64() / g.as_secs_f64()),
        "gpu_equals_cpu": checked,
    })
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
}

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (msm_sizes, ntt_sizes, shape) = (
        range(
            args.msm
                .as_deref()
                .unwrap_or(if args.quick { "10..12" } else { "16..20" }),
        )?,
        range(
            args.ntt
                .as_deref()
                .unwrap_or(if args.quick { "10..14" } else { "16..20" }),
        )?,
        parse_shape(args.proof.as_deref().unwrap_or(if args.quick {
            "1x3@11"
        } else {
            "fill-24@17"
        }))?,
    );
    let ctx = GpuContext::acquire(args.gpu).context("opening the GPU")?;
    let software = ctx
        .as_ref()
        .is_some_and(|c| c.class() == AdapterClass::Software);
    let say = |line: String| {
        if !args.json {
            eprintln!("{line}");
        }
    };
    let machine = json!({
        "adapter": ctx.as_ref().map(|c| c.describe()),
        "software_adapter": software,
        "cpu": cpu_model(),
        "cpu_threads": rayon::current_num_threads(),
        "date": chrono_like_now(),
    });
    say(format!(
        "keel bench on {} ({} threads); adapter: {}",
        machine["cpu"].as_str().unwrap_or("?"),
        rayon::current_num_threads(),
        ctx.as_ref().map_or("none".into(), |c| c.describe())
    ));
    if software {
        say("a software adapter: the GPU runs once per measurement, for correctness; its times are not reported".into());
    }
    let timed_gpu =
        |f: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<Option<Duration>> {
            if software {
                f()?;
                Ok(None)
            } else {
                Ok(Some(timed(args.runs, f)?))
            }
        };
    let mut rows = Vec::new();
    let mut rng = ChaCha20Rng::seed_from_u64(1);

    // MSM, bases resident on both sides
    let n_max = 1usize << msm_sizes.end();
    let step = G1::random(&mut rng);
    let mut p = G1::random(&mut rng);
    let projective: Vec<G1> = (0..n_max)
        .map(|_| {
            p += step;
            p
        })
        .collect();
    let mut bases = vec![G1Affine::default(); n_max];
    G1::batch_normalize(&projective, &mut bases);
    let cpu_msm = CpuMsm::new(&bases);
    let gpu_msm = match &ctx {
        Some(c) => Some(GpuMsm::new(c.clone(), &bases, MsmConfig::default())?),
        None => None,
    };
    for log in msm_sizes {
        let scalars: Vec<Fr> = (0..1usize << log).map(|_| Fr::random(&mut rng)).collect();
        let want = cpu_msm.msm(&scalars)?;
        let cpu = timed(args.runs, || Ok(cpu_msm.msm(&scalars).map(|_| ())?))?;
        let (gpu, checked) = match &gpu_msm {
            Some(g) => {
                anyhow::ensure!(
                    g.msm(&scalars)? == want,
                    "the GPU MSM differs from the CPU's at 2^{log}"
                );
                (timed_gpu(&mut || Ok(g.msm(&scalars).map(|_| ())?))?, true)
            }
            None => (None, false),
        };
        say(format!(
            "msm 2^{log}: cpu {:.1} ms, gpu {}",
            ms(cpu),
            gpu.map_or("-".into(), |g| format!("{:.1} ms", ms(g)))
        ));
        rows.push(row("msm", format!("2^{log}"), cpu, gpu, checked));
    }
    drop((cpu_msm, gpu_msm, bases, projective));

    // NTT, values up and back on the GPU
    let cpu_ntt = CpuNtt::new();
    let gpu_ntt = match &ctx {
        Some(c) => Some(GpuNtt::new(c.clone(), c.preferred_limbs())?),
        None => None,
    };
    for log in ntt_sizes {
        let a: Vec<Fr> = (0..1usize << log).map(|_| Fr::random(&mut rng)).collect();
        let w = omega(log);
        let mut want = a.clone();
        cpu_ntt.forward(&mut want, w, log)?;
        let cpu = timed(args.runs, || {
            let mut b = a.clone();
            Ok(cpu_ntt.forward(&mut b, w, log)?)
        })?;
        let (gpu, checked) = match &gpu_ntt {
            Some(g) => {
                let mut got = a.clone();
                g.forward(&mut got, w, log)?;
                anyhow::ensure!(got == want, "the GPU NTT differs from the CPU's at 2^{log}");
                (
                    timed_gpu(&mut || {
                        let mut b = a.clone();
                        Ok(g.forward(&mut b, w, log)?)
                    })?,
                    true,
                )
            }
            None => (None, false),
        };
        say(format!(
            "ntt 2^{log}: cpu {:.2} ms, gpu {}",
            ms(cpu),
            gpu.map_or("-".into(), |g| format!("{:.2} ms", ms(g)))
        ));
        rows.push(row("ntt", format!("2^{log}"), cpu, gpu, checked));
    }

    // one batch proof on each path, every proof verified
    say(format!(
        "proof: {} transfers at depth {} in 2^{} rows (keys in {})",
        shape.capacity,
        shape.depth,
        shape.k,
        args.keys_dir.display()
    ));
    let (params, keys, _) =
        crate::prover::keys::load_keys(&args.keys_dir, shape, &keel_prover::keys::Srs::Dev)?;
    let w = keel_prover::sample_witness(&shape)?;
    let cpu_params = params_for(params.clone(), GpuPolicy::Off)?;
    let mut provers = vec![
        (
            "halo2",
            BatchProver::new(cpu_params.clone(), keys.clone()).with_engine(Engine::Halo2),
        ),
        ("cpu", BatchProver::new(cpu_params, keys.clone())),
    ];
    if let Some(c) = &ctx {
        let factory = gpu_factory(c.clone(), MsmConfig::default());
        let params = MsmParams::new(params, factory)
            .with_device_kernels(c)
            .context("the GPU NTT and quotient kernels")?
            .required(true);
        provers.push(("gpu", BatchProver::new(params, keys)));
    }
    let mut proofs = Vec::new();
    let mut cpu_time = Duration::ZERO;
    let mut peer_time = Duration::ZERO;
    for (name, prover) in &provers {
        let (proof, first) = prover.prove(&w, |_| {})?;
        let verified = prover.verifier().verify(&proof).is_ok();
        anyhow::ensure!(verified, "the {name} path's proof does not verify");
        let time = if *name == "gpu" && software {
            None
        } else {
            let mut last: Option<Timings> = None;
            let t = timed(args.runs, || {
                let (proof, t) = prover.prove(&w, |_| {})?;
                anyhow::ensure!(
                    prover.verifier().verify(&proof).is_ok(),
                    "a {name} proof does not verify"
                );
                last = Some(t);
                Ok(())
            })?;
            Some((t, last.unwrap_or(first)))
        };
        let stages = |t: &Timings| {
            let mut v = json!({
                "witness_ms": ms(t.witness), "commitments_ms": ms(t.commitments), "commitments": t.commits,
                "fft_quotient_ms": ms(t.fft_quotient), "opening_ms": ms(t.opening),
                "cpu_fallbacks": t.fallbacks,
            });
            if let Some(s) = &t.stages {
                v["keel"] = json!({
                    "witness_and_advice_ms": ms(s.witness), "synthesis_ms": ms(s.synthesis),
                    "lookups_ms": ms(s.lookups),
                    "products_ms": ms(s.products), "quotient_ms": ms(s.quotient),
                    "vanishing_ms": ms(s.vanishing), "evaluations_ms": ms(s.evaluations),
                    "opening_ms": ms(s.opening), "ntts": s.backend.ntts,
                    "ntt_ms": ms(s.backend.ntt), "msms": s.backend.msms, "msm_ms": ms(s.backend.msm),
                    "gate_parts_on_device": s.backend.quotients, "gates_on_device_ms": ms(s.backend.quotient),
                    "bytes_to_device": s.backend.bytes_up, "bytes_from_device": s.backend.bytes_down,
                    // the time with work in flight on the device, and its share of the proof
                    "gpu_busy_ms": s.backend.busy.map(ms), "gpu_utilisation": s.utilisation(),
                });
            }
            v
        };
        if *name == "cpu" {
            cpu_time = time.as_ref().map_or(first.total, |(t, _)| *t);
        }
        if *name == "halo2" {
            peer_time = time.as_ref().map_or(first.total, |(t, _)| *t);
        }
        let total = time.as_ref().map(|(t, _)| *t);
        // Keel's provers again, as a prover service runs: each batch laid out while the
        // previous one is proven
        let pipelined = match total {
            Some(one) if *name != "halo2" => {
                let batches = vec![w.clone(); args.runs.max(2) as usize];
                let p = prover.prove_pipelined(&batches)?;
                for proof in &p.proofs {
                    anyhow::ensure!(
                        prover.verifier().verify(proof).is_ok(),
                        "a pipelined {name} proof does not verify"
                    );
                }
                let proofs = p.proofs.len() as f64;
                let secs = p.wall.as_secs_f64();
                say(format!(
                    "pipelined on {name}: {} proofs in {secs:.2} s, {:.3} transfers/s, {:.2}× one at a time{}",
                    p.proofs.len(),
                    proofs * shape.capacity as f64 / secs,
                    proofs * one.as_secs_f64() / secs,
                    p.utilisation()
                        .map_or(String::new(), |u| format!(", GPU busy {:.0}% of the time", u * 100.0))
                ));
                Some(json!({
                    "proofs": p.proofs.len(),
                    "seconds": secs,
                    "transfers_per_s": proofs * shape.capacity as f64 / secs,
                    // against the same proofs made one at a time (the median above)
                    "over_sequential": proofs * one.as_secs_f64() / secs,
                    "gpu_busy_ms": p.busy.map(ms),
                    "gpu_utilisation": p.utilisation(),
                }))
            }
            _ => None,
        };
        say(format!(
            "proof on {name} ({}): {}, verified",
            prover.backend(),
            total.map_or("run once, not timed".into(), |t| format!(
                "{:.2} s, {:.3} transfers/s",
                t.as_secs_f64(),
                shape.capacity as f64 / t.as_secs_f64()
            ))
        ));
        proofs.push(json!({
            "backend": name,
            "engine": prover.backend(),
            "verified": verified,
            // where each kind of Keel's prover's work ran (null for halo2-axiom's)
            "placement": prover.placement(),
            "seconds": total.map(|t| t.as_secs_f64()),
            "transfers_per_s": total.map(|t| shape.capacity as f64 / t.as_secs_f64()),
            // Keel's CPU prover against halo2-axiom's; the GPU against Keel's CPU
            "speedup": total.and_then(|t| match *name {
                "cpu" => Some(peer_time.as_secs_f64() / t.as_secs_f64()),
                "gpu" => Some(cpu_time.as_secs_f64() / t.as_secs_f64()),
                _ => None,
            }),
            "speedup_over": match *name { "cpu" => Some("halo2"), "gpu" => Some("cpu"), _ => None },
            // a run that is not timed has no stage times to report either
            "stages": time.as_ref().map(|(_, t)| stages(t)),
            "pipelined": pipelined,
            // what a proof needs on the device by the plan, and the most seen in use
            "device_memory": match (prover.device_memory()?, &ctx) {
                (Some(plan), Some(c)) => Some(json!({
                    "planned": plan, "planned_bytes": plan.total(), "peak_bytes": c.memory_peak(),
                })),
                _ => None,
            },
        }));
    }
    let report = json!({
        "machine": machine,
        "runs": args.runs,
        "rows": rows,
        "proof": {
            "shape": {"capacity": shape.capacity, "depth": shape.depth, "k": shape.k},
            "backends": proofs,
        },
        "note": if software {
            "a software adapter: GPU results are checked against the CPU, not timed"
        } else if ctx.is_none() {
            "no adapter: the CPU alone"
        } else {
            "GPU times include moving the values to the device and back; MSM bases are resident"
        },
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(r: &Value) {
    let m = &r["machine"];
    println!(
        "machine: {} ({} threads) | adapter: {}",
        m["cpu"].as_str().unwrap_or("?"),
        m["cpu_threads"],
        m["adapter"].as_str().unwrap_or("none")
    );
    println!(
        "{:<6} {:>6} {:>12} {:>12} {:>8}",
        "stage", "size", "cpu ms", "gpu ms", "speedup"
    );
    for row in r["rows"].as_array().into_iter().flatten() {
        let gpu = row["gpu_ms"]
            .as_f64()
            .map_or("-".into(), |g| format!("{g:.2}"));
        let ratio = row["speedup"]
            .as_f64()
            .map_or("-".into(), |s| format!("{s:.2}×"));
        println!(
            "{:<6} {:>6} {:>12.2} {:>12} {:>8}",
            row["stage"].as_str().unwrap_or(""),
            row["size"].as_str().unwrap_or(""),
            row["cpu_ms"].as_f64().unwrap_or(0.0),
            gpu,
            ratio
        );
    }
    let s = &r["proof"]["shape"];
    for b in r["proof"]["backends"].as_array().into_iter().flatten() {
        let st = &b["stages"];
        let keel = &st["keel"];
        let stages = if st.is_null() {
            String::new()
        } else if !keel.is_null() {
            let f = |k: &str| keel[k].as_f64().unwrap_or(0.0);
            format!(
                " (witness+advice {:.0} ms, lookups {:.0}, products {:.0}, quotient {:.0}, vanishing {:.0}, evaluations {:.0}, opening {:.0}; {} NTTs, {} MSMs, gates of {} parts on the device)",
                f("witness_and_advice_ms"),
                f("lookups_ms"),
                f("products_ms"),
                f("quotient_ms"),
                f("vanishing_ms"),
                f("evaluations_ms"),
                f("opening_ms"),
                keel["ntts"],
                keel["msms"],
                keel["gate_parts_on_device"],
            )
        } else {
            format!(
                " (witness {:.0} ms, commitments {:.0} ms, FFT+quotient {:.0} ms, opening {:.0} ms)",
                st["witness_ms"].as_f64().unwrap_or(0.0),
                st["commitments_ms"].as_f64().unwrap_or(0.0),
                st["fft_quotient_ms"].as_f64().unwrap_or(0.0),
                st["opening_ms"].as_f64().unwrap_or(0.0),
            )
        };
        println!(
            "proof  N={} D={} k={} on {}: {}{stages}, verified: {}",
            s["capacity"],
            s["depth"],
            s["k"],
            b["engine"].as_str().unwrap_or(""),
            b["seconds"]
                .as_f64()
                .map_or("not timed".into(), |t| format!(
                    "{t:.2} s, {:.3} transfers/s{}",
                    b["transfers_per_s"].as_f64().unwrap_or(0.0),
                    b["speedup"]
                        .as_f64()
                        .zip(b["speedup_over"].as_str())
                        .map_or(String::new(), |(x, over)| format!(
                            ", {x:.2}× {}",
                            if over == "halo2" {
                                "halo2-axiom's create_proof"
                            } else {
                                "Keel on the CPU"
                            }
                        ))
                )),
            b["verified"],
        );
        let p = &b["pipelined"];
        if !p.is_null() {
            println!(
                "       pipelined (each batch laid out while the previous one is proven): {} proofs in {:.2} s, {:.3} transfers/s, {:.2}× one at a time{}",
                p["proofs"],
                p["seconds"].as_f64().unwrap_or(0.0),
                p["transfers_per_s"].as_f64().unwrap_or(0.0),
                p["over_sequential"].as_f64().unwrap_or(0.0),
                p["gpu_utilisation"]
                    .as_f64()
                    .map_or(String::new(), |u| format!("; GPU busy {:.0}% of the time", u * 100.0))
            );
        }
        let m = &b["device_memory"];
        if !m.is_null() {
            let mib = |v: &Value| v.as_u64().unwrap_or(0) as f64 / f64::from(1 << 20);
            println!(
                "       device memory: {:.1} MiB planned a proof (bases {:.1}, tables {:.1}, key {:.1}, working {:.1}); {:.1} MiB the most in use",
                mib(&m["planned_bytes"]),
                mib(&m["planned"]["bases"]),
                mib(&m["planned"]["tables"]),
                mib(&m["planned"]["key"]),
                mib(&m["planned"]["working"]),
                mib(&m["peak_bytes"]),
            );
        }
        let at = &b["placement"];
        if !at.is_null() {
            let on = |k: &str| at[k].as_str().unwrap_or("?").to_owned();
            println!(
                "       NTT on {}; MSM on {}; quotient on {}; opening on {}; the rest on {}",
                on("ntt"),
                on("msm"),
                on("quotient"),
                on("opening"),
                on("arithmetic")
            );
        }
    }
    println!("{}", r["note"].as_str().unwrap_or(""));
}

/// The UTC date and time, `YYYY-MM-DDTHH:MM:SSZ`, from the system clock.
fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // days since 1970-01-01 to a civil date (Howard Hinnant's algorithm)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
