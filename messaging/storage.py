"""Where attachment bytes live, behind a small interface (local disk by default).

``put(key, data, content_type)``, ``get(key) -> bytes``, ``url(key) -> str | None`` (a direct
download URL when the backend has one, e.g. a presigned object-store URL; ``None`` means "serve
it through the API") and ``delete(key)``. Keys are generated here, never taken from a client.
"""
from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path
from typing import Protocol

from flask import current_app

# Types accepted for attachments, recognised by their first bytes (never by name or header).
_SIGNATURES = (
    ("image/jpeg", lambda b: b[:3] == b"\xff\xd8\xff"),
    ("image/png", lambda b: b[:8] == b"\x89PNG\r\n\x1a\n"),
    ("image/webp", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
    ("application/pdf", lambda b: b[:5] == b"%PDF-"),
)
ALLOWED_TYPES = tuple(t for t, _ in _SIGNATURES)


def sniff(data: bytes) -> str | None:
    """The content type of ``data`` by its magic bytes, or None when it is not an accepted type."""
    for content_type, matches in _SIGNATURES:
        if matches(data):
            return content_type
    return None


class Storage(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def url(self, key: str) -> str | None: ...

    def delete(self, key: str) -> None: ...


class LocalStorage:
    """Files under one directory; ``key`` is a relative path made by ``new_key``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError("storage key outside the storage root")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def url(self, key: str) -> str | None:
        return None

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass


def new_key(now: dt.datetime) -> str:
    return f"{now:%Y/%m}/{uuid.uuid4().hex}"


def storage() -> Storage:
    """The app's storage (``app.extensions["lienlac.storage"]`` may hold another backend)."""
    ext = current_app.extensions
    if "lienlac.storage" not in ext:
        ext["lienlac.storage"] = LocalStorage(current_app.config["LIENLAC"].upload_dir)
    return ext["lienlac.storage"]
