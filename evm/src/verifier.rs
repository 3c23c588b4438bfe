//! The batch verifier contract, generated from a deployment's KZG parameters and verifying key
//! by snark-verifier, and compiled with the pinned solc-js (`contracts/compile.mjs`).
//!
//! The generated contract reads the six public inputs as 32-byte big-endian words and then the
//! proof (SHPLONK, Keccak transcript: [`keel_circuit::Transcript::Keccak`]), and succeeds only if
//! the proof verifies; the rollup calls it that way (`contracts/src/IBatchVerifier.sol`).
//!
//! **EIP-170.** For Keel's batch circuit the generated verifier is about 30 KB of runtime code,
//! over the 24,576-byte limit, and no compiler setting brings it under: the size is the unrolled
//! gate and opening arithmetic, not the verifying key. [`split`] therefore cuts the generated
//! program in two contracts. The program is straight-line Yul over absolute memory addresses,
//! whose only state between top-level statements is memory and the `success` flag; the cut is at
//! a top-level statement after the proof's last read from calldata. The first contract runs the
//! first half and then calls the second with its memory (`0x80..msize`) and `success`; the second
//! restores them and runs the rest, ending as the original does (revert, or return on success).
//! The rollup calls the first contract, with the unchanged calling convention. The tests check a
//! real proof through the pair, and a tampered one refused.

use std::{
    io::Write,
    process::{Command, Stdio},
    rc::Rc,
};

use halo2_proofs::{
    halo2curves::bn256::{Bn256, Fq, Fr, G1Affine},
    plonk::VerifyingKey,
    poly::{commitment::ParamsProver, kzg::commitment::ParamsKZG},
};
use keel_circuit::PublicInputs;
use snark_verifier::{
    loader::evm::EvmLoader,
    pcs::kzg::{Bdfg21, KzgAs, KzgDecidingKey},
    system::halo2::{compile, transcript::evm::EvmTranscript, Config},
    verifier::{plonk::PlonkVerifier, SnarkVerifier},
};

use crate::contracts::Artifact;

type Shplonk = PlonkVerifier<KzgAs<Bn256, Bdfg21>>;

/// Why a verifier could not be generated or compiled.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    /// snark-verifier could not build the verifier's program for this key.
    #[error("generating the verifier: {0}")]
    Generate(String),
    /// `node` could not be run.
    #[error(
        "running node contracts/compile.mjs (is Node.js installed, and npm ci run in contracts/?)"
    )]
    Node(#[source] std::io::Error),
    /// solc refused the code, or the contract is over EIP-170's limit.
    #[error("compiling the verifier: {0}")]
    Compile(String),
}

/// The verifier's Solidity for `vk` under `params`.
pub fn solidity(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
) -> Result<String, VerifierError> {
    let n = vec![PublicInputs::LEN];
    let protocol = compile(params, vk, Config::kzg().with_num_instance(n.clone()));
    let dk: KzgDecidingKey<Bn256> = (params.get_g()[0], params.g2(), params.s_g2()).into();
    let loader = EvmLoader::new::<Fq, Fr>();
    let protocol = protocol.loaded(&loader);
    let mut transcript = EvmTranscript::<_, Rc<EvmLoader>, _, _>::new(&loader);
    let instances = transcript.load_instances(n);
    let generate = |e: snark_verifier::Error| VerifierError::Generate(format!("{e:?}"));
    let proof =
        Shplonk::read_proof(&dk, &protocol, &instances, &mut transcript).map_err(generate)?;
    Shplonk::verify(&dk, &protocol, &instances, &proof).map_err(generate)?;
    Ok(loader.solidity_code())
}

/// Compiles generated Solidity with the pinned solc-js, refusing code over EIP-170's limit.
pub fn compile_solidity(source: &str) -> Result<Artifact, VerifierError> {
    compile_with(source, false)
}

