"""service.schemas.FastSchema dumps what marshmallow's own dump gives, for every field kind it plans."""
from __future__ import annotations

import datetime as dt
import types

from marshmallow import Schema, fields, post_dump

from service import schemas
from service.schemas import FastSchema, Id, UtcDateTime


def _fields():
    class Inner(Schema):
        id = Id(required=True)
        at = UtcDateTime(allow_none=True)

    return {
        "id": Id(required=True),
        "name": fields.String(),
        "count": fields.Integer(),
        "flag": fields.Boolean(),
        "at": UtcDateTime(),
        "inner": fields.Nested(Inner, allow_none=True),
        "inners": fields.List(fields.Nested(Inner)),
        "tags": fields.List(fields.String()),
        "extra": fields.Dict(),
        "raw": fields.Raw(),
        "renamed": fields.String(data_key="otherName", attribute="source"),
        "secret": fields.String(load_only=True),
    }


Fast = FastSchema.from_dict(_fields(), name="FastSample")
Plain = Schema.from_dict(_fields(), name="PlainSample")

NOW = dt.datetime(2026, 12, 5, 10, 0, 0, 123456)
SAMPLES = [
    {"id": 7, "name": "Lan", "count": "12", "flag": 1, "at": NOW, "inner": {"id": 3, "at": None},
     "inners": [{"id": 1, "at": NOW.replace(microsecond=0)}, {"id": types.SimpleNamespace(id=2), "at": NOW}],
     "tags": ["a", 5], "extra": {"k": [1, 2]}, "raw": {"x": 1}, "source": "from attribute", "secret": "never"},
    {"id": 8},  # missing keys are left out, as marshmallow leaves them out
    {"id": 9, "name": None, "count": None, "flag": "false", "at": None, "inner": None, "inners": None, "tags": [],
     "extra": None, "raw": None, "source": None},
    {"id": 10, "flag": "yes", "count": 3.9},
    types.SimpleNamespace(id=11, name="object", count=2, flag=False, at=NOW, inner=None, inners=[], tags=["t"],
                          extra={}, raw=0, source="s"),
]


def test_same_as_marshmallow_one_by_one_and_many():
    for sample in SAMPLES:
        assert Fast().dump(sample) == Plain().dump(sample), sample
    assert Fast(many=True).dump(SAMPLES) == Plain(many=True).dump(SAMPLES)
    assert Fast().dump(SAMPLES, many=True) == Plain().dump(SAMPLES, many=True)
    assert schemas._schema_writer(Fast()) is not None  # planned, not fallen back


def test_a_schema_it_cannot_plan_dumps_as_marshmallow_does():
    class Hooked(FastSchema):
        name = fields.String()

        @post_dump
        def shout(self, data, **kwargs):
            return {k: v.upper() for k, v in data.items()}

    class Method(FastSchema):
        name = fields.Method("upper")

        def upper(self, obj):
            return obj["name"].upper()

    assert schemas._schema_writer(Hooked()) is None and Hooked().dump({"name": "an"}) == {"name": "AN"}
    assert schemas._schema_writer(Method()) is None and Method().dump({"name": "bình"}) == {"name": "BÌNH"}


def test_the_check_catches_a_difference(monkeypatch):
    """The tests run with LIENLAC_CHECK_FAST_DUMP=1: a plan that went wrong fails loudly."""
    assert schemas.CHECK_FAST_DUMP
    monkeypatch.setitem(schemas._writers, (Fast, False, None, ()), lambda obj: {"id": "wrong"})
    try:
        Fast().dump({"id": 1})
    except AssertionError as exc:
        assert "differs" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("the check did not fire")
