#!/usr/bin/env python3
"""Verifies a Tollgate webhook delivery with the Python standard library alone.

Copy verify_webhook into your receiver, and call it with the raw body, as
bytes, before parsing any JSON. With Flask, for instance:

    @app.post("/webhooks/tollgate")
    def tollgate_webhook():
        raw_body = request.get_data()  # the exact bytes; not request.json
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            verify_webhook(os.environ["TOLLGATE_WEBHOOK_SECRET"], headers, raw_body)
        except WebhookError as err:
            return {"error": {"code": err.code, "message": str(err)}}, 401
        # Delivery is at least once: skip a webhook-id you have already processed.
        event = json.loads(raw_body)
        return "", 204

Run as a program, it checks a saved delivery and exits 0 if it is valid, 1
if not, 2 on a usage error:

    TOLLGATE_WEBHOOK_SECRET=whsec_... python3 verify_webhook.py HEADERS_FILE BODY_FILE

HEADERS_FILE holds the delivery's headers, one "Name: value" a line (an HTTP
request line first is skipped); BODY_FILE the body, byte for byte.
"""

import base64
import binascii
import hashlib
import hmac
import os
import re
import sys
import time

# How far, either way, a delivery's timestamp may be from our clock.
TOLERANCE_SECONDS = 5 * 60


class WebhookError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code  # MISSING_SIGNATURE or INVALID_SIGNATURE


def verify_webhook(secret, headers, raw_body, now=None):
    """Raises WebhookError unless the delivery is signed with secret ("whsec_...").

    headers maps lowercase names to values; raw_body is the body exactly as
    received, as bytes. Each signature header present must verify:
    X-Webhook-Signature (t=<ts>,v1=<hex>[,v1=...]) and the Standard Webhooks
    webhook-id, webhook-timestamp and webhook-signature
    (v1,<base64> [v1,<base64>...]); Tollgate sends both.
    """
    if not secret.startswith("whsec_"):
        raise ValueError("the webhook secret must start with whsec_")
    key = base64.b64decode(secret[len("whsec_"):], validate=True)
    if not 24 <= len(key) <= 64:
        raise ValueError("the webhook secret is not whsec_ and the base64 of 24 to 64 bytes")
    now = time.time() if now is None else now
    seed = headers.get("x-webhook-signature")
    std = headers.get("webhook-signature")
    if not seed and not std:
        raise WebhookError("MISSING_SIGNATURE", "no X-Webhook-Signature or webhook-signature header")

    if seed:
        t, sigs = None, []
        for item in seed.split(","):
            k, _, v = item.partition("=")
            if k == "t" and t is None:
                t = v
            elif k == "v1" and re.fullmatch(r"[0-9a-f]{64}", v):
                sigs.append(v)
        _check_timestamp(t, now)
        want = hmac.new(key, t.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
        if not any(hmac.compare_digest(sig, want) for sig in sigs):
            raise WebhookError("INVALID_SIGNATURE", "X-Webhook-Signature does not match")

    if std:
        msg_id, t = headers.get("webhook-id", ""), headers.get("webhook-timestamp")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", msg_id):
            raise WebhookError("INVALID_SIGNATURE", "webhook-id missing or malformed")
        _check_timestamp(t, now)
        signed = msg_id.encode() + b"." + t.encode() + b"." + raw_body
        want = hmac.new(key, signed, hashlib.sha256).digest()
        ok = False
        for entry in std.split(" "):
            scheme, _, sig = entry.partition(",")
            if scheme != "v1":
                continue
            try:
                sig = base64.b64decode(sig, validate=True)
            except (binascii.Error, ValueError):
                continue
            ok |= hmac.compare_digest(sig, want)
        if not ok:
            raise WebhookError("INVALID_SIGNATURE", "webhook-signature does not match")


def _check_timestamp(t, now):
    if t is None or not re.fullmatch(r"[1-9][0-9]{0,15}", t):
        raise WebhookError("INVALID_SIGNATURE", "timestamp missing or malformed")
    if abs(now - int(t)) > TOLERANCE_SECONDS:
        raise WebhookError("INVALID_SIGNATURE", "timestamp too far from now (replayed, or clocks apart)")


def read_headers(text):
    """Parses "Name: value" lines into a dict with lowercase names."""
    headers = {}
    lines = text.splitlines()
    if lines and re.match(r"(HTTP/\S+ |[A-Z]+ \S+ HTTP/)", lines[0]):
        lines = lines[1:]
    for line in lines:
        if line == "":
            break
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ValueError("not a header line: %r" % line)
        headers[name.strip().lower()] = value.strip()
    return headers


def main(argv):
    secret = os.environ.get("TOLLGATE_WEBHOOK_SECRET")
    if len(argv) != 3 or not secret:
        print("usage: TOLLGATE_WEBHOOK_SECRET=whsec_... python3 verify_webhook.py HEADERS_FILE BODY_FILE",
              file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            headers = read_headers(f.read())
        with open(argv[2], "rb") as f:
            raw_body = f.read()  # bytes: the exact body
    except (OSError, ValueError) as err:
        print(err, file=sys.stderr)
        return 2
    try:
        verify_webhook(secret, headers, raw_body)
    except WebhookError as err:
        print("invalid: %s: %s" % (err.code, err))
        return 1
    except ValueError as err:
        print("invalid secret: %s" % err, file=sys.stderr)
        return 2
    print("valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
