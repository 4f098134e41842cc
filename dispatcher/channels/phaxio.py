"""Phaxio's callback signature: shared by the fax gateway simulator and the webhook."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping


def phaxio_signature(
    token: str, url: str, fields: Mapping[str, str], files: Mapping[str, bytes]
) -> str:
    """Phaxio's callback signature (the ``X-Phaxio-Signature`` header value).

    Lowercase hex HMAC-SHA1 keyed with ``token`` over: ``url`` exactly as registered,
    then ``name + value`` of every POST field sorted by name, then ``name +
    sha1_hex(content)`` of every file part sorted by name.
    """
    signed = url
    signed += "".join(name + fields[name] for name in sorted(fields))
    # SHA-1 is fixed by Phaxio's scheme, not a choice made here.
    for name in sorted(files):
        signed += name + hashlib.sha1(files[name]).hexdigest()  # noqa: S324  # nosec B324
    return hmac.new(token.encode(), signed.encode(), hashlib.sha1).hexdigest()


def verify_phaxio_signature(
    token: str,
    url: str,
    fields: Mapping[str, str],
    files: Mapping[str, bytes],
    signature: str,
) -> bool:
    """True if ``signature`` is what :func:`phaxio_signature` gives (constant time)."""
    expected = phaxio_signature(token, url, fields, files)
    return hmac.compare_digest(expected, signature.strip().lower())
