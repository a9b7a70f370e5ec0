"""Marshmallow building blocks shared by every package's schemas."""
from __future__ import annotations

import datetime as dt

from marshmallow import Schema, ValidationError, fields, validate


class Id(fields.Field):
    """Ids are opaque strings to the client; stored as integers."""

    default_error_messages = {"invalid": "Not a valid id."}

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return str(getattr(value, "id", value))

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        try:
            number = int(str(value).strip())
        except (TypeError, ValueError) as exc:
            raise self.make_error("invalid") from exc
        if number <= 0 or number >= 2**63:
            raise self.make_error("invalid")
        return number


class UtcDateTime(fields.DateTime):
    """ISO-8601 UTC with a ``Z`` (stored naive UTC)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="seconds" if not value.microsecond else "milliseconds") + "Z"

    def _deserialize(self, value, attr, data, **kwargs):
        result = super()._deserialize(value, attr, data, **kwargs)
        if result.tzinfo is None:
            raise self.make_error("invalid", input=value, obj_type="datetime with a timezone")
        return result.astimezone(dt.timezone.utc).replace(tzinfo=None)


class ListArgs(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(load_default=None)


class ErrorBody(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields = fields.Dict()


class ErrorEnvelope(Schema):
    error = fields.Nested(ErrorBody, required=True)


def page_schema(item_schema: type[Schema], name: str) -> type[Schema]:
    """``{"items": [...], "next_cursor": str|null}`` for an item schema."""
    return Schema.from_dict(
        {"items": fields.List(fields.Nested(item_schema), required=True),
         "next_cursor": fields.String(allow_none=True, required=True)},
        name=name,
    )


__all__ = ["Id", "UtcDateTime", "ListArgs", "ErrorEnvelope", "page_schema", "ValidationError"]
