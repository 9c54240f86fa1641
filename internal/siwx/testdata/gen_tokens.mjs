// Produces tokens.json, SIWX tokens signed by independent implementations
// (ethers for EVM, tweetnacl and bs58 for Solana), for internal/siwx's tests.
// Run it where they are installed:
//
//   mkdir /tmp/solgen && cd /tmp/solgen && npm init -y && npm install ethers@6 tweetnacl bs58
//   cp .../internal/siwx/testdata/gen_tokens.mjs . && node gen_tokens.mjs > .../internal/siwx/testdata/tokens.json
//
// Keys are derived from fixed labels and both signature schemes are
// deterministic (RFC 6979, Ed25519), and every time is fixed, so the output
// is the same every run. The tests check the tokens at fixed instants of a
// fake clock: most messages are issued at 2030-01-01T00:00:00Z and expire an
// hour later.
import { Wallet, id, version as ethersVersion } from "ethers";
import nacl from "tweetnacl";
import bs58 from "bs58";
import { readFileSync } from "node:fs";

const pkgVersion = (pkg) => JSON.parse(readFileSync(`node_modules/${pkg}/package.json`, "utf8")).version;
const utf8 = (s) => new TextEncoder().encode(s);

const SOLANA_MAINNET = "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp";
const SOLANA_DEVNET = "EtWTRABZaYq6iMfeYKouRu166VU2xqa1";

const evmKeys = [0, 1].map((k) => new Wallet(id(`tollgate siwx test key ${k}`)));
const solKeys = [0, 1].map((k) => nacl.sign.keyPair.fromSeed(nacl.hash(utf8(`tollgate siwx test key ${k}`)).slice(0, 32)));
const solAddress = (kp) => bs58.encode(kp.publicKey);

// message renders an EIP-4361 / SIWS message; fields left undefined are
// absent.
function message(f) {
  const lines = [
    `${f.scheme ? f.scheme + "://" : ""}${f.domain ?? "api.example.com"} wants you to sign in with your ${f.solana ? "Solana" : "Ethereum"} account:`,
    f.address,
    "",
  ];
  if (f.statement !== undefined) lines.push(f.statement);
  lines.push(
    "",
    `URI: ${f.uri ?? "https://api.example.com/login"}`,
    "Version: 1",
    `Chain ID: ${f.chainId ?? (f.solana ? SOLANA_MAINNET : "8453")}`,
    `Nonce: ${f.nonce ?? "tollgate0123"}`,
    `Issued At: ${f.issuedAt ?? "2030-01-01T00:00:00Z"}`,
  );
  if (f.expirationTime !== null) lines.push(`Expiration Time: ${f.expirationTime ?? "2030-01-01T01:00:00Z"}`);
  if (f.notBefore !== undefined) lines.push(`Not Before: ${f.notBefore}`);
  if (f.requestId !== undefined) lines.push(`Request ID: ${f.requestId}`);
  if (f.resources !== undefined) lines.push("Resources:", ...f.resources.map((r) => `- ${r}`));
  return lines.join("\n");
}

const b64 = (s) => Buffer.from(s, "utf8").toString("base64");
const b64url = (s) => Buffer.from(s, "utf8").toString("base64url");

const tokens = [];
// evm adds a token of a message signed with ethers' signMessage (EIP-191
// personal_sign). address defaults to the signer's.
async function evm(name, note, f, { signer = evmKeys[0], encode = b64 } = {}) {
  const text = message({ address: signer.address, ...f });
  const signature = await signer.signMessage(text);
  tokens.push({ name, note, message: text, token: `${encode(text)}.${signature}` });
}
// sol adds a token of a message signed with tweetnacl (Ed25519 over the
// message's UTF-8 bytes), the signature in base58.
function sol(name, note, f, { signer = solKeys[0], encode = b64 } = {}) {
  const text = message({ solana: true, address: solAddress(signer), ...f });
  const signature = bs58.encode(nacl.sign.detached(utf8(text), signer.secretKey));
  tokens.push({ name, note, message: text, token: `${encode(text)}.${signature}` });
}

