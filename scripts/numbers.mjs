// Numbers as an independent JSON implementation writes them: Node's `JSON.stringify`, which
// is ECMAScript's Number::toString, the algorithm RFC 8785 section 3.2.2.3 adopts. Nothing here
// is zt-audit's code; the tests compare zt-audit (Rust and Python) with what this prints.
//
//   node scripts/numbers.mjs corpus OUT N
//       N lines "BITS TEXT VERDICT": BITS the double's 16 hex digits, TEXT JSON.stringify of
//       it, VERDICT `exact` or `inexact`: whether a reader that keeps integers exact (BigInt)
//       reads TEXT as the same value (only an integer-form text can differ). Deterministic: a
//       fixed seed; random bit patterns (every exponent), random integers from 2^53 to 2^80,
//       powers of ten, halves and neighbours of 2^53.
//
//   node scripts/numbers.mjs chain OUT KEY.pem KEY_ID
//       A v1 chain of three records whose context holds large doubles (10^21, 10^20,
//       2^53, the largest double, 5e-324, 0.1), canonicalized the way RFC 8785's own JavaScript
//       reference does (sorted keys, JSON.stringify leaves), hashed and signed with Node's
//       crypto (ECDSA P-256 over the SHA-256 of the canonical form): an independent producer.
import crypto from "node:crypto";
import fs from "node:fs";

const [mode, out, ...rest] = process.argv.slice(2);

function exactVerdict(x, text) {
  if (/[.eE]/.test(text)) return "exact";
  return BigInt(text) === BigInt(x) ? "exact" : "inexact";
}

function hexBits(x) {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(x);
  return b.toString("hex");
}

function corpus(n) {
  // splitmix64: a fixed sequence of 64-bit values
  let state = 0x9e3779b97f4a7c15n;
  const mask = (1n << 64n) - 1n;
  const next = () => {
    state = (state + 0x9e3779b97f4a7c15n) & mask;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask;
    return z ^ (z >> 31n);
  };
  const buf = Buffer.alloc(8);
  const lines = [];
  const add = (x) => {
    if (!Number.isFinite(x)) return;
    const text = JSON.stringify(x);
    lines.push(`${hexBits(x)} ${text} ${exactVerdict(x, text)}`);
  };
  for (let k = -330; k <= 310; k++) add(Number(`1e${k}`));
  for (let d = -3; d <= 3; d++) add(2 ** 53 + d);
  for (let k = 53; k < 80; k++) add(2 ** k + 0.5 * 2 ** (k - 52));
  while (lines.length < n) {
    const r = next();
    switch (Number(r & 3n)) {
      case 0:
      case 1: {
        // any bit pattern: every exponent, subnormals, both signs
        buf.writeBigUInt64BE(next());
        add(buf.readDoubleBE());
        break;
      }
      case 2: {
        // an integer from 2^53 to 2^80, rounded to its double
        const bits = 53n + (next() % 28n);
        add(Number(next() % (1n << bits) + (1n << 53n)));
        break;
      }
      default: {
        // a decimal with few digits and a large or small exponent
        const mant = Number(next() % 1000000n);
        const exp = Number(next() % 60n) - 30;
        add(Number(`${mant}e${exp}`));
      }
    }
  }
  fs.writeFileSync(out, lines.slice(0, n).join("\n") + "\n");
}

function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

function chain(keyPem, keyId) {
  const key = crypto.createPrivateKey(fs.readFileSync(keyPem, "utf8"));
  const numbers = [
    { amount: 1e21, ratio: 0.1 },
    { amount: 1e20, smallest: 5e-324 },
    { amount: 2 ** 53, largest: 1.7976931348623157e308, negative: -1e21 },
  ];
  let prev = "0".repeat(64);
  const lines = numbers.map((n, seq) => {
    const record = {
      version: 1,
      chain_id: "node-producer",
      seq,
      actor: "agent-node",
      action: "payments.transfer",
      resource: `invoice/${seq}`,
      decision: "allow",
      reason: "allowed by policy",
      timestamp: `2026-12-01T10:00:0${seq}.000Z`,
      previous_hash: prev,
      signer: { algorithm: "ECDSA_SHA_256", key_id: keyId },
      context: { request_id: `req-${seq}`, numbers: n },
    };
    const bytes = Buffer.from(canonical(record), "utf8");
    const hash = crypto.createHash("sha256").update(bytes).digest("hex");
    // ECDSA over SHA-256(bytes), which is current_hash: KMS DIGEST mode.
    const signature = crypto.sign("sha256", bytes, key).toString("base64");
    prev = hash;
    return JSON.stringify({
      ...record,
      current_hash: hash,
      kms_signature: { algorithm: "ECDSA_SHA_256", key_id: keyId, signature },
    });
  });
  fs.writeFileSync(out, lines.join("\n") + "\n");
}

if (mode === "corpus") corpus(Number(rest[0] ?? 1000000));
else if (mode === "chain") chain(rest[0], rest[1]);
else {
  console.error("usage: node numbers.mjs corpus OUT N | chain OUT KEY.pem KEY_ID");
  process.exit(2);
}
