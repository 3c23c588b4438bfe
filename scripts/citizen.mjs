#!/usr/bin/env node
// A client of Keel's sequencer API in plain JavaScript: Node's standard library only, nothing of
// Keel's. It shows what an app in any language does (docs/api.md): it builds an operation's
// message and encoding from its fields, signs it (Schnorr over Grumpkin with Keel's Poseidon,
// from the parameters in docs/signing-params.json), and posts it as JSON.
//
//   node scripts/citizen.mjs vectors docs/op-vectors.json
//       recomputes, from each vector's fields alone, the message its signature covers and the
//       operation's canonical encoding, compares them byte for byte, and verifies the signature
//       with the vector's public key
//   node scripts/citizen.mjs pubkey KEY_FILE
//       the public key of a key file (64 hex digits, as `keel key new` writes it)
//   node scripts/citizen.mjs sign KEY_FILE transfer FROM TO AMOUNT NONCE
//   node scripts/citizen.mjs sign KEY_FILE withdraw FROM RECIPIENT AMOUNT NONCE
//       prints the signed operation's JSON body
//   node scripts/citizen.mjs submit http://127.0.0.1:7545 BODY.json [WAIT]
//       posts a signed operation's JSON body to POST /v1/ops and prints the answer; exits 1 on a
//       refusal
//   node scripts/citizen.mjs raw http://127.0.0.1:7545 'TEXT'
//       posts TEXT as the body as it is (to see a refusal), and prints the answer

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// ---------------------------------------------------------------- the signature scheme

const PARAMS = JSON.parse(readFileSync(
  join(dirname(fileURLToPath(import.meta.url)), "../docs/signing-params.json"), "utf8"));
const R = BigInt(PARAMS.fr_modulus);       // BN254's scalar field: Grumpkin's base field
const Q = BigInt(PARAMS.scalar_modulus);   // Grumpkin's scalar field (BN254's base field)
const B = (R + BigInt(PARAMS.curve_b)) % R; // y² = x³ + b
const G = { x: BigInt(PARAMS.generator.x), y: BigInt(PARAMS.generator.y) };
const P = PARAMS.poseidon;
const RC = P.round_constants.map((r) => r.map(BigInt));
const MDS = P.mds.map((r) => r.map(BigInt));

