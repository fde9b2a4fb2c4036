// Reference verifier for the zt-infra-full format on Node's OpenSSL, single-threaded: the
// baseline `zt-audit bench verify` compares against. It does what the lineage's tooling does:
// parse each line, rebuild the sorted-key JSON, SHA-256 it, check the link, verify the
// ECDSA P-256 signature (KMS DIGEST mode: the signed digest is that SHA-256).
//
// usage: node verify.mjs CHAIN.jsonl KEYRING.json   -> one JSON line on stdout
import crypto from "node:crypto";
import fs from "node:fs";

const [file, keyringPath] = process.argv.slice(2);
if (!file || !keyringPath) {
  console.error("usage: node verify.mjs CHAIN.jsonl KEYRING.json");
  process.exit(2);
}

function stableJson(value) {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${stableJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

const started = process.hrtime.bigint();
const keys = new Map();
for (const k of JSON.parse(fs.readFileSync(keyringPath, "utf8")).keys) {
  keys.set(k.key_id, crypto.createPublicKey(k.public_key_pem));
}
const text = fs.readFileSync(file, "utf8");
let prev = "0".repeat(64);
let records = 0;
const errors = [];
for (const line of text.split("\n")) {
  if (!line.trim()) continue;
  const i = records++;
  let r;
  try {
    r = JSON.parse(line);
  } catch (e) {
    errors.push(`${i}: malformed`);
    continue;
  }
  const unsigned = {
    actor: r.actor, action: r.action, resource: r.resource, decision: r.decision,
    reason: r.reason, timestamp: r.timestamp, previous_hash: r.previous_hash,
  };
  const canonical = stableJson(unsigned);
  const digest = crypto.createHash("sha256").update(canonical).digest("hex");
  if (digest !== r.current_hash) errors.push(`${i}: hash_mismatch`);
  if (r.previous_hash !== prev) errors.push(`${i}: broken_link`);
  prev = r.current_hash;
  const key = keys.get(r.kms_signature?.key_id);
  if (!key) {
    errors.push(`${i}: unknown_key`);
    continue;
  }
  const ok = crypto.verify("sha256", Buffer.from(canonical), { key, dsaEncoding: "der" },
    Buffer.from(r.kms_signature.signature, "base64"));
  if (!ok) errors.push(`${i}: bad_signature`);
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(JSON.stringify({ ok: errors.length === 0, records, errors: errors.slice(0, 10), seconds,
  records_per_s: records / seconds, node: process.version, openssl: process.versions.openssl }));
