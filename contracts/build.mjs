// Compiles Keel's contracts with the pinned solc-js (package.json) into out/<Contract>.json
// ({ abi, bytecode, deployedBytecode }), and checks every deployable contract against EIP-170's
// 24,576-byte limit. `--check` compiles and fails if out/ differs from what is committed, so the
// artifacts that the Rust bindings read cannot drift from the sources.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const root = path.dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes("--check");
const EIP170 = 24576;
const PINNED = "0.8.19";

if (!solc.version().startsWith(PINNED + "+")) {
  console.error(`solc ${solc.version()} is not the pinned ${PINNED}: run npm ci in contracts/`);
  process.exit(1);
}

const sources = {};
for (const dir of ["src", "src/generated", "test"]) {
  for (const f of fs.readdirSync(path.join(root, dir)).sort()) {
    if (f.endsWith(".sol")) {
      const rel = `${dir}/${f}`;
      sources[rel] = { content: fs.readFileSync(path.join(root, rel), "utf8") };
    }
  }
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "paris",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
let failed = false;
for (const e of output.errors ?? []) {
  if (e.severity === "error") failed = true;
  console.error(e.formattedMessage);
}
if (failed) process.exit(1);

const outDir = path.join(root, "out");
fs.mkdirSync(outDir, { recursive: true });
const stale = [];
const sizes = [];
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    const deployed = c.evm.deployedBytecode.object;
    // interfaces, and libraries of internal functions (inlined into their users)
    if (!deployed || c.abi.length === 0) continue;
    const size = deployed.length / 2;
    sizes.push([name, size]);
    if (size > EIP170) {
      console.error(`${name} (${file}) is ${size} bytes, over EIP-170's ${EIP170}`);
      failed = true;
    }
    const artifact = JSON.stringify(
      { contractName: name, sourceName: file, compiler: solc.version(), abi: c.abi, bytecode: "0x" + c.evm.bytecode.object, deployedBytecode: "0x" + deployed },
      null,
      1,
    ) + "\n";
    const target = path.join(outDir, `${name}.json`);
    if (check) {
      if (!fs.existsSync(target) || fs.readFileSync(target, "utf8") !== artifact) stale.push(name);
    } else {
      fs.writeFileSync(target, artifact);
    }
  }
}
for (const [name, size] of sizes) console.log(`${name.padEnd(16)} ${String(size).padStart(6)} bytes (EIP-170: ${EIP170})`);
if (stale.length) {
  console.error(`out/ is stale for ${stale.join(", ")}: run \`node contracts/build.mjs\` and commit out/`);
  failed = true;
}
process.exit(failed ? 1 : 0);