/// [`compile_solidity`], with the optimizer on when `optimize` (for benchmark peers).
pub fn compile_with(source: &str, optimize: bool) -> Result<Artifact, VerifierError> {
    let script = crate::repo_root().join("contracts/compile.mjs");
    let mut child = Command::new("node")
        .arg(&script)
        .args(optimize.then_some("--optimize"))
        .current_dir(crate::repo_root().join("contracts"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(VerifierError::Node)?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(source.as_bytes())
        .map_err(VerifierError::Node)?;
    let out = child.wait_with_output().map_err(VerifierError::Node)?;
    if !out.status.success() {
        return Err(VerifierError::Compile(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| VerifierError::Compile(e.to_string()))
}

/// The verifier as the contracts to deploy, in deployment order: each but the first takes the
/// address of the one deployed before it as its constructor argument; the rollup calls the last.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
pub struct VerifierContracts {
    /// The compiled parts.
    pub parts: Vec<Artifact>,
}

/// Generates and compiles the verifier for `vk` under `params`: one contract if it fits
/// EIP-170, else the two halves of [`split`].
pub fn generate(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
) -> Result<VerifierContracts, VerifierError> {
    let source = solidity(params, vk)?;
    match compile_solidity(&source) {
        Ok(one) => Ok(VerifierContracts { parts: vec![one] }),
        Err(VerifierError::Compile(e)) if e.contains("EIP-170") => {
            let (first, second) = split(&source)?;
            // the second half is deployed first: the first half names it
            Ok(VerifierContracts {
                parts: vec![compile_solidity(&second)?, compile_solidity(&first)?],
            })
        }
        Err(e) => Err(e),
    }
}

/// Splits snark-verifier's generated verifier into `(first, second)` (see the module docs).
pub fn split(source: &str) -> Result<(String, String), VerifierError> {
    let bad = |why: &str| VerifierError::Generate(format!("cannot split the verifier: {why}"));
    let lines: Vec<&str> = source.lines().collect();
    let open = lines
        .iter()
        .position(|l| l.trim() == "assembly (\"memory-safe\") {")
        .ok_or_else(|| bad("no memory-safe assembly block"))?;
    // brace depth before each line, relative to the inside of the assembly block
    let mut depth = vec![0i64; lines.len() + 1];
    for (i, l) in lines.iter().enumerate() {
        let d = l.matches('{').count() as i64 - l.matches('}').count() as i64;
        depth[i + 1] = depth[i] + d;
    }
    let inside = depth[open + 1];
    let close = (open + 1..lines.len())
        .find(|&i| depth[i + 1] < inside)
        .ok_or_else(|| bad("the assembly block does not close"))?;
    // the prelude: everything up to the end of the last top-level function definition
    let last_fn = (open + 1..close)
        .rfind(|&i| depth[i] == inside && lines[i].trim_start().starts_with("function "))
        .ok_or_else(|| bad("no function definitions"))?;
    let prelude_end = (last_fn..close)
        .find(|&i| depth[i + 1] == inside)
        .ok_or_else(|| bad("a function does not close"))?;
    let body = prelude_end + 1..close;
    let last_read = body
        .clone()
        .filter(|&i| lines[i].contains("calldata"))
        .max()
        .ok_or_else(|| bad("the proof is never read"))?;
    if body.clone().any(|i| lines[i].contains("msize")) {
        return Err(bad("the program reads msize"));
    }
    // cut at a top-level statement after the last calldata read, halving the program's text
    let weight = |r: std::ops::Range<usize>| r.map(|i| lines[i].len()).sum::<usize>();
    let total = weight(body.clone());
    let cut = (last_read + 1..close)
        .filter(|&i| depth[i] == inside)
        .min_by_key(|&i| (weight(body.start..i) as i64 - (total / 2) as i64).abs())
        .ok_or_else(|| bad("no top-level statement after the proof's last read"))?;
    let prelude: Vec<&str> = lines[open + 1..=prelude_end].to_vec();
    if !prelude.iter().any(|l| l.trim() == "let success := true") {
        return Err(bad("no success flag"));
    }
    let join = |ls: &[&str]| ls.join("\n");
    let header = "// SPDX-License-Identifier: MIT\n// GENERATED by snark-verifier, split by keel-evm (evm/src/verifier.rs).\npragma solidity 0.8.19;\n";
    let first = format!(
        "{header}
contract Halo2VerifierFirstHalf {{
    address private immutable secondHalf;

    constructor(address second) {{
        secondHalf = second;
    }}

    fallback(bytes calldata) external returns (bytes memory) {{
        address second = secondHalf;
        assembly (\"memory-safe\") {{
{prelude}
{first_half}
            // hand the memory and the running result to the second half, which finishes
            let end := msize()
            mstore(end, success)
            if iszero(staticcall(gas(), second, 0x80, sub(add(end, 0x20), 0x80), 0, 0)) {{ revert(0, 0) }}
            return(0, 0)
        }}
    }}
}}
",
        prelude = join(&prelude),
        first_half = join(&lines[body.start..cut]),
    );
    let second = format!(
        "{header}
contract Halo2VerifierSecondHalf {{
    fallback(bytes calldata) external returns (bytes memory) {{
        assembly (\"memory-safe\") {{
{prelude}
            // the first half's memory and running result
            calldatacopy(0x80, 0, calldatasize())
            let handed := add(0x80, sub(calldatasize(), 0x20))
            success := and(success, mload(handed))
            mstore(handed, 0)
{rest}
        }}
    }}
}}
",
        prelude = join(&prelude),
        rest = join(&lines[cut..close]),
    );
    Ok((first, second))
}
