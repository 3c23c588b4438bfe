#!/usr/bin/env node
// A client of Keel's sequencer API in plain JavaScript: Node's standard library only, nothing of
// Keel's. It shows what an app in any language does (docs/api.md):
//
//   node scripts/citizen.mjs vectors docs/op-vectors.json
//       recomputes, from each vector's fields alone, the message its signature covers and the
//       operation's canonical encoding, and compares them byte for byte
//   node scripts/citizen.mjs submit http://127.0.0.1:7545 body.json [wait]
//       posts a signed operation's JSON body (`keel transfer ... --sign-only --json` prints
//       one) to POST /v1/ops and prints the answer; exits 1 on a refusal
//   node scripts/citizen.mjs raw http://127.0.0.1:7545 'TEXT'
//       posts TEXT as the body as it is (to see a refusal), and prints the answer

import { readFileSync } from "node:fs";

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
    if (same) ok++;
    else console.log(`vector ${i} differs:\n  want ${JSON.stringify(c)}\n  got  ${JSON.stringify(got)}`);
  }
  console.log(`${ok} of ${cases.length} vectors agree`);
  return ok === cases.length ? 0 : 1;
}

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
let code;
if (cmd === "vectors") code = vectors(args[0]);
else if (cmd === "submit") {
  const body = parseExact(readFileSync(args[1], "utf8"));
  if (args[2]) body.wait = args[2];
  operation(body); // a body this script cannot read is not sent
  // numbers past 2^53 go out as the exact digits they came in as
  code = await post(args[0], JSON.stringify(body).replace(/"(\d{16,})"/g, "$1"));
} else if (cmd === "raw") code = await post(args[0], args[1]);
else {
  console.error("usage: citizen.mjs vectors FILE | submit URL BODY.json [WAIT] | raw URL TEXT");
  code = 2;
}
process.exit(code);
