"""API keys, for every protocol that takes them (the HTTP middleware in service.api.auth, the gRPC
server in service.protocols.v2): where they come from, how a request presents one, and a
comparison that does not reveal by its timing which key or how much of one matched."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from service.settings import Settings


def load_api_keys(settings: Settings) -> list[bytes]:
    """Keys from the settings and the key file; a malformed key stops start-up."""
    keys = [key.get_secret_value() for key in settings.api_keys]
    if settings.api_keys_file is not None:
        try:
            lines = settings.api_keys_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"INFER_API_KEYS_FILE: cannot read {settings.api_keys_file}") from exc
        # Stripped before the comment test: an indented "#retired-key" is a comment, not a key.
        stripped = (line.strip() for line in lines)
        keys += [line for line in stripped if line and not line.startswith("#")]
    for i, key in enumerate(keys):
        if not key or any(c.isspace() for c in key) or not key.isprintable():
            raise ValueError(f"API key #{i + 1} is empty or holds whitespace/control characters")
    return [key.encode("utf-8") for key in keys]


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The key from ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``, if either is there."""
    for name, value in headers:
        if name == b"x-api-key":
            return value.strip()
        if name == b"authorization":
            scheme, _, credentials = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and credentials.strip():
                return credentials.strip()
    return None


def key_matches(candidate: bytes, keys: list[bytes]) -> bool:
    """Constant-time over every key: all are compared even after a match."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key)
    return matched
