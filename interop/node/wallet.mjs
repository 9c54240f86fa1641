// Wallet interoperability check: an agent built on independent JavaScript
// implementations (ethers for EIP-191 personal_sign and EIP-712 typed data,
// tweetnacl + bs58 for Solana) signs in with SIWX (Authorization: SIWX, and
// x402's SIGN-IN-WITH-X header from the 402's challenge) and buys a subscription
// with x402 against the tollgate binary, whose Go code verifies what they
// signed.
//
// Usage: node wallet.mjs BASE_URL   (x402 enabled, local facilitator, plan "pro")
import { Wallet, Signature } from "ethers";
import nacl from "tweetnacl";
import bs58 from "bs58";

const base = process.argv[2];
if (!base) {
  console.error("usage: node wallet.mjs BASE_URL");
  process.exit(2);
}
const origin = new URL(base);
let failures = 0;
function check(what, ok, detail = "") {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${ok ? "" : " " + detail}`);
  if (!ok) failures++;
}
const b64json = (s) => JSON.parse(Buffer.from(s, "base64").toString("utf8"));
async function call(method, path, headers = {}) {
  const res = await fetch(base + path, { method, headers });
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: res.status, headers: res.headers, body };
}

// The EIP-4361 message, written by hand from the EIP's grammar.
function siweMessage(address, chainId, header = "Ethereum") {
  const now = new Date();
  const exp = new Date(now.getTime() + 60 * 60 * 1000);
  return [
    `${origin.host} wants you to sign in with your ${header} account:`,
    address,
    "",
    "Sign in to call the API as an agent.",
    "",
    `URI: ${origin.origin}`,
    "Version: 1",
    `Chain ID: ${chainId}`,
    `Nonce: ${Buffer.from(nacl.randomBytes(8)).toString("hex")}`,
    `Issued At: ${now.toISOString()}`,
    `Expiration Time: ${exp.toISOString()}`,
  ].join("\n");
}
// x402's sign-in-with-x extension: the message built from the challenge's
// fields (the extension's spec, "Message Format"), the proof as base64 JSON.
function proofHeader(challenge, chain, address, signature) {
  const sc = challenge.supportedChains.find((c) => c.chainId === chain);
  return Buffer.from(JSON.stringify({
    ...challenge.info, address, chainId: chain, type: sc.type, signatureScheme: sc.signatureScheme, signature,
  }), "utf8").toString("base64");
}
function proofMessage(challenge, chain, address) {
  const i = challenge.info;
  const lines = [
    `${i.domain} wants you to sign in with your ${chain.startsWith("solana:") ? "Solana" : "Ethereum"} account:`,
    address, "",
  ];
  if (i.statement) lines.push(i.statement);
  lines.push("", `URI: ${i.uri}`, `Version: ${i.version}`, `Chain ID: ${chain.split(":")[1]}`, `Nonce: ${i.nonce}`, `Issued At: ${i.issuedAt}`);
  if (i.expirationTime) lines.push(`Expiration Time: ${i.expirationTime}`);
  if (i.resources?.length) lines.push("Resources:", ...i.resources.map((u) => `- ${u}`));
  return lines.join("\n");
}
const token = (message, signature) => "SIWX " + Buffer.from(message, "utf8").toString("base64") + "." + signature;

// 1. No credentials: 402 with the x402 v2 requirements.
let r = await call("GET", "/v1/hello");
const required = r.headers.get("payment-required") ? b64json(r.headers.get("payment-required")) : null;
check("no credentials: 402 with PAYMENT-REQUIRED", r.status === 402 && required?.x402Version === 2 && required.accepts?.length > 0, JSON.stringify(r.body));
check("the 402 body carries the v1 accepts and the purchase link", r.body.x402Version === 1 && r.body.accepts?.length > 0 && r.body.purchase?.endsWith("/x402/purchase"), JSON.stringify(r.body));
r = await call("GET", "/x402/pricing");
check("pricing lists the plan", r.status === 200 && r.body.offers?.some((o) => o.plan === "pro"), JSON.stringify(r.body));

// 2. An EVM wallet signs in (ethers personal_sign): valid, but unsubscribed.
const wallet = Wallet.createRandom();
const chainId = required.accepts[0].network.split(":")[1];
const msg = siweMessage(wallet.address, chainId);
const siwx = token(msg, await wallet.signMessage(msg));
r = await call("GET", "/v1/hello", { Authorization: siwx });
check("ethers-signed SIWX without subscription: 402", r.status === 402 && r.body.error?.reason === "no_active_subscription", JSON.stringify(r.body));
const other = Wallet.createRandom();
r = await call("GET", "/v1/hello", { Authorization: token(msg, await other.signMessage(msg)) });
check("signed by another wallet: 401 INVALID_SIGNATURE", r.status === 401 && r.body.error?.code === "INVALID_SIGNATURE", JSON.stringify(r.body));
// The same wallet as an x402-native agent: it signs the 402's
// sign-in-with-x challenge and sends SIGN-IN-WITH-X.
const challenge = required.extensions?.["sign-in-with-x"];
check("the 402 advertises sign-in-with-x", !!challenge?.info?.nonce && challenge.supportedChains?.some((c) => c.chainId === required.accepts[0].network && c.type === "eip191"), JSON.stringify(required.extensions));
const evmChain = required.accepts[0].network;
const proofText = proofMessage(challenge, evmChain, wallet.address);
const proof = proofHeader(challenge, evmChain, wallet.address, await wallet.signMessage(proofText));
r = await call("GET", "/v1/hello", { "SIGN-IN-WITH-X": proof });
check("ethers-signed SIGN-IN-WITH-X without subscription: 402", r.status === 402 && r.body.error?.reason === "no_active_subscription", JSON.stringify(r.body));
r = await call("GET", "/v1/hello", { "SIGN-IN-WITH-X": proofHeader(challenge, evmChain, wallet.address, await other.signMessage(proofText)) });
check("SIGN-IN-WITH-X signed by another wallet: 401 INVALID_SIGNATURE", r.status === 401 && r.body.error?.code === "INVALID_SIGNATURE", JSON.stringify(r.body));
const msg2 = siweMessage(wallet.address, chainId);
const siwx2 = token(msg2, await wallet.signMessage(msg2));
check("a second token of the same wallet: 402 as well", (await call("GET", "/v1/hello", { Authorization: siwx2 })).status === 402);

// 3. Buy "pro": the purchase endpoint's 402 names the one offer; ethers signs
// the EIP-3009 TransferWithAuthorization it asks for.
r = await call("POST", "/x402/purchase?plan=pro");
const offer = b64json(r.headers.get("payment-required"));
check("purchase without payment: 402 with one requirement", r.status === 402 && offer.accepts.length === 1, JSON.stringify(offer));
const req = offer.accepts[0];
const now = Math.floor(Date.now() / 1000);
const authorization = {
  from: wallet.address,
  to: req.payTo,
  value: req.amount,
  validAfter: String(now - 60),
  validBefore: String(now + req.maxTimeoutSeconds),
  nonce: "0x" + Buffer.from(nacl.randomBytes(32)).toString("hex"),
};
const domain = { name: req.extra.name, version: req.extra.version, chainId: Number(chainId), verifyingContract: req.asset };
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
const signature = await wallet.signTypedData(domain, types, authorization);
const payment = Buffer.from(JSON.stringify({
  x402Version: 2, resource: offer.resource, accepted: req, payload: { signature, authorization },
})).toString("base64");
r = await call("POST", "/x402/purchase?plan=pro", { "PAYMENT-SIGNATURE": payment });
const settled = r.headers.get("payment-response") ? b64json(r.headers.get("payment-response")) : null;
check("purchase with an ethers-signed EIP-3009 authorization: 200", r.status === 200 && r.body.subscription?.plan === "pro", JSON.stringify(r.body));
check("PAYMENT-RESPONSE names the payer", settled?.success === true && settled.payer === wallet.address, JSON.stringify(settled));
r = await call("POST", "/x402/purchase?plan=pro", { "PAYMENT-SIGNATURE": payment });
check("the same authorization again: 409", r.status === 409, JSON.stringify(r.body));

// A v1 payment (X-PAYMENT) of another wallet, with a high-s signature
// (malleated): refused.
const w2 = Wallet.createRandom();
const a2 = { ...authorization, from: w2.address, nonce: "0x" + Buffer.from(nacl.randomBytes(32)).toString("hex") };
const sig2 = Signature.from(await w2.signTypedData(domain, types, a2));
const n = BigInt("0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
const highS = sig2.r + (n - BigInt(sig2.s)).toString(16).padStart(64, "0") + (sig2.v === 27 ? "1c" : "1b");
r = await call("POST", "/x402/purchase?plan=pro", {
  "X-PAYMENT": Buffer.from(JSON.stringify({ x402Version: 1, scheme: "exact", network: r.body?.accepts?.[0]?.network ?? "base-sepolia", payload: { signature: highS, authorization: a2 } })).toString("base64"),
});
check("v1 payment with a high-s signature: 402", r.status === 402, JSON.stringify(r.body));
r = await call("POST", "/x402/purchase?plan=pro", {
  "X-PAYMENT": Buffer.from(JSON.stringify({ x402Version: 1, scheme: "exact", network: "base-sepolia", payload: { signature: sig2.serialized, authorization: a2 } })).toString("base64"),
});
check("v1 payment (X-PAYMENT): 200 with X-PAYMENT-RESPONSE", r.status === 200 && !!r.headers.get("x-payment-response"), JSON.stringify(r.body));

// 4. The same SIWX token now reaches the API.
r = await call("GET", "/v1/hello", { Authorization: siwx });
check("subscribed wallet, same SIWX token: 200 from the upstream", r.status === 200, JSON.stringify(r.body));
r = await call("GET", "/v1/hello", { Authorization: siwx2 });
check("subscribed wallet, its other token: 200", r.status === 200, JSON.stringify(r.body));
r = await call("GET", "/v1/hello", { "SIGN-IN-WITH-X": proof });
check("subscribed wallet, its SIGN-IN-WITH-X proof: 200", r.status === 200, JSON.stringify(r.body));

// 5. A Solana wallet (tweetnacl, base58) signs in with SIWS: verified, not
// subscribed; tampered: refused.
const kp = nacl.sign.keyPair();
const solAddress = bs58.encode(kp.publicKey);
const solChain = process.env.SOLANA_CHAIN ?? "EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
const siws = siweMessage(solAddress, solChain, "Solana");
const solSig = nacl.sign.detached(Buffer.from(siws, "utf8"), kp.secretKey);
r = await call("GET", "/v1/hello", { Authorization: token(siws, bs58.encode(solSig)) });
check("tweetnacl-signed SIWS without subscription: 402", r.status === 402 && r.body.error?.reason === "no_active_subscription", JSON.stringify(r.body));
solSig[0] ^= 1;
r = await call("GET", "/v1/hello", { Authorization: token(siws, bs58.encode(solSig)) });
check("tampered Solana signature: 401 INVALID_SIGNATURE", r.status === 401 && r.body.error?.code === "INVALID_SIGNATURE", JSON.stringify(r.body));

if (failures > 0) {
  console.error(`wallet interop: ${failures} check(s) failed`);
  process.exit(1);
}
console.log("wallet interop: all checks passed");
