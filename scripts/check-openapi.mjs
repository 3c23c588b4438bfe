#!/usr/bin/env node
// Validates an OpenAPI document against the OpenAPI specification's own JSON schema, with
// @seriousme/openapi-schema-validator (installed in contracts/ by ./keel.sh):
//
//   node scripts/check-openapi.mjs http://127.0.0.1:7545/v1/openapi.json
//   node scripts/check-openapi.mjs openapi.json
//
// Prints {"openapi", "valid", "errors"}; exits 1 if the document is not valid.

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const validator = join(here, "../contracts/node_modules/@seriousme/openapi-schema-validator/index.js");
const { Validator } = await import(pathToFileURL(validator)).catch((e) => {
  console.error(`the validator is missing (run \`npm ci\` in contracts/, as ./keel.sh does): ${e.message}`);
  process.exit(2);
});
const source = process.argv[2];
const doc = /^https?:\/\//.test(source)
  ? await (await fetch(source)).json()
  : JSON.parse(readFileSync(source, "utf8"));
const v = new Validator();
const r = await v.validate(doc);
console.log(JSON.stringify({ openapi: v.version, valid: r.valid, errors: r.errors ?? [] }));
process.exit(r.valid ? 0 : 1);
