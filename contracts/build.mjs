// Compiles the contracts with the solc pinned in ../package.json (solc-js from the npm
// registry) and writes one artifact per contract: ABI, creation and runtime bytecode, the
// compiler version and settings, and the SHA-256 of the source. The artifacts are committed;
// the Rust code embeds them.
//
//   node contracts/build.mjs           rebuild the artifacts
//   node contracts/build.mjs --check   rebuild in memory and fail if a committed artifact differs
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");
const here = dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes("--check");

const CONTRACTS = [
  { name: "ZtAnchor", source: "ZtAnchor.sol", artifact: "ZtAnchor.json" },
  { name: "DAALog", source: "lineage/DAALog.sol", artifact: "lineage/DAALog.json" },
];
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  // No metadata hash in the bytecode: the artifact must not depend on file paths.
  metadata: { bytecodeHash: "none", appendCBOR: false },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

let failed = false;
for (const c of CONTRACTS) {
  const text = readFileSync(join(here, c.source), "utf8");
  const input = { language: "Solidity", sources: { [c.source]: { content: text } }, settings: SETTINGS };
  const out = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (out.errors || []).filter((e) => e.severity === "error");
  if (errors.length) {
    for (const e of errors) console.error(e.formattedMessage);
    process.exit(1);
  }
  const compiled = out.contracts[c.source][c.name];
  const artifact = {
    contractName: c.name,
    source: c.source,
    sourceSha256: createHash("sha256").update(text).digest("hex"),
    compiler: { name: "solc-js", version: solc.version(), settings: { optimizer: SETTINGS.optimizer, evmVersion: SETTINGS.evmVersion, metadata: SETTINGS.metadata } },
    abi: compiled.abi,
    bytecode: "0x" + compiled.evm.bytecode.object,
    deployedBytecode: "0x" + compiled.evm.deployedBytecode.object,
  };
  const json = JSON.stringify(artifact, null, 2) + "\n";
  const path = join(here, c.artifact);
  if (check) {
    const committed = existsSync(path) ? readFileSync(path, "utf8") : "";
    if (committed !== json) {
      console.error(`contracts/${c.artifact} does not match a fresh build of contracts/${c.source}: run node contracts/build.mjs`);
      failed = true;
    } else {
      console.log(`contracts/${c.artifact}: matches a fresh build (${solc.version()})`);
    }
  } else {
    writeFileSync(path, json);
    console.log(`wrote contracts/${c.artifact} (${solc.version()}, ${compiled.evm.deployedBytecode.object.length / 2} bytes runtime)`);
  }
}
process.exit(failed ? 1 : 0);
