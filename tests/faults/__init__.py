"""Fault tests (issue 14), real processes on PostgreSQL, each well under a minute:

- ``test_worker_sigkill``: a worker SIGKILLed inside an inbox chunk job, and inside a push job;
  nothing but the surviving worker's recovery sweep finishes the fan-out;
- ``test_redis_restart``: Redis SIGKILLed and started again, empty, mid fan-out (the recovery sweep
  redoes what its lost jobs would have done);
- ``test_pg_terminate``: ``pg_terminate_backend`` of a web process's connections mid-traffic;
- ``test_kill_web``: one of two web processes SIGKILLed with sockets connected (they reconnect to
  the other and catch up with ``after=``).

``tests/notifications/test_fanout_workers.py::test_sigkill_a_worker_mid_fanout`` is the worker
crash at ten times the size, with RQ's maintenance done by hand.
"""
