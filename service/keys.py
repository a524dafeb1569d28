"""API keys, for every protocol that takes them (the HTTP middleware in service.api.auth, the gRPC
server in service.protocols.v2): where they come from, how a request presents one, and a
comparison that does not reveal by its timing which key or how much of one matched."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from pathlib import Path

from pydantic import SecretStr

from service.settings import Settings


def load_api_keys(settings: Settings) -> list[bytes]:
    """Keys from the settings and the key file; a malformed key stops start-up."""
    return read_keys(settings.api_keys, settings.api_keys_file, "INFER_API_KEYS_FILE")


def load_admin_keys(settings: Settings) -> list[bytes]:
    """The admin API's keys (``INFER_ADMIN_KEYS`` and its file), in the same format."""
    return read_keys(settings.admin_keys, settings.admin_keys_file, "INFER_ADMIN_KEYS_FILE")


def read_keys(configured: list[SecretStr], file: Path | None, setting: str) -> list[bytes]:
    keys = [key.get_secret_value() for key in configured]
    if file is not None:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"{setting}: cannot read {file}") from exc
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
