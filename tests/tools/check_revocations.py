#!/usr/bin/env python3
"""Independent check of the service's revocation list (GET /trust/revocations), written apart from the Rust
code: PyPI `cryptography` for X.509 and ECDSA, `cbor2` and `base45` (the hc1-verify checker's packages) for HC1.

    check_revocations.py <list.json> <dsc.pem> [HC1 ...]

Checks the EU DCC gateway batch format (dgc-gateway RevocationBatchDto: country, expires, kid, hashType,
entries[{hash}], at most 1000 entries), the flattened JWS (RFC 7515 section 7.2.2) and its signature with the
trusted DSC, and, for each HC1 given, whether its SIGNATURE hash (SHA-256 of the COSE signature, for ES256
only r, first 16 bytes, base64) is listed. Prints a JSON report; exit 0 when format and signature are good.
"""
import base64
import datetime
import hashlib
import json
import re
import sys
import zlib

import base45
import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fail(report, message):
    report["problems"].append(message)


def check_batches(report, batches, now):
    if not isinstance(batches, list):
        fail(report, "batches is not a list")
        return
    for i, batch in enumerate(batches):
        where = f"batches[{i}]"
        keys = {"country", "expires", "kid", "hashType", "entries"}
        if set(batch) != keys:
            fail(report, f"{where} has members {sorted(batch)}, expected {sorted(keys)}")
            continue
        if not re.fullmatch(r"[A-Z]{2}", batch["country"]):
            fail(report, f"{where}.country {batch['country']!r} is not ISO 3166 alpha-2")
        if len(base64.b64decode(batch["kid"], validate=True)) != 8:
            fail(report, f"{where}.kid is not base64 of 8 bytes")
        if batch["hashType"] not in ("SIGNATURE", "UCI", "COUNTRYCODEUCI"):
            fail(report, f"{where}.hashType {batch['hashType']!r}")
        expires = datetime.datetime.fromisoformat(batch["expires"].replace("Z", "+00:00"))
        if expires <= now:
            fail(report, f"{where} expired at {batch['expires']} but is still listed")
        if not 1 <= len(batch["entries"]) <= 1000:
            fail(report, f"{where} has {len(batch['entries'])} entries (1 to 1000 allowed)")
        for j, entry in enumerate(batch["entries"]):
            if set(entry) != {"hash"} or len(entry["hash"]) != 24 \
                    or len(base64.b64decode(entry["hash"], validate=True)) != 16:
                fail(report, f"{where}.entries[{j}] is not {{hash: base64 of 16 bytes}}")


def verify_jws(report, document, dsc):
    header = json.loads(b64url(document["protected"]))
    report["header"] = {k: v for k, v in header.items() if k != "x5c"}
    signing_input = (document["protected"] + "." + document["payload"]).encode()
    signature = b64url(document["signature"])
    der = dsc.public_bytes(Encoding.DER)
    kid = base64.b64encode(hashlib.sha256(der).digest()[:8]).decode()
    if header.get("kid") != kid:
        fail(report, f"JWS kid {header.get('kid')} is not the trusted DSC's {kid}")
    if base64.b64decode(header.get("x5c", [""])[0]) != der:
        fail(report, "JWS x5c[0] is not the trusted DSC")
    key = dsc.public_key()
    try:
        if header.get("alg") == "ES256":
            if len(signature) != 64:
                raise InvalidSignature()
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
        elif header.get("alg") == "PS256":
            key.verify(signature, signing_input,
                       padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
        else:
            fail(report, f"JWS alg {header.get('alg')!r}")
            return None
        report["signature_valid"] = True
    except InvalidSignature:
        fail(report, "the JWS signature does not verify with the DSC")
        return None
    return json.loads(b64url(document["payload"]))


def signature_entry(hc1):
    cose = cbor2.loads(zlib.decompress(base45.b45decode(hc1[4:])))
    if isinstance(cose, cbor2.CBORTag):
        cose = cose.value
    protected, _unprotected, _payload, signature = cose
    header = cbor2.loads(protected)
    alg, kid = header.get(1), header.get(4)
    signed = signature[: len(signature) // 2] if alg == -7 else signature
    return base64.b64encode(kid).decode(), base64.b64encode(hashlib.sha256(signed).digest()[:16]).decode()


def main():
    list_path, dsc_path, hc1s = sys.argv[1], sys.argv[2], sys.argv[3:]
    report = {"problems": [], "signature_valid": False}
    with open(list_path, "rb") as f:
        document = json.load(f)
    with open(dsc_path, "rb") as f:
        dsc = x509.load_pem_x509_certificates(f.read())[0]
    payload = verify_jws(report, document, dsc)
    now = datetime.datetime.now(datetime.timezone.utc)
    if payload is not None:
        if set(payload) != {"batches"}:
            fail(report, f"the signed payload has members {sorted(payload)}, expected ['batches']")
        check_batches(report, payload.get("batches"), now)
        if document.get("batches") != payload.get("batches"):
            fail(report, "the readable batches differ from the signed ones")
        report["batches"] = len(payload.get("batches", []))
        listed = {(b["kid"], e["hash"]) for b in payload.get("batches", []) if b["hashType"] == "SIGNATURE"
                  for e in b["entries"]}
        report["revoked"] = [signature_entry(h) in listed for h in hc1s]
    json.dump(report, sys.stdout)
    print()
    sys.exit(0 if not report["problems"] else 1)


if __name__ == "__main__":
    main()
