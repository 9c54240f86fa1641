#!/usr/bin/env node
// Verifies the signature of a Tollgate response with Node.js alone (no
// dependencies): an ECDSA secp256k1 signature of the SHA-256 of the raw
// response body, sent in standard base64 in the X-Signature header, with the
// ID of the key in X-Signature-Key-Id.
//
// The gateway publishes its keys at /.well-known/response-signing-key: as a
// JSON document listing every published key (keys[].kid, keys[].pem,
// keys[].jwk), or the signing key's PEM alone:
//
//   curl -H 'Accept: application/x-pem-file' https://api.example.com/.well-known/response-signing-key
//
// Keys rotate: pick the key whose kid is the response's X-Signature-Key-Id,
// and fetch the document again when a response names a kid you do not know.
//
// In a client, verify the body as received, before parsing it, and before
// anything decompresses it (Node's fetch decompresses gzip; send
// Accept-Encoding: identity, or verify the compressed bytes):
//
//   const res = await fetch(url, { headers: { 'Accept-Encoding': 'identity' } });
//   const rawBody = Buffer.from(await res.arrayBuffer());
//   if (!verifySignature(publicKeyPem, rawBody, res.headers.get('x-signature'))) throw new Error('forged');
//   const data = JSON.parse(rawBody);
//
// A response without X-Signature is not signed; X-Signature-Status says why,
// e.g. 'unsigned; reason="too-large"'.
//
// Run as a program, it exits 0 if the signature is valid, 1 if not, 2 on a
// usage error:
//
//   node verify_response.js PUBLIC_KEY_PEM_FILE BODY_FILE X_SIGNATURE
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');

// verifySignature reports whether signature (the X-Signature header) is the
// signature of data (the raw body: a Buffer, or a string as received) by
// publicKey (a PEM). This is the usual crypto.createVerify snippet: OpenSSL reads the curve from
// the key, so 'SHA256' (or 'RSA-SHA256') only names the digest.
function verifySignature(publicKey, data, signature) {
  if (typeof signature !== 'string' || signature === '') return false;
  const verifier = crypto.createVerify('SHA256');
  verifier.update(data);
  return verifier.verify(publicKey, signature, 'base64');
}

module.exports = { verifySignature };

if (require.main === module) {
  const [pemFile, bodyFile, signature] = process.argv.slice(2);
  if (!pemFile || !bodyFile || signature === undefined) {
    console.error('usage: node verify_response.js PUBLIC_KEY_PEM_FILE BODY_FILE X_SIGNATURE');
    process.exit(2);
  }
  let publicKey;
  let data;
  try {
    publicKey = fs.readFileSync(pemFile, 'utf8');
    data = fs.readFileSync(bodyFile); // a Buffer: the exact bytes
  } catch (err) {
    console.error(err.message);
    process.exit(2);
  }
  let valid = false;
  try {
    valid = verifySignature(publicKey, data, signature);
  } catch (err) {
    console.log(`invalid: ${err.message}`); // a malformed key or signature
    process.exit(1);
  }
  console.log(valid ? 'valid' : 'invalid: the signature does not match the body and key');
  process.exit(valid ? 0 : 1);
}
