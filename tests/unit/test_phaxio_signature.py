"""The fax callback signature against values our module did not compute.

Phaxio's rule (https://www.phaxio.com/docs/security/callbacks): HMAC-SHA1, keyed with the
callback token, over the callback URL exactly as registered, then each POST field's name
and value sorted by name, then each file part's name and the SHA-1 hex of its content
sorted by name; sent as lowercase hex in ``X-Phaxio-Signature``.
"""

from __future__ import annotations

import hashlib
import hmac

from dispatcher.channels.phaxio import phaxio_signature, verify_phaxio_signature

# The vector in Phaxio's own Ruby client's tests (phaxio-ruby, spec/resources/webhook_spec.rb):
# token "test-webhook-token", URL "example.com", params {test: true}.
PUBLISHED = "64a735ef0c47a0ae671e381c046648f0966deb29"


def test_phaxios_published_vector() -> None:
    assert phaxio_signature("test-webhook-token", "example.com", {"test": "true"}, {}) == PUBLISHED
    assert verify_phaxio_signature(
        "test-webhook-token", "example.com", {"test": "true"}, {}, PUBLISHED.upper()
    )


def test_a_status_callback_with_a_file_signed_by_hand() -> None:
    token = "cb-token-9f2"
    url = "https://dispatch.example.org/webhooks/fax"
    fax = '{"id":4242,"status":"success","direction":"sent"}'
    fields = {"success": "true", "fax": fax, "is_test": "false", "direction": "sent"}
    pdf = b"%PDF-1.4 fax page"
    # Written out in the order the rule gives, without the module's sorting.
    signed = (
        url
        + "direction"
        + "sent"
        + "fax"
        + fax
        + "is_test"
        + "false"
        + "success"
        + "true"
        + "file"
        + hashlib.sha1(pdf).hexdigest()  # noqa: S324 - SHA-1 is what Phaxio's rule uses
    )
    by_hand = hmac.new(token.encode(), signed.encode(), hashlib.sha1).hexdigest()
    assert phaxio_signature(token, url, fields, {"file": pdf}) == by_hand
    assert verify_phaxio_signature(token, url, fields, {"file": pdf}, by_hand)
    tampered = {**fields, "success": "false"}
    assert not verify_phaxio_signature(token, url, tampered, {"file": pdf}, by_hand)
    assert not verify_phaxio_signature(token, url + "/", fields, {"file": pdf}, by_hand)
