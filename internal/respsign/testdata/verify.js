// Verifies response signatures independently of the Go code, with Node.js's
// crypto (OpenSSL), the way the README tells clients to.
//
// Usage: node verify.js cases.json
//
// cases.json is an array of {name, pem, jwk, body_file, signature}; the
// output is a JSON array of {name, seed, seed_string, sha256, jwk}: whether
// each way of verifying accepted the signature of the body read from
// body_file.
'use strict';

const crypto = require('crypto');
const fs = require('fs');

// The seed's snippet, as published.
function verifySignature(publicKey, data, signature) {
  const verifier = crypto.createVerify('RSA-SHA256');
  verifier.update(data);
  return verifier.verify(publicKey, signature, 'base64');
}

// The same with the digest named plainly.
function verifySHA256(publicKey, data, signature) {
  const verifier = crypto.createVerify('SHA256');
  verifier.update(data);
  return verifier.verify(publicKey, signature, 'base64');
}

const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const results = cases.map((c) => {
  const data = fs.readFileSync(c.body_file); // a Buffer: the exact bytes
  const jwk = crypto.createPublicKey({ key: c.jwk, format: 'jwk' });
  return {
    name: c.name,
    seed: verifySignature(c.pem, data, c.signature),
    // The seed's example passes the body as a string, as received.
    seed_string: verifySignature(c.pem, data.toString('utf8'), c.signature),
    sha256: verifySHA256(c.pem, data, c.signature),
    jwk: verifySHA256(jwk, data, c.signature),
  };
});
process.stdout.write(JSON.stringify(results));
