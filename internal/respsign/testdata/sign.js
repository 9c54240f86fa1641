// Signs bodies with a fresh secp256k1 key, with Node.js's crypto (OpenSSL),
// so that the Go verifier can be checked against it.
//
// Usage: node sign.js bodies.json
//
// bodies.json is an array of file names; the output is a JSON object
// {pem, jwk, signatures}: the public key as SPKI PEM and as JWK, and the
// base64 DER signature of each file's bytes.
'use strict';

const crypto = require('crypto');
const fs = require('fs');

const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
const files = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
process.stdout.write(JSON.stringify({
  pem: publicKey.export({ type: 'spki', format: 'pem' }),
  jwk: publicKey.export({ format: 'jwk' }),
  signatures: files.map((f) => crypto.createSign('SHA256').update(fs.readFileSync(f)).sign(privateKey, 'base64')),
}));
