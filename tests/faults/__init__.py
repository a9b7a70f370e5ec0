"""Fault tests (issue 14), real processes on PostgreSQL, each well under a minute:

- ``test_redis_restart``: Redis SIGKILLed and started again, empty, mid fan-out (the recovery sweep
  redoes what its lost jobs would have done);
- ``test_pg_terminate``: ``pg_terminate_backend`` of a web process's connections mid-traffic;
- ``test_kill_web``: one of two web processes SIGKILLed with sockets connected (they reconnect to
  the other and catch up with ``after=``).

A worker SIGKILLed mid fan-out is ``tests/notifications/test_fanout_workers.py::
test_sigkill_a_worker_mid_fanout`` (it shares that module's rig and ``rqtools``): the killed
worker's claims are taken up again after ``PUSH_CLAIM_TIMEOUT_SECONDS``, and its job is handed back
as RQ's maintenance would once its heartbeat expires (a minute, too long to wait for here).
"""