const mod = (a, m) => ((a % m) + m) % m;
function inv(a, m) {
  // extended Euclid: a⁻¹ mod m for a ≠ 0
  let [r0, r1, s0, s1] = [mod(a, m), m, 1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1, s0, s1] = [r1, r0 - q * r1, s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new Error("no inverse");
  return mod(s0, m);
}
const pow5 = (x) => { const x2 = x * x % R; return x2 * x2 % R * x % R; };

// The textbook permutation: per round, add its constants, the S-box (every element in a full
// round, the first in a partial one), then the MDS matrix.
function permute(s) {
  const half = P.full_rounds / 2;
  for (let r = 0; r < RC.length; r++) {
    s = s.map((x, i) => (x + RC[r][i]) % R);
    const full = r < half || r >= half + P.partial_rounds;
    s = s.map((x, i) => (full || i === 0 ? pow5(x) : x));
    s = MDS.map((row) => row.reduce((acc, m, j) => (acc + m * s[j]) % R, 0n));
  }
  return s;
}

// sponge(domain, m₁ … mₙ): the capacity names the domain and the length; two inputs per
// permutation; the output is element 1.
function sponge(domain, inputs) {
  let s = [(BigInt(domain) << 32n) + BigInt(inputs.length), 0n, 0n];
  for (let i = 0; i < inputs.length; i += 2) {
    s[1] = (s[1] + inputs[i]) % R;
    if (i + 1 < inputs.length) s[2] = (s[2] + inputs[i + 1]) % R;
    s = permute(s);
  }
  return s[1];
}

// Grumpkin points in affine coordinates; null is the identity.
function add(p, q) {
  if (p === null) return q;
  if (q === null) return p;
  let l;
  if (p.x === q.x) {
    if (mod(p.y + q.y, R) === 0n) return null;
    l = 3n * p.x * p.x % R * inv(2n * p.y, R) % R;
  } else {
    l = mod(q.y - p.y, R) * inv(q.x - p.x, R) % R;
  }
  const x = mod(l * l - p.x - q.x, R);
  return { x, y: mod(l * (p.x - x) - p.y, R) };
}
function mul(k, p) {
  let acc = null;
  for (let i = BigInt(k.toString(2).length) - 1n; i >= 0n; i--) {
    acc = add(acc, acc);
    if ((k >> i) & 1n) acc = add(acc, p);
  }
  return acc;
}
const onCurve = (p) => mod(p.y * p.y - p.x * p.x % R * p.x - B, R) === 0n;

// 32-byte little-endian integers, as keys and signatures carry them.
function le(hexText) {
  const h = hex(hexText);
  let v = 0n;
  for (let i = h.length - 2; i >= 0; i -= 2) v = (v << 8n) + BigInt(parseInt(h.slice(i, i + 2), 16));
  return v;
}
function toLe(v) {
  let out = "";
  for (let i = 0; i < 32; i++) { out += (v & 0xffn).toString(16).padStart(2, "0"); v >>= 8n; }
  return out;
}
const point = (h) => ({ x: le(h.slice(0, 64)), y: le(h.slice(64, 128)) });
const pointHex = (p) => toLe(p.x) + toLe(p.y);

// e = 2^253 + 2·(h mod 2^253) + 1, with h = sponge(Challenge, R.x, R.y, pk.x, pk.y, message)
function challenge(rPoint, pk, message) {
  const h = sponge(PARAMS.challenge_domain, [rPoint.x, rPoint.y, pk.x, pk.y, ...message]);
  return mod((1n << 253n) + 2n * (h % (1n << 253n)) + 1n, Q);
}

export function publicKey(sk) { return mul(sk, G); }

// A signature R ‖ s (hex) on `message` (field elements) with a fresh random nonce k.
export function sign(sk, message) {
  const pk = publicKey(sk);
  let k = 0n;
  while (k === 0n) k = mod(BigInt("0x" + randomBytes(64).toString("hex")), Q);
  const r = mul(k, G);
  const s = mod(k + challenge(r, pk, message) * sk, Q);
  return pointHex(r) + toLe(s);
}

// s·G = R + e·pk, with R and pk on the curve and s canonical.
export function verify(pkHex, message, sigHex) {
  const pk = point(hex(pkHex));
  const sig = hex(sigHex);
  const r = point(sig.slice(0, 128));
  const s = le(sig.slice(128, 192));
  if (!onCurve(pk) || !onCurve(r) || s >= Q) return false;
  const left = mul(s, G);
  const right = add(r, mul(challenge(r, pk, message), pk));
  return left !== null && right !== null && left.x === right.x && left.y === right.y;
}

// ---------------------------------------------------------------- operations

const KIND = { transfer: 2n, withdraw: 3n };
const TAG = { transfer: 0x02, withdraw: 0x03 };

// An operation's word: kind + 2^8·a + 2^40·b + 2^72·amount + 2^136·nonce (one field element).
function word(kind, a, b, amount, nonce) {
  return kind + (BigInt(a) << 8n) + (BigInt(b) << 40n) + (BigInt(amount) << 72n) + (BigInt(nonce) << 136n);
}

// A field element as Keel prints it: 0x, 64 hex digits, big-endian.
const fe = (x) => "0x" + x.toString(16).padStart(64, "0");

const hex = (s) => s.replace(/^0x/, "");

// An unsigned integer as `bytes` big-endian bytes, in hex.
function be(x, bytes) {
  const v = BigInt(x);
  if (v < 0n || v >= 1n << BigInt(8 * bytes)) throw new Error(`${x} does not fit ${bytes} bytes`);
  return v.toString(16).padStart(2 * bytes, "0");
}

// The message (what the signature covers) and the canonical encoding of a body's operation.
export function operation(body) {
  if (body.transfer) {
    const t = body.transfer;
    return {
      message: [fe(word(KIND.transfer, t.from, t.to, t.amount, t.nonce))],
      encoding: TAG.transfer.toString(16).padStart(2, "0") + be(t.from, 4) + be(t.to, 4) +
        be(t.amount, 8) + be(t.nonce, 8) + hex(t.signature),
    };
  }
  if (body.withdraw) {
    const w = body.withdraw;
    const recipient = hex(w.recipient);
    if (recipient.length !== 40) throw new Error("a recipient is 20 bytes");
    return {
      message: [fe(word(KIND.withdraw, w.from, 0, w.amount, w.nonce)), fe(BigInt("0x" + recipient))],
      encoding: TAG.withdraw.toString(16).padStart(2, "0") + be(w.from, 4) + recipient +
        be(w.amount, 8) + be(w.nonce, 8) + hex(w.signature),
    };
  }
  throw new Error("a body holds `transfer` or `withdraw`");
}

// JSON with integers kept exact: amounts and nonces go up to 2^64 - 1, past a double's 2^53.
function parseExact(text) {
  return JSON.parse(text.replace(/([:\[,]\s*)(\d{16,})/g, '$1"$2"'));
}

function vectors(file) {
  const { cases } = parseExact(readFileSync(file, "utf8"));
  let ok = 0;
  for (const [i, c] of cases.entries()) {
    const got = operation(c.body);
    const same = got.encoding === c.encoding &&
      JSON.stringify(got.message) === JSON.stringify(c.message);
    const op = c.body.transfer ?? c.body.withdraw;
    const signed = verify(c.public_key, got.message.map(BigInt), op.signature);
    if (same && signed) ok++;
    else console.log(`vector ${i} differs (signature ${signed ? "verifies" : "does not verify"}):\n  want ${JSON.stringify(c)}\n  got  ${JSON.stringify(got)}`);
  }
  console.log(`${ok} of ${cases.length} vectors agree (message, encoding, signature)`);
  return ok === cases.length ? 0 : 1;
}

const readKey = (file) => {
  const text = readFileSync(file, "utf8").trim();
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(text)) throw new Error(`${file} must hold a key: 64 hex digits`);
  const sk = le(text);
  if (sk === 0n || sk >= Q) throw new Error(`${file} does not hold a canonical key`);
  return sk;
};

// The JSON body of an operation signed with the key in `file`.
function signBody(file, kind, from, b, amount, nonce) {
  const sk = readKey(file);
  // a JSON number, exact: past 2^53 it stays digits, which exactJson writes bare
  const num = (v) => (BigInt(v) <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : String(BigInt(v)));
  const fields = kind === "transfer"
    ? { from: Number(from), to: Number(b), amount: num(amount), nonce: num(nonce) }
    : { from: Number(from), recipient: b, amount: num(amount), nonce: num(nonce) };
  const body = { [kind]: { ...fields, signature: "0x" + "00".repeat(96) } };
  const { message } = operation(body);
  body[kind].signature = "0x" + sign(sk, message.map(BigInt));
  return body;
}

// JSON with the integers past 2^53 written as the exact digits they came in as.
const exactJson = (v) => JSON.stringify(v).replace(/"(\d{16,})"/g, "$1");

async function post(url, text) {
  const r = await fetch(`${url.replace(/\/$/, "")}/v1/ops`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: text,
  });
  const answer = await r.text();
  console.log(JSON.stringify({ status: r.status, body: JSON.parse(answer) }));
  return r.status === 202 ? 0 : 1;
}

const [cmd, ...args] = process.argv.slice(2);
let code = 0;
if (cmd === "vectors") code = vectors(args[0]);
else if (cmd === "pubkey") console.log(pointHex(publicKey(readKey(args[0]))));
else if (cmd === "sign" && (args[1] === "transfer" || args[1] === "withdraw") && args.length === 6) {
  console.log(exactJson(signBody(args[0], args[1], args[2], args[3], args[4], args[5])));
} else if (cmd === "submit") {
  const body = parseExact(readFileSync(args[1], "utf8"));
  if (args[2]) body.wait = args[2];
  operation(body); // a body this script cannot read is not sent
  code = await post(args[0], exactJson(body));
} else if (cmd === "raw") code = await post(args[0], args[1]);
else {
  console.error("usage: citizen.mjs vectors FILE | pubkey KEY_FILE | sign KEY_FILE transfer FROM TO AMOUNT NONCE |\n" +
    "       sign KEY_FILE withdraw FROM RECIPIENT AMOUNT NONCE | submit URL BODY.json [WAIT] | raw URL TEXT");
  code = 2;
}
process.exit(code);
