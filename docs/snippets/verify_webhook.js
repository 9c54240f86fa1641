#!/usr/bin/env node
// Verifies a Tollgate webhook delivery with Node.js alone (no dependencies).
//
// Copy verifyWebhook into your receiver, and call it with the raw body, as a
// Buffer, before parsing any JSON:
//
//   const http = require('node:http');
//   http.createServer((req, res) => {
//     const chunks = [];
//     req.on('data', (c) => chunks.push(c));
//     req.on('end', () => {
//       const rawBody = Buffer.concat(chunks);
//       try {
//         verifyWebhook(process.env.TOLLGATE_WEBHOOK_SECRET, req.headers, rawBody);
//       } catch (err) {
//         res.writeHead(401, { 'Content-Type': 'application/json' });
//         return res.end(JSON.stringify({ error: { code: err.code || 'INVALID_SIGNATURE', message: err.message } }));
//       }
//       // Delivery is at least once: skip a webhook-id you have already processed.
//       const event = JSON.parse(rawBody);
//       res.writeHead(204).end();
//     });
//   }).listen(8080);
//
// With Express, use express.raw({ type: 'application/json' }) on the webhook
// route so that req.body is the raw Buffer.
//
// Run as a program, it checks a saved delivery and exits 0 if it is valid, 1
// if not, 2 on a usage error:
//
//   TOLLGATE_WEBHOOK_SECRET=whsec_... node verify_webhook.js HEADERS_FILE BODY_FILE
//
// HEADERS_FILE holds the delivery's headers, one "Name: value" a line (an
// HTTP request line first is skipped); BODY_FILE the body, byte for byte.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');

// How far, either way, a delivery's timestamp may be from our clock.
const TOLERANCE_SECONDS = 5 * 60;

class WebhookError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code; // MISSING_SIGNATURE or INVALID_SIGNATURE
  }
}

// verifyWebhook throws a WebhookError unless the delivery is signed with
// secret ("whsec_..."). headers has lowercase names, as Node's req.headers;
// rawBody is a Buffer of the body exactly as received. Each signature header
// present must verify: X-Webhook-Signature (t=<ts>,v1=<hex>[,v1=...]) and the
// Standard Webhooks webhook-id, webhook-timestamp and webhook-signature
// (v1,<base64> [v1,<base64>...]); Tollgate sends both.
function verifyWebhook(secret, headers, rawBody, nowSeconds = Date.now() / 1000) {
  if (typeof secret !== 'string' || !secret.startsWith('whsec_')) {
    throw new Error('the webhook secret must start with whsec_');
  }
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  if (key.length < 24) throw new Error('the webhook secret is not whsec_ and the base64 of 24 to 64 bytes');
  const seed = headers['x-webhook-signature'];
  const std = headers['webhook-signature'];
  if (!seed && !std) {
    throw new WebhookError('MISSING_SIGNATURE', 'no X-Webhook-Signature or webhook-signature header');
  }
  if (seed) {
    let t;
    const sigs = [];
    for (const item of seed.split(',')) {
      const i = item.indexOf('=');
      const [k, v] = [item.slice(0, i), item.slice(i + 1)];
      if (k === 't' && t === undefined) t = v;
      else if (k === 'v1' && /^[0-9a-f]{64}$/.test(v)) sigs.push(Buffer.from(v, 'hex'));
    }
    checkTimestamp(t, nowSeconds);
    const want = crypto.createHmac('sha256', key).update(`${t}.`).update(rawBody).digest();
    if (!sigs.some((sig) => crypto.timingSafeEqual(sig, want))) {
      throw new WebhookError('INVALID_SIGNATURE', 'X-Webhook-Signature does not match');
    }
  }
  if (std) {
    const id = headers['webhook-id'];
    const t = headers['webhook-timestamp'];
    if (!id || !/^[A-Za-z][A-Za-z0-9_-]*$/.test(id)) {
      throw new WebhookError('INVALID_SIGNATURE', 'webhook-id missing or malformed');
    }
    checkTimestamp(t, nowSeconds);
    const want = crypto.createHmac('sha256', key).update(`${id}.${t}.`).update(rawBody).digest();
    const sigs = std.split(' ')
      .filter((entry) => entry.startsWith('v1,'))
      .map((entry) => Buffer.from(entry.slice(3), 'base64'));
    if (!sigs.some((sig) => sig.length === want.length && crypto.timingSafeEqual(sig, want))) {
      throw new WebhookError('INVALID_SIGNATURE', 'webhook-signature does not match');
    }
  }
}

function checkTimestamp(t, nowSeconds) {
  if (typeof t !== 'string' || !/^[1-9][0-9]{0,15}$/.test(t)) {
    throw new WebhookError('INVALID_SIGNATURE', 'timestamp missing or malformed');
  }
  if (Math.abs(nowSeconds - Number(t)) > TOLERANCE_SECONDS) {
    throw new WebhookError('INVALID_SIGNATURE', 'timestamp too far from now (replayed, or clocks apart)');
  }
}

// readHeaders parses "Name: value" lines into an object with lowercase names.
function readHeaders(text) {
  const headers = {};
  const lines = text.split(/\r?\n/);
  if (lines.length > 0 && /^(HTTP\/\S+ |[A-Z]+ \S+ HTTP\/)/.test(lines[0])) lines.shift();
  for (const line of lines) {
    if (line === '') break;
    const i = line.indexOf(':');
    if (i <= 0) throw new Error(`not a header line: ${JSON.stringify(line)}`);
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return headers;
}

module.exports = { verifyWebhook, WebhookError };

if (require.main === module) {
  const [headersFile, bodyFile] = process.argv.slice(2);
  const secret = process.env.TOLLGATE_WEBHOOK_SECRET;
  if (!headersFile || !bodyFile || !secret) {
    console.error('usage: TOLLGATE_WEBHOOK_SECRET=whsec_... node verify_webhook.js HEADERS_FILE BODY_FILE');
    process.exit(2);
  }
  let headers;
  let rawBody;
  try {
    headers = readHeaders(fs.readFileSync(headersFile, 'utf8'));
    rawBody = fs.readFileSync(bodyFile); // a Buffer: the exact bytes
  } catch (err) {
    console.error(err.message);
    process.exit(2);
  }
  try {
    verifyWebhook(secret, headers, rawBody);
    console.log('valid');
  } catch (err) {
    console.log(`invalid: ${err.code || 'ERROR'}: ${err.message}`);
    process.exit(1);
  }
}
