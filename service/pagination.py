"""Keyset pagination with opaque cursors: ``{"items": [...], "next_cursor": ...}``."""
from __future__ import annotations

import base64
import json

from .errors import ValidationError


def encode_cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None):
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, RecursionError) as exc:
        raise ValidationError("Not a valid cursor.", fields={"cursor": ["Not a valid cursor."]}) from exc


def paginate_by_id(query, id_field, limit: int, cursor: str | None, newest_first: bool = True) -> dict:
    """Page a query by a unique increasing integer column."""
    after = decode_cursor(cursor)
    if after is not None:
        if not isinstance(after, int) or isinstance(after, bool) or not -2**63 < after < 2**63:
            raise ValidationError("Not a valid cursor.", fields={"cursor": ["Not a valid cursor."]})
        query = query.where(id_field < after if newest_first else id_field > after)
    rows = list(query.order_by(id_field.desc() if newest_first else id_field.asc()).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    last = getattr(rows[-1], id_field.name) if rows else None
    return {"items": rows, "next_cursor": encode_cursor(last) if more else None}
