"""Gathering concurrent calls of one web process into one: a batch per round trip.

Under a burst, a web process runs many requests or socket events at once, each asking the same
kind of question (a message to store, a conversation's members to read). Asked one by one, each
costs a round trip and a statement of its own; gathered, the ones that arrive while one is in
flight go together in the next. No call waits for company: the first runs at once, alone, so a
lone call is as fast as without gathering; only the calls that would have queued anyway (behind
the pool, the lock, the database) are gathered.

    READS = Gatherer(alone=read_one, together=read_many, limit=200)
    READS.submit(Waiting(42))          # read_one(item) alone, or part of read_many([...])

``alone(item)`` returns the item's outcome (an exception is handed to that caller); ``together(items)``
sets each item's ``outcome`` (or ``error``) itself, and whatever it leaves unset fails with an error.
The first waiting call runs the next batch (in its own thread or greenlet, so its own app context
and connection), then hands the lead to the first of those that arrived meanwhile. ``release``
runs before a call waits (the messaging batch gives back its database connection there).
"""
from __future__ import annotations

import threading
from typing import Callable


class Waiting:
    """One call waiting to be run: ``value`` (what it asks), and its ``outcome`` or ``error``."""

    __slots__ = ("value", "_outcome", "_has_outcome", "error", "lead", "_done")

    def __init__(self, value=None):
        self.value = value
        self._outcome, self._has_outcome = None, False
        self.error: BaseException | None = None
        self.lead = False
        self._done = threading.Event()

    @property
    def outcome(self):
        return self._outcome

    @outcome.setter
    def outcome(self, value) -> None:
        self._outcome, self._has_outcome = value, True

    @property
    def settled(self) -> bool:
        return self._has_outcome or self.error is not None

    def result(self):
        if self.error is not None:
            raise self.error
        return self._outcome


class Gatherer:
    """Calls arriving while one is in flight run together next (see the module's docstring)."""

    def __init__(self, alone: Callable[[Waiting], object], together: Callable[[list], None], limit: int = 200,
                 release: Callable[[], None] | None = None):
        self.alone, self.together, self.limit, self.release = alone, together, limit, release
        self._guard = threading.Lock()
        self._pending: list[Waiting] = []
        self._busy = False

    def submit(self, item: Waiting):
        """Run ``item`` (alone, or with others): its outcome, or its error raised."""
        with self._guard:
            leading = not self._busy
            self._busy = True
            if not leading:
                self._pending.append(item)
        if leading:
            batch = [item]
        else:
            if self.release is not None:
                self.release()
            item._done.wait()
            if not item.lead:
                return item.result()
            with self._guard:  # handed the lead: take the queue (this call is first in it)
                batch, self._pending = self._pending[:self.limit], self._pending[self.limit:]
        try:
            if len(batch) == 1:
                settle(item, self.alone)
            else:
                self.together(batch)
        except Exception as exc:  # noqa: BLE001 - handed to every call of the batch left without an outcome
            for other in batch:
                if not other.settled:
                    other.error = exc
        finally:
            for other in batch:
                if not other.settled:
                    other.error = RuntimeError("the batch this call was in stopped")
            with self._guard:
                follower = self._pending[0] if self._pending else None
                if follower is None:
                    self._busy = False
                else:
                    follower.lead = True
            for other in batch:
                if other is not item:
                    other._done.set()
            if follower is not None:
                follower._done.set()
        return item.result()


def settle(item: Waiting, run: Callable[[Waiting], object]) -> None:
    """``item.outcome = run(item)``, or its error."""
    try:
        item.outcome = run(item)
    except Exception as exc:  # noqa: BLE001 - handed to the call's own thread, which raises it
        item.error = exc


def per_app(app, key: str, make: Callable[[], Gatherer]) -> Gatherer:
    """The app's gatherer under ``key`` (one per web process and app), made on first use."""
    found = app.extensions.get(key)
    if found is None:
        found = app.extensions.setdefault(key, make())
    return found
