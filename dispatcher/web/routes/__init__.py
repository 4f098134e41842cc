"""One router per area: appeals and campaigns, operators, health, webhooks, docs, pages.

No router imports another; what they share lives in ``web/deps.py``, ``web/schemas.py``
and ``web/html.py``.
"""
