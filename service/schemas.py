"""Marshmallow building blocks shared by every package's schemas."""
from __future__ import annotations

import datetime as dt
import os
import threading

from marshmallow import Schema, ValidationError, fields, missing, validate


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


# --- dumping the hot paths' answers without marshmallow's per-field machinery ------------------
_MISSING = object()


def _value_of(obj, key):
    """As marshmallow's accessor (``utils.get_value`` for a plain key): the item, else the attribute."""
    if isinstance(obj, dict):
        return obj[key] if key in obj else getattr(obj, key, _MISSING)
    return getattr(obj, key, _MISSING)


def _field_writer(field):
    """``value -> output`` for a field marshmallow would serialize the same way, else None."""
    kind = type(field)
    if kind is Id:
        return lambda v: None if v is None else (str(v) if type(v) is int else str(getattr(v, "id", v)))
    if kind is UtcDateTime:
        return lambda v: UtcDateTime._serialize(field, v, None, None)
    if kind is fields.String:
        return lambda v: None if v is None else (v if isinstance(v, str) else str(v))
    if kind is fields.Integer and not field.as_string:
        return lambda v: None if v is None else int(v)
    if kind is fields.Boolean:  # marshmallow 4 dumps a boolean's value as it is
        return lambda v: v
    if kind is fields.Nested and not (field.only or field.exclude):
        nested = field.schema
        dump = _schema_writer(nested, many=nested.many or field.many)
        return None if dump is None else (lambda v: None if v is None else dump(v))
    if kind is fields.List:
        inner = _field_writer(field.inner)
        return None if inner is None else (lambda v: None if v is None else [inner(each) for each in v])
    if kind in (fields.Raw, fields.Dict) and not getattr(field, "key_field", None) and not getattr(field, "value_field", None):
        return (lambda v: None if v is None else dict(v)) if kind is fields.Dict else (lambda v: v)
    return None


_writers: dict = {}
_writers_lock = threading.Lock()


def _schema_writer(schema: Schema, many: bool = False):
    """A function dumping ``obj`` as ``schema.dump`` would, for schemas made of the fields above
    (no hooks, no ``only``/``exclude``, no dotted attributes); None for any other schema."""
    key = (type(schema), many, schema.only, tuple(schema.exclude or ()))
    if key in _writers:
        return _writers[key]
    plan, ok = [], not (schema._hooks.get("pre_dump") or schema._hooks.get("post_dump"))
    for name, field in schema.dump_fields.items() if ok else ():
        attribute = field.attribute or name
        write = _field_writer(field)
        if write is None or "." in attribute or field.dump_default is not missing:
            ok = False
            break
        plan.append((field.data_key or name, attribute, write))
    writer = None
    if ok:
        def one(obj):
            out = {}
            if type(obj) is dict:
                for out_key, attribute, write in plan:
                    if attribute in obj:
                        out[out_key] = write(obj[attribute])
                    else:  # as marshmallow: a dict's attribute, else the field is left out
                        value = getattr(obj, attribute, _MISSING)
                        if value is not _MISSING:
                            out[out_key] = write(value)
                return out
            for out_key, attribute, write in plan:
                value = _value_of(obj, attribute)
                if value is not _MISSING:
                    out[out_key] = write(value)
            return out
        writer = (lambda objs: None if objs is None else [one(o) for o in objs]) if many else one
    with _writers_lock:
        _writers[key] = writer
    return writer


# Tests set this: every fast dump is compared with marshmallow's own (tests/conftest.py).
CHECK_FAST_DUMP = os.environ.get("LIENLAC_CHECK_FAST_DUMP") == "1"


class FastSchema(Schema):
    """A response schema of a hot path: ``dump`` gives what marshmallow's would, without its
    per-field machinery (a plan of accessors and converters made once per schema: about five times
    faster on the conversation list). Schemas it cannot plan (hooks, other field kinds) dump as
    usual. The OpenAPI of ``mobile_api_docs`` is unchanged: it is built from the fields."""

    def dump(self, obj, *, many: bool | None = None):
        many = self.many if many is None else bool(many)
        writer = _schema_writer(self, many)
        if writer is None:
            return super().dump(obj, many=many)
        out = writer(obj)
        if CHECK_FAST_DUMP:
            expected = super().dump(obj, many=many)
            if out != expected:
                raise AssertionError(f"{type(self).__name__}: the fast dump differs from marshmallow's:\n"
                                     f"{out!r}\n{expected!r}")
        return out


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
    """``{"items": [...], "next_cursor": str|null}`` for an item schema (dumped as a ``FastSchema``)."""
    return FastSchema.from_dict(
        {"items": fields.List(fields.Nested(item_schema), required=True),
         "next_cursor": fields.String(allow_none=True, required=True)},
        name=name,
    )


__all__ = ["Id", "UtcDateTime", "FastSchema", "ListArgs", "ErrorEnvelope", "page_schema", "ValidationError"]
