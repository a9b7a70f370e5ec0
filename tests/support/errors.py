"""The one assertion of the API.md error envelope: ``{"error": {"code", "message", ...}}``."""
from __future__ import annotations

from service.errors import CODES


def assert_error(response, status: int, code: str | None = None) -> dict:
    """``response`` (a Flask test response or a ``requests`` one) has ``status`` and the error envelope
    with ``code`` (by default the code ``service.errors`` gives that status) and a message; returns ``body["error"]``."""
    got = getattr(response, "status_code", None)
    body = response.get_json() if hasattr(response, "get_json") else response.json()
    assert got == status, (got, body)
    code = code or CODES[status]
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert body["error"]["code"] == code and body["error"]["message"], body
    return body["error"]
