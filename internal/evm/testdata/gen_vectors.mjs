// Produces vectors.json with ethers (an independent implementation) for
// internal/evm's tests. Run it where ethers@6 is installed:
//
//   mkdir /tmp/ethgen && cd /tmp/ethgen && npm init -y && npm install ethers@6
//   cp .../internal/evm/testdata/gen_vectors.mjs . && node gen_vectors.mjs > .../internal/evm/testdata/vectors.json
//
// The keys are fixed (derived from a label), so the output is the same every run.
import { Wallet, id, getAddress, hashMessage, keccak256, toUtf8Bytes } from "ethers";

const messages = [
  "",
  "Hello World",
  "héllo wörld ✓ — unicode, and a\nnewline",
  "x".repeat(1000),
  [
    "example.com wants you to sign in with your Ethereum account:",
    "ADDRESS",
    "",
    "I accept the ExampleOrg Terms of Service: https://example.com/tos",
    "",
    "URI: https://example.com/login",
    "Version: 1",
    "Chain ID: 8453",
    "Nonce: 32891756",
    "Issued At: 2026-11-22T10:00:00Z",
    "Expiration Time: 2026-11-22T11:00:00Z",
  ].join("\n"),
];

const signatures = [];
for (let k = 0; k < 3; k++) {
  const wallet = new Wallet(id(`tollgate evm test key ${k}`));
  for (const m of messages) {
    const message = m.replace("ADDRESS", wallet.address);
    signatures.push({
      private_key: wallet.privateKey,
      address: wallet.address,
      message,
      hash: hashMessage(message),
      signature: await wallet.signMessage(message),
    });
  }
}

const checksums = [];
for (let i = 0; i < 20; i++) {
  const lower = keccak256(toUtf8Bytes(`address ${i}`)).slice(0, 42);
  checksums.push({ lower, checksummed: getAddress(lower) });
}

const keccak = ["", "abc", "The quick brown fox jumps over the lazy dog"].map((s) => ({
  input: s,
  hash: keccak256(toUtf8Bytes(s)),
}));

console.log(JSON.stringify({ generator: "ethers " + (await import("ethers")).version, signatures, checksums, keccak }, null, 1));
