// Compiles one generated contract (Solidity on stdin, e.g. the batch verifier that
// `keel_evm::verifier` generates from a verifying key) with the pinned solc-js, and prints
// { contractName, abi, bytecode, deployedBytecode } as JSON on stdout. Fails, naming the size,
// if the runtime code is over EIP-170's 24,576 bytes. `--optimize` compiles with the optimizer
// (200 runs, as build.mjs does): for the benchmarks' peers.
import fs from "node:fs";
import solc from "solc";

const EIP170 = 24576;
const PINNED = "0.8.19";
if (!solc.version().startsWith(PINNED + "+")) {
  console.error(`solc ${solc.version()} is not the pinned ${PINNED}: run npm ci in contracts/`);
  process.exit(1);
}
const source = fs.readFileSync(0, "utf8");
const input = {
  language: "Solidity",
  sources: { "Generated.sol": { content: source } },
  settings: {
    // without the optimizer, as snark-verifier compiles its verifiers: the Yul optimizer runs the
    // generated assembly's stack past 16 slots ("stack too deep"), and the IR pipeline's memory
    // guard fails the verifier's own check that it owns memory from 0x80
    optimizer: process.argv.includes("--optimize") ? { enabled: true, runs: 200 } : { enabled: false },
    evmVersion: "paris",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors ?? []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const [[name, c]] = Object.entries(output.contracts["Generated.sol"]);
const size = c.evm.deployedBytecode.object.length / 2;
if (size > EIP170) {
  console.error(`${name} is ${size} bytes of runtime code, over EIP-170's ${EIP170}`);
  process.exit(3);
}
process.stdout.write(
  JSON.stringify({ contractName: name, abi: c.abi, bytecode: "0x" + c.evm.bytecode.object, deployedBytecode: "0x" + c.evm.deployedBytecode.object }),
);
