// Produces vectors.json with ethers (an implementation independent of
// this one) for internal/eip3009's tests. Run it where ethers@6 is
// installed:
//
//   mkdir /tmp/eip3009gen && cd /tmp/eip3009gen && npm init -y && npm install ethers@6
//   cp .../internal/eip3009/testdata/gen_vectors.mjs . && node gen_vectors.mjs > .../internal/eip3009/testdata/vectors.json
//
// Keys and nonces are derived from labels, and ethers signs
// deterministically (RFC 6979), so the output is the same every run.
//
// Each case gives a domain (only the members it has), a message, the
// ethers hashes of both, a signature, and what Verify must say: "ok",
// "mismatch" (a well-formed signature that recovers to another address,
// ethers' recovery given as "recovered") or "malformed".
import {
  Wallet, Signature, TypedDataEncoder, id, recoverAddress, verifyTypedData, getAddress, toBeHex, ZeroAddress,
} from "ethers";

const types = {
  TransferWithAuthorization: [
    { name: "from", type: "address" },
    { name: "to", type: "address" },
    { name: "value", type: "uint256" },
    { name: "validAfter", type: "uint256" },
    { name: "validBefore", type: "uint256" },
    { name: "nonce", type: "bytes32" },
  ],
};

const MAX = (1n << 256n) - 1n;
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

const keys = [0, 1, 2].map((k) => new Wallet(id(`tollgate eip3009 test key ${k}`)));

const domains = {
  base: { name: "USD Coin", version: "2", chainId: 8453n, verifyingContract: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913" },
  baseSepolia: { name: "USDC", version: "2", chainId: 84532n, verifyingContract: "0x036CbD53842c5426634e7929541eC2318f3dCF7e" },
  ethereum: { name: "USD Coin", version: "2", chainId: 1n, verifyingContract: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48" },
  // Other sets of members, for eip712.Domain.Fields: an empty name is a
  // member, the zero address too.
  emptyNameSalt: { name: "", chainId: MAX, verifyingContract: ZeroAddress, salt: id("tollgate salt") },
  versionOnly: { version: "1" },
};

function jsonDomain(d) {
  const out = {};
  for (const [k, v] of Object.entries(d)) out[k] = typeof v === "bigint" ? v.toString() : v;
  return out;
}

function jsonMessage(m) {
  return {
    from: m.from, to: m.to, value: m.value.toString(), validAfter: m.validAfter.toString(),
    validBefore: m.validBefore.toString(), nonce: m.nonce,
  };
}

function recovered(digest, sig) {
  try {
    return recoverAddress(digest, sig);
  } catch (e) {
    return "error: " + e.shortMessage;
  }
}

const cases = [];
function add(name, domain, message, signer, signature, want) {
  const digest = TypedDataEncoder.hash(domain, types, message);
  cases.push({
    name,
    domain: jsonDomain(domain),
    message: jsonMessage(message),
    private_key: signer.privateKey,
    domain_separator: TypedDataEncoder.hashDomain(domain),
    struct_hash: TypedDataEncoder.hashStruct("TransferWithAuthorization", types, message),
    digest,
    signature,
    want,
    recovered: recovered(digest, signature),
  });
}

async function good(name, domain, message, signer) {
  const sig = await signer.signTypedData(domain, types, message);
  if (verifyTypedData(domain, types, message, sig) !== getAddress(message.from)) throw new Error(name);
  add(name, domain, message, signer, sig, "ok");
  return sig;
}

const [k0, k1, k2] = keys;
const pay = {
  from: k0.address, to: k1.address, value: 10000n, // 0.01 USDC
  validAfter: 1767225000n, validBefore: 1767225660n, nonce: id("nonce pay"),
};
const paySig = await good("base 0.01 USDC", domains.base, pay, k0);
await good("base sepolia never expires", domains.baseSepolia,
  { from: k1.address, to: k2.address, value: 1n, validAfter: 0n, validBefore: MAX, nonce: id("nonce sepolia") }, k1);
await good("ethereum max value", domains.ethereum,
  { from: k2.address, to: k0.address, value: MAX, validAfter: MAX - 1n, validBefore: MAX, nonce: id("nonce max") }, k2);
await good("zero value to the zero address, zero nonce", domains.base,
  { from: k0.address, to: ZeroAddress, value: 0n, validAfter: 0n, validBefore: 0n, nonce: toBeHex(0, 32) }, k0);
await good("domain with empty name, zero contract and salt", domains.emptyNameSalt,
  { ...pay, from: k1.address, to: k0.address, nonce: id("nonce salt") }, k1);
await good("domain with only a version", domains.versionOnly,
  { ...pay, from: k2.address, nonce: id("nonce version") }, k2);

// The payment's signature, with the message or domain changed: it
// recovers to another address.
add("tampered value", domains.base, { ...pay, value: pay.value + 1n }, k0, paySig, "mismatch");
add("tampered to", domains.base, { ...pay, to: k2.address }, k0, paySig, "mismatch");
add("tampered nonce", domains.base, { ...pay, nonce: id("nonce other") }, k0, paySig, "mismatch");
add("tampered validBefore", domains.base, { ...pay, validBefore: MAX }, k0, paySig, "mismatch");
add("tampered from", domains.base, { ...pay, from: k2.address }, k0, paySig, "mismatch");
add("wrong chainId", { ...domains.base, chainId: 84532n }, pay, k0, paySig, "mismatch");
add("wrong name (Base Sepolia's on Base)", { ...domains.base, name: "USDC" }, pay, k0, paySig, "mismatch");
add("wrong version", { ...domains.base, version: "1" }, pay, k0, paySig, "mismatch");
add("wrong verifyingContract", { ...domains.base, verifyingContract: domains.ethereum.verifyingContract }, pay, k0, paySig, "mismatch");
add("signed by another key", domains.base, pay, k1, await k1.signTypedData(domains.base, types, pay), "mismatch");

// The payment's signature in shapes the token contract refuses.
const s = Signature.from(paySig);
const highS = toBeHex(N - BigInt(s.s), 32);
add("high s (the malleated twin)", domains.base, pay, k0, s.r + highS.slice(2) + (s.v === 27 ? "1c" : "1b"), "malformed");
add("v as 0 or 1", domains.base, pay, k0, paySig.slice(0, 130) + (s.v === 27 ? "00" : "01"), "malformed");

console.log(JSON.stringify({
  generator: "ethers " + (await import("ethers")).version,
  type: TypedDataEncoder.from(types).encodeType("TransferWithAuthorization"),
  type_hash: id(TypedDataEncoder.from(types).encodeType("TransferWithAuthorization")),
  cases,
}, null, 1));
