"""Standard Webhooks signatures (https://www.standardwebhooks.com), both directions.

The `standardwebhooks` package does the HMAC-SHA256 work, compares signatures in
constant time and enforces a 5-minute tolerance on `webhook-timestamp`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from counter.errors import ConfigError, InvalidSignature

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
SECRET_PREFIX = "whsec_"
# The Standard Webhooks specification sets the key at 24 to 64 random bytes (192 to 512 bits).
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64


def load_secret(secret: str, variable: str) -> Webhook:
    """Build a signer from a `whsec_<base64>` secret. Raises ConfigError naming `variable`.

    The base64 is checked strictly here, because the package decodes leniently and would
    turn a mistyped secret into a different key without a word.
    """
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error as exc:
        raise ConfigError(
            f"{variable} must be base64, optionally prefixed with {SECRET_PREFIX}: {exc}"
        ) from exc
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ConfigError(
            f"{variable} must encode {MIN_KEY_BYTES} to {MAX_KEY_BYTES} random bytes, not "
            f'{len(key)}; generate one with: python -c "import base64, os; '
            f"print('{SECRET_PREFIX}' + base64.b64encode(os.urandom(32)).decode())\""
        )
    return Webhook(secret)


def verify(webhook: Webhook, body: bytes, headers: Mapping[str, str]) -> None:
    """Raise InvalidSignature unless `body` carries a valid, fresh signature."""
    relevant = {name: headers[name] for name in SIGNATURE_HEADERS if name in headers}
    try:
        webhook.verify(body, relevant, json_parse=False)
    except WebhookVerificationError as exc:
        raise InvalidSignature(str(exc)) from exc


def signed_headers(webhook: Webhook, message_id: str, body: bytes, now: datetime) -> dict[str, str]:
    """Return the three Standard Webhooks headers for one outgoing body."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": webhook.sign(message_id, now, body),
    }
