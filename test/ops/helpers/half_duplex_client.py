"""A half-duplex stream client: Python `requests` sends the whole body before it reads the answer.

Usage: half_duplex_client.py BASE_URL TOKEN SIZE_BYTES WORK_DIR
Encrypts SIZE_BYTES of seeded random bytes (data=generator: chunked upload), writes the stream
ciphertext to WORK_DIR, decrypts it back (data=file object: Content-Length upload), and prints
one JSON line: the plaintext's and the decrypted bytes' SHA-256, the sizes and the seconds taken.
"""
import hashlib
import json
import os
import random
import sys
import time

import requests

base, token, size, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
headers = {"authorization": f"Bearer {token}", "content-type": "application/octet-stream"}
BLOCK = 1024 * 1024
plain_hash = hashlib.sha256()


def plaintext():
    rng = random.Random(7)
    left = size
    while left > 0:
        block = rng.randbytes(min(BLOCK, left))
        plain_hash.update(block)
        left -= len(block)
        yield block


started = time.monotonic()
sealed_path = os.path.join(work, "sealed.es2")
with requests.post(f"{base}/v1/encrypt/stream", data=plaintext(), headers=headers, stream=True, timeout=(10, 120)) as response:
    response.raise_for_status()
    with open(sealed_path, "wb") as sealed:
        for chunk in response.iter_content(BLOCK):
            sealed.write(chunk)
encrypt_seconds = time.monotonic() - started

out_hash = hashlib.sha256()
out_bytes = 0
started = time.monotonic()
with open(sealed_path, "rb") as body:
    with requests.post(f"{base}/v1/decrypt/stream", data=body, headers=headers, stream=True, timeout=(10, 120)) as response:
        response.raise_for_status()
        for chunk in response.iter_content(BLOCK):
            out_hash.update(chunk)
            out_bytes += len(chunk)
decrypt_seconds = time.monotonic() - started

print(json.dumps({
    "plainSha256": plain_hash.hexdigest(),
    "outSha256": out_hash.hexdigest(),
    "sealedBytes": os.path.getsize(sealed_path),
    "outBytes": out_bytes,
    "encryptSeconds": round(encrypt_seconds, 2),
    "decryptSeconds": round(decrypt_seconds, 2),
}))
