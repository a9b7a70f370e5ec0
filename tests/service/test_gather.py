"""``service.gather``: the first call runs at once and alone, the calls arriving meanwhile run
together next, every caller gets its own outcome or error, and the lead is handed on."""
from __future__ import annotations

import threading
import time

import pytest

from service.gather import Gatherer, Waiting


class Recorder:
    def __init__(self):
        self.alone, self.together, self.released = [], [], 0
        self.first_in = threading.Event()
        self.let_go = threading.Event()

    def run_alone(self, item):
        self.alone.append(item.value)
        if item.value == "first":
            self.first_in.set()
            assert self.let_go.wait(10)
        if item.value == "boom":
            raise ValueError("boom")
        return f"alone:{item.value}"

    def run_together(self, items):
        self.together.append([i.value for i in items])
        if any(i.value == "sink" for i in items):
            raise KeyError("sink")
        for item in items:
            if item.value != "forgotten":
                item.outcome = f"together:{item.value}"

    def release(self):
        self.released += 1


def _call(gatherer, value, results):
    try:
        results[value] = gatherer.submit(Waiting(value))
    except Exception as exc:  # noqa: BLE001 - compared below
        results[value] = exc


def _while_first_in_flight(values, limit=200):
    rec = Recorder()
    gatherer = Gatherer(rec.run_alone, rec.run_together, limit=limit, release=rec.release)
    results: dict = {}
    first = threading.Thread(target=_call, args=(gatherer, "first", results))
    first.start()
    assert rec.first_in.wait(10)
    others = []
    for v in values:
        t = threading.Thread(target=_call, args=(gatherer, v, results))
        t.start()
        others.append(t)
        deadline = time.monotonic() + 10
        while len(gatherer._pending) < len(others) and time.monotonic() < deadline:
            time.sleep(0.001)
    rec.let_go.set()
    for t in [first, *others]:
        t.join(10)
    return rec, gatherer, results


def test_a_lone_call_runs_alone_at_once():
    rec = Recorder()
    gatherer = Gatherer(rec.run_alone, rec.run_together, release=rec.release)
    assert gatherer.submit(Waiting("x")) == "alone:x"
    assert gatherer.submit(Waiting("y")) == "alone:y"
    assert rec.alone == ["x", "y"] and rec.together == [] and rec.released == 0


def test_calls_arriving_meanwhile_run_together_next():
    rec, gatherer, results = _while_first_in_flight(["a", "b", "c"])
    assert results == {"first": "alone:first", "a": "together:a", "b": "together:b", "c": "together:c"}
    assert rec.together == [["a", "b", "c"]]
    assert rec.released == 3  # each waiting call let go of what it held
    assert gatherer.submit(Waiting("after")) == "alone:after"  # nobody left leading


def test_a_batch_is_at_most_limit_and_the_rest_follows():
    rec, _gatherer, results = _while_first_in_flight(["a", "b", "c", "d", "e"], limit=2)
    assert rec.together == [["a", "b"], ["c", "d"]] and rec.alone == ["first", "e"]
    assert results["e"] == "alone:e" and results["c"] == "together:c"


def test_errors_reach_their_own_callers_only():
    rec = Recorder()
    gatherer = Gatherer(rec.run_alone, rec.run_together)
    with pytest.raises(ValueError):
        gatherer.submit(Waiting("boom"))
    _rec, gatherer, results = _while_first_in_flight(["sink", "other"])
    assert isinstance(results["sink"], KeyError) and isinstance(results["other"], KeyError)
    _rec, gatherer, results = _while_first_in_flight(["fine", "forgotten"])
    assert results["fine"] == "together:fine" and isinstance(results["forgotten"], RuntimeError)
    assert gatherer.submit(Waiting("after")) == "alone:after"


def test_an_outcome_of_none_is_an_outcome():
    gatherer = Gatherer(lambda item: None, lambda items: None)
    assert gatherer.submit(Waiting("x")) is None