await evm("evm", "valid on Base", { statement: "Sign in to Tollgate." });
await evm("evm_mainnet", "valid on Ethereum mainnet, no statement", { chainId: "1" });
await evm("evm_key1", "valid, the second key", {}, { signer: evmKeys[1] });
await evm("evm_base64url", "valid, base64url without padding", { statement: "Sign in to Tollgate?>??" }, { encode: b64url });
await evm("evm_scheme", "valid, the header names the scheme", { scheme: "https" });
await evm("evm_full", "valid, every optional field", {
  statement: "Sign in ✓ — to Tollgate",
  uri: "https://api.example.com",
  notBefore: "2030-01-01T00:10:00Z",
  requestId: "req-42",
  resources: ["https://api.example.com/v1/", "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/"],
});
await evm("evm_wrong_domain", "another domain", { domain: "evil.example.com" });
await evm("evm_domain_port", "the domain with a port", { domain: "api.example.com:443" });
await evm("evm_wrong_scheme", "the header names http", { scheme: "http" });
await evm("evm_wrong_uri", "a URI on another host", { uri: "https://evil.example.com/login" });
await evm("evm_uri_suffix", "a URI whose host extends the configured one", { uri: "https://api.example.com.evil.test/" });
await evm("evm_uri_userinfo", "a URI with the configured origin as user info", { uri: "https://api.example.com@evil.test/" });
await evm("evm_wrong_chain", "Optimism, not configured", { chainId: "10" });
await evm("evm_no_expiry", "no Expiration Time", { expirationTime: null });
await evm("evm_long_lifetime", "25 hours from Issued At to Expiration Time", { expirationTime: "2030-01-02T01:00:00Z" });
await evm("evm_max_lifetime", "exactly 24 hours", { expirationTime: "2030-01-02T00:00:00Z" });
await evm("evm_expires_before_issued", "Expiration Time before Issued At", { expirationTime: "2029-12-31T23:00:00Z" });
await evm("evm_not_before", "Not Before 2030-01-01T00:45:00Z", { notBefore: "2030-01-01T00:45:00Z" });
await evm("evm_issued_future", "issued at 2030-01-01T00:40:00Z", { issuedAt: "2030-01-01T00:40:00Z", expirationTime: "2030-01-01T01:40:00Z" });
await evm("evm_offset", "times with offsets: issued 2030-01-01T00:00:00Z, expires 01:00Z", { issuedAt: "2030-01-01T02:00:00+02:00", expirationTime: "2029-12-31T20:00:00-05:00" });
await evm("evm_lowercase_address", "the address in lower case, not EIP-55", { address: evmKeys[0].address.toLowerCase() });
await evm("evm_wrong_address", "names key 1's address, signed by key 0", { address: evmKeys[1].address });

// The example of EIP-4361 ("Examples"), its address replaced by the
// signer's, as it stands (no Expiration Time) and with one.
const eipExample = {
  domain: "example.com",
  statement: "I accept the ExampleOrg Terms of Service: https://example.com/tos",
  uri: "https://example.com/login",
  chainId: "1",
  nonce: "32891756",
  issuedAt: "2021-09-30T16:25:24Z",
  expirationTime: null,
  resources: ["ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/", "https://example.com/my-web2-claim.json"],
};
await evm("eip4361_example", "EIP-4361's example message", eipExample);
await evm("eip4361_example_expiring", "EIP-4361's example message with Expiration Time 2021-09-30T17:25:24Z", {
  ...eipExample,
  expirationTime: "2021-09-30T17:25:24Z",
});

sol("solana", "valid on Solana mainnet", { statement: "Sign in to Tollgate." });
sol("solana_key1", "valid, the second key", {}, { signer: solKeys[1] });
sol("solana_base64url", "valid, base64url without padding, UTF-8 statement", { statement: "Sign in ✓ to Tollgate ??????" }, { encode: b64url });
sol("solana_devnet", "devnet, not configured", { chainId: SOLANA_DEVNET });
sol("solana_wrong_address", "names key 1's address, signed by key 0", { address: solAddress(solKeys[1]) });
sol("solana_long_lifetime", "25 hours", { expirationTime: "2030-01-02T01:00:00Z" });

