// Produces vectors.json with tweetnacl and bs58 (independent implementations)
// for internal/solana's tests. Run it where they are installed:
//
//   mkdir /tmp/solgen && cd /tmp/solgen && npm init -y && npm install tweetnacl bs58
//   cp .../internal/solana/testdata/gen_vectors.mjs . && node gen_vectors.mjs > .../internal/solana/testdata/vectors.json
//
// Ed25519 signatures are deterministic and the seeds are fixed (RFC 8032
// section 7.1 TEST 1 and 2, and the SHA-512 of a label), so the output is the
// same every run.
import nacl from "tweetnacl";
import bs58 from "bs58";
import { readFileSync } from "node:fs";

const hex = (u8) => Buffer.from(u8).toString("hex");
const utf8 = (s) => new TextEncoder().encode(s);
const version = (pkg) => JSON.parse(readFileSync(`node_modules/${pkg}/package.json`, "utf8")).version;

const seeds = [
  Buffer.from("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "hex"), // RFC 8032 TEST 1
  Buffer.from("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", "hex"), // RFC 8032 TEST 2
];
for (let k = 0; k < 3; k++) {
  seeds.push(nacl.hash(utf8(`tollgate solana test key ${k}`)).slice(0, 32));
}

const messages = [
  "",
  "r", // RFC 8032 TEST 2's message, 0x72
  "Hello World",
  "héllo wörld ✓ — unicode, and a\nnewline",
  "x".repeat(1000),
  [
    "example.com wants you to sign in with your Solana account:",
    "ADDRESS",
    "",
    "Sign in to Example.",
    "",
    "URI: https://example.com/login",
    "Version: 1",
    "Chain ID: 5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
    "Nonce: oBbLoEldZs",
    "Issued At: 2026-11-22T10:00:00Z",
    "Expiration Time: 2026-11-22T11:00:00Z",
  ].join("\n"),
];

const signatures = [];
for (const seed of seeds) {
  const kp = nacl.sign.keyPair.fromSeed(seed);
  const address = bs58.encode(kp.publicKey);
  for (const m of messages) {
    const message = m.replace("ADDRESS", address);
    const sig = nacl.sign.detached(utf8(message), kp.secretKey);
    signatures.push({
      seed: hex(seed),
      public_key: hex(kp.publicKey),
      address,
      message,
      signature: bs58.encode(sig),
      signature_hex: hex(sig),
    });
  }
}

// Base58 of 32-byte values with leading zeros and extremes: the shortest
// and longest address texts.
const keys = [
  new Uint8Array(32),
  Uint8Array.from({ length: 32 }, (_, i) => (i === 31 ? 1 : 0)),
  Uint8Array.from({ length: 32 }, (_, i) => (i < 5 ? 0 : i)),
  Uint8Array.from({ length: 32 }, () => 0xff),
  nacl.hash(utf8("tollgate solana address")).slice(0, 32),
  nacl.hash(utf8("tollgate solana address")).slice(32, 64),
];
const addresses = keys.map((k) => ({ hex: hex(k), base58: bs58.encode(k) }));

console.log(JSON.stringify({ generator: `tweetnacl ${version("tweetnacl")}, bs58 ${version("bs58")}`, signatures, addresses }, null, 1));
