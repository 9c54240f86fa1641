#!/usr/bin/env python3
"""Verifies the signature of a Tollgate response with the Python standard library alone.

The signature is ECDSA on the curve secp256k1 of the SHA-256 of the raw
response body, DER encoded, sent in standard base64 in the X-Signature header,
with the ID of the key in X-Signature-Key-Id. The standard library has no
elliptic curves, so the verification is written out below (about 100 lines).
It checks a public signature against a public key, so it needs no constant
time; it takes some 15 ms of CPU a signature. If you can add a dependency, the
`cryptography` package does the same, faster:

    # pip install cryptography
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = serialization.load_pem_public_key(pem_bytes)
    key.verify(base64.b64decode(x_signature), raw_body, ec.ECDSA(hashes.SHA256()))  # raises InvalidSignature

The gateway publishes its keys at /.well-known/response-signing-key: as a JSON
document listing every published key (keys[].kid, keys[].pem, keys[].jwk), or
the signing key's PEM alone with Accept: application/x-pem-file. Keys rotate:
pick the key whose kid is the response's X-Signature-Key-Id, and fetch the
document again when a response names a kid you do not know.

Verify the body as received, before parsing it and before anything
decompresses it. With urllib (which does not decompress):

    with urllib.request.urlopen(url) as resp:
        raw_body = resp.read()
        ok = verify_signature(public_key_pem, raw_body, resp.headers["X-Signature"])

A response without X-Signature is not signed; X-Signature-Status says why,
e.g. 'unsigned; reason="too-large"'.

Run as a program, it exits 0 if the signature is valid, 1 if not, 2 on a
usage error:

    python3 verify_response.py PUBLIC_KEY_PEM_FILE BODY_FILE X_SIGNATURE
"""

import base64
import binascii
import hashlib
import re
import sys

# secp256k1: y^2 = x^3 + 7 over the integers modulo P; G generates a group of
# prime order N.
P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
     0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)

# The DER prefix of an EC public key on secp256k1 (RFC 5480): the algorithm
# identifier id-ecPublicKey (1.2.840.10045.2.1) with namedCurve secp256k1
# (1.3.132.0.10).
ALGORITHM = bytes.fromhex("301006072a8648ce3d020106052b8104000a")


def _add(a, b):
    """Adds two points; None is the point at infinity."""
    if a is None:
        return b
    if b is None:
        return a
    (x1, y1), (x2, y2) = a, b
    if x1 == x2:
        if (y1 + y2) % P == 0:
            return None
        lam = 3 * x1 * x1 * pow(2 * y1, -1, P) % P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (lam * lam - x1 - x2) % P
    return x3, (lam * (x1 - x3) - y1) % P


def _mul(k, point):
    result = None
    while k:
        if k & 1:
            result = _add(result, point)
        point = _add(point, point)
        k >>= 1
    return result


def _der(data, tag):
    """Splits DER data into the contents of its first element, which must have tag, and the rest."""
    if len(data) < 2 or data[0] != tag:
        raise ValueError("unexpected DER element")
    length, i = data[1], 2
    if length & 0x80:
        n = length & 0x7F
        if not 1 <= n <= 2 or len(data) < 2 + n:
            raise ValueError("bad DER length")
        length, i = int.from_bytes(data[2:2 + n], "big"), 2 + n
        if length < 0x80 or data[2] == 0:
            raise ValueError("non-minimal DER length")
    if len(data) < i + length:
        raise ValueError("truncated DER")
    return data[i:i + length], data[i + length:]


def _der_integer(data):
    value, rest = _der(data, 0x02)
    if not value or value[0] & 0x80 or (len(value) > 1 and value[0] == 0 and not value[1] & 0x80):
        raise ValueError("not a minimal positive DER INTEGER")
    return int.from_bytes(value, "big"), rest


def parse_public_key(pem):
    """Returns the point of a PEM "PUBLIC KEY" block holding a secp256k1 key."""
    m = re.search(r"-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----", pem)
    if not m:
        raise ValueError("no PEM PUBLIC KEY block")
    spki, rest = _der(base64.b64decode("".join(m.group(1).split()), validate=True), 0x30)
    if rest or not spki.startswith(ALGORITHM):
        raise ValueError("not a secp256k1 public key")
    bits, rest = _der(spki[len(ALGORITHM):], 0x03)
    if rest or not bits or bits[0] != 0:
        raise ValueError("malformed public key bits")
    point = bits[1:]
    if len(point) == 65 and point[0] == 4:
        x, y = int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big")
    elif len(point) == 33 and point[0] in (2, 3):
        x = int.from_bytes(point[1:], "big")
        y = pow((x**3 + 7) % P, (P + 1) // 4, P)  # a square root, as P % 4 == 3
        if y % 2 != point[0] % 2:
            y = P - y
    else:
        raise ValueError("not an uncompressed or compressed point")
    if x >= P or y >= P or (y * y - x**3 - 7) % P != 0:
        raise ValueError("the point is not on secp256k1")
    return x, y


def verify_signature(public_key_pem, raw_body, signature_b64):
    """Reports whether signature_b64 (X-Signature) is the signature of raw_body (bytes) by the key.

    Both low-S and high-S signatures are accepted, as OpenSSL does; Tollgate
    makes low-S ones.
    """
    q = parse_public_key(public_key_pem)
    try:
        der = base64.b64decode(signature_b64, validate=True)
        seq, rest = _der(der, 0x30)
        r, seq = _der_integer(seq)
        s, seq = _der_integer(seq)
    except (binascii.Error, ValueError):
        return False
    if rest or seq or not (1 <= r < N and 1 <= s < N):
        return False
    e = int.from_bytes(hashlib.sha256(raw_body).digest(), "big")
    w = pow(s, -1, N)
    point = _add(_mul(e * w % N, G), _mul(r * w % N, q))
    return point is not None and point[0] % N == r


def main(argv):
    if len(argv) != 4:
        print("usage: python3 verify_response.py PUBLIC_KEY_PEM_FILE BODY_FILE X_SIGNATURE", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="ascii") as f:
            pem = f.read()
        with open(argv[2], "rb") as f:
            raw_body = f.read()  # bytes: the exact body
        valid = verify_signature(pem, raw_body, argv[3])
    except (OSError, ValueError) as err:
        print(err, file=sys.stderr)
        return 2
    print("valid" if valid else "invalid: the signature does not match the body and key")
    return 0 if valid else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
