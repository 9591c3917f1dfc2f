"""Webhook signatures: HMAC-SHA256 of ``timestamp + "." + raw body`` with the secret.

A receiver recomputes it from the ``X-Harvester-Timestamp`` header and the body bytes as
received, compares in constant time and rejects old timestamps (replays); see the README.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Harvester-Signature-256"
TIMESTAMP_HEADER = "X-Harvester-Timestamp"
DELIVERY_HEADER = "X-Harvester-Delivery"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The header value: ``sha256=<hex>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(signature(secret, timestamp, body), header)