// SIGN-IN-WITH-X headers (x402's sign-in-with-x extension): the JSON proof
// in base64, its message built from the fields as x402 clients build it,
// times in JavaScript's toISOString form (milliseconds, "Z").
const headers = [];
const HDR_INFO = {
  domain: "api.example.com",
  uri: "https://api.example.com/v1/data",
  version: "1",
  nonce: "a1b2c3d4e5f67890a1b2c3d4e5f67890",
  issuedAt: new Date(Date.UTC(2030, 0, 1, 0, 0, 0)).toISOString(),
  expirationTime: new Date(Date.UTC(2030, 0, 1, 0, 5, 0)).toISOString(),
  statement: "Sign in to access the API",
  resources: ["https://api.example.com/v1/data"],
};
async function header(name, note, f = {}, { solana = false, signer, tamper } = {}) {
  const p = { ...HDR_INFO, ...f };
  for (const k of Object.keys(p)) if (p[k] === null) delete p[k];
  let address, sign;
  if (solana) {
    const kp = signer ?? solKeys[0];
    address = solAddress(kp);
    sign = async (text) => bs58.encode(nacl.sign.detached(utf8(text), kp.secretKey));
    p.chainId ??= `solana:${SOLANA_MAINNET}`;
    p.type ??= "ed25519";
    p.signatureScheme ??= "siws";
  } else {
    const w = signer ?? evmKeys[0];
    address = w.address;
    sign = (text) => w.signMessage(text);
    p.chainId ??= "eip155:8453";
    p.type ??= "eip191";
    p.signatureScheme ??= "eip191";
  }
  p.address = address;
  const text = message({
    solana, domain: p.domain, address, statement: p.statement, uri: p.uri,
    chainId: p.chainId.split(":")[1], nonce: p.nonce, issuedAt: p.issuedAt,
    expirationTime: p.expirationTime ?? null, notBefore: p.notBefore, requestId: p.requestId, resources: p.resources,
  });
  p.signature = await sign(text);
  if (tamper) tamper(p);
  headers.push({ name, note, message: text, header: Buffer.from(JSON.stringify(p), "utf8").toString("base64") });
}
await header("hdr_evm", "valid on Base, issued 2030-01-01T00:00:00.000Z, expires 00:05");
await header("hdr_evm_no_expiry", "no expirationTime: valid 5 minutes from issuedAt", { expirationTime: null });
await header("hdr_evm_long", "expirationTime an hour after issuedAt: still 5 minutes at most", {
  expirationTime: new Date(Date.UTC(2030, 0, 1, 1, 0, 0)).toISOString(),
});
await header("hdr_evm_minimal", "no statement, resources or scheme hint", { statement: null, resources: null, signatureScheme: null });
await header("hdr_evm_tampered", "statement changed after signing", {}, { tamper: (p) => { p.statement = "Sign in to something else"; } });
await header("hdr_evm_wrong_domain", "another domain", { domain: "evil.example.com" });
await header("hdr_evm_smart_wallet", "signatureScheme eip1271", { signatureScheme: "eip1271" });
await header("hdr_evm_wrong_type", "type ed25519 on an EVM chain", { type: "ed25519" });
await header("hdr_solana", "valid on Solana mainnet", {}, { solana: true });
await header("hdr_solana_tampered", "nonce changed after signing", {}, { solana: true, tamper: (p) => { p.nonce = "ffffffffffffffffffffffffffffffff"; } });

console.log(JSON.stringify({
  generator: `ethers ${ethersVersion}, tweetnacl ${pkgVersion("tweetnacl")}, bs58 ${pkgVersion("bs58")}`,
  evm_addresses: evmKeys.map((w) => w.address),
  solana_addresses: solKeys.map(solAddress),
  tokens,
  headers,
}, null, 1));
