"""The ``lienlac`` command. Every subcommand reads the same environment (DATABASE_URL, REDIS_URL, ...)."""
from __future__ import annotations

import os
import sys

_patched = False


def _maybe_patch_gevent(argv=None) -> None:
    """``serve`` runs on gevent: patch the standard library (threads become greenlets, sockets and
    locks cooperative) and make psycopg2 cooperative (psycogreen) before anything imports them.

    Only for ``serve``: the worker and the other commands run plain threads and processes.
    """
    global _patched
    argv = sys.argv if argv is None else argv
    if _patched or not (len(argv) > 1 and argv[1] == "serve"):
        return
    from gevent import monkey

    monkey.patch_all()
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()
    _patched = True


_maybe_patch_gevent()  # at import time, before click, redis, psycopg2 or threading-based code loads

import json  # noqa: E402
import threading  # noqa: E402
import uuid  # noqa: E402

import click  # noqa: E402


def _app(web: bool = False):
    from .app import create_app
    from .config import Config

    return create_app(Config.from_env(), web=web)


@click.group()
def cli():
    """Lienlac: the digital contact book backend."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-migrate", is_flag=True, help="do not apply pending migrations first")
def serve(host, port, no_migrate):
    """Serve HTTP and Socket.IO (WebSocket and polling) on one port: the production server (gevent)."""
    from gevent import monkey

    if not monkey.is_module_patched("socket"):  # e.g. cli() called from Python instead of `lienlac serve`
        raise click.ClickException("serve must start as `lienlac serve` (gevent patches the standard library "
                                   "before anything else loads)")
    from . import db as dbmod
    from .app import create_app
    from .config import Config
    from .serving import serve_forever

    config = Config.from_env()
    asked = config.socketio_async_mode
    config.socketio_async_mode = "gevent"  # whatever SOCKETIO_ASYNC_MODE says: it is for in-process apps
    app = create_app(config, web=True)
    if not no_migrate:
        dbmod.migrate()
    ignored = asked != "gevent" and "SOCKETIO_ASYNC_MODE" in os.environ
    note = f" (SOCKETIO_ASYNC_MODE={asked} ignored)" if ignored else ""
    click.echo(f"Lienlac serving on http://{host}:{port} (database {config.database_url.split('://')[0]}, "
               f"jobs {'RQ on Redis' if config.redis_url else 'in-process'}, gevent{note})", err=True)
    serve_forever(app, host, port)


@cli.command()
@click.option("--burst", is_flag=True, help="drain the queues (and the jobs due by now) and exit")
@click.option("--fork", is_flag=True, help="fork a work horse per job (RQ's Worker) instead of running "
              "jobs in the worker process")
@click.option("--simple", is_flag=True, hidden=True, help="the default now (no fork per job); kept for old scripts")
@click.option("--queue", "queue_names", multiple=True, help="queues to serve, in priority order "
              "(default: high, default, low)")
@click.option("--name", default=None)
def worker(burst, fork, simple, queue_names, name):
    """Run an RQ worker (with RQ's scheduler: retries and scheduled jobs) on the job queues.

    Jobs run in the worker's own process, one after the other, with RQ's job timeouts and warm
    shutdown (SIGTERM finishes the current job); ``--fork`` runs each in a forked work horse.
    Run several workers for parallelism. A Redis outage does not end it (``service/rqworker.py``).
    Workers serving ``high`` also enqueue the periodic jobs (``jobs.periodic``: the recovery sweep).
    """
    from . import jobs, rqworker
    from .worker import worker_class

    if fork and simple:
        raise click.UsageError("--fork and --simple contradict each other")
    app = _app()
    if jobs.redis_connection() is None:
        raise click.ClickException("REDIS_URL is not set: the embedded default runs jobs in-process.")
    unknown = set(queue_names) - set(jobs.QUEUES)
    if unknown:
        raise click.ClickException(f"unknown queue(s): {', '.join(sorted(unknown))}")
    queues = [q for q in jobs.queues() if not queue_names or q.name in queue_names]
    if queue_names:
        queues.sort(key=lambda q: queue_names.index(q.name))
    config = app.config["LIENLAC"]
    name = name or uuid.uuid4().hex  # the same name when a Redis outage makes it start again
    cls = worker_class(fork)

    def make_worker():
        return cls(queues, connection=jobs.redis_connection(), name=name,
                   maintenance_interval=config.rq_maintenance_interval,
                   job_monitoring_interval=config.rq_monitor_interval)

    # the periodic jobs (the recovery sweep): ticked by every long-running worker that serves them
    stop_periodic = threading.Event()
    if not burst and any(q.name == "high" for q in queues):
        jobs.start_periodic(app, stop_periodic)
    try:
        with app.app_context():  # a Redis outage does not end it: it waits, recovers and goes on
            rqworker.run(make_worker, jobs.redis_connection(), burst=burst, logging_level=config.log_level)
    finally:
        stop_periodic.set()


@cli.command()
def migrate():
    """Bring the schema up to date (safe to run again; prints what it applied)."""
    from . import db as dbmod
    from .config import Config
    from .logs import configure_logging

    config = Config.from_env()  # no app: migrations need the database only (and start quicker)
    configure_logging(config.log_level)
    dbmod.init_database(config.database_url, config.db_pool_size)
    applied = dbmod.migrate()
    for name in applied:
        click.echo(name)
    if not applied:
        click.echo("schema is up to date", err=True)


@cli.command()
@click.argument("room")
@click.argument("event")
@click.argument("data", default="{}")
def emit(room, event, data):
    """Send a Socket.IO EVENT with JSON DATA to ROOM (e.g. user:<id>) on every web process."""
    from . import realtime

    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="DATA") from None
    from .config import Config

    config = Config.from_env()  # no app: a write-only emitter on the Redis queue is all it takes
    if not config.redis_url:
        raise click.ClickException("REDIS_URL is not set: there is no other process to reach.")
    realtime.configure_emitter(config)
    realtime.emit_to(room, event, payload)


@cli.command("seed-demo")
@click.option("--classes", default=3, show_default=True)
@click.option("--students-per-class", default=10, show_default=True)
def seed_demo(classes, students_per_class):
    """Fill the database with a demo school and print its accounts as JSON."""
    from . import db as dbmod
    from .demo import seed_demo as seed

    app = _app()
    dbmod.migrate()
    with app.app_context(), dbmod.connection():
        result = seed(classes, students_per_class)
    click.echo(json.dumps(result, ensure_ascii=False))


@cli.command("import-roster")
@click.argument("path", type=click.Path(exists=True))
@click.option("--school", "school", required=True, help="the school's OneRoster sourcedId, or its id here")
@click.option("--dry-run", is_flag=True, help="show the plan (created, updated, unchanged, removed, warnings); "
                                              "write nothing")
def import_roster(path, school, dry_run):
    """Import a OneRoster 1.1 CSV set (folder or zip); re-importing changes nothing."""
    from . import db as dbmod
    from .roster.oneroster import import_path_cli

    app = _app()
    dbmod.migrate()
    with app.app_context(), dbmod.connection():
        import_path_cli(path, school, dry_run=dry_run)


@cli.command("roster-invites")
@click.option("--school", "school_id", required=True, type=int, help="the school's id here")
@click.option("--class", "class_ref", default=None, help="one class: its id here or its OneRoster sourcedId")
def roster_invites(school_id, class_ref):
    """Print new invite codes for guardians without a phone (e.g. imported from email-only roster rows),
    one per child and guardian, by class: the list a homeroom teacher hands out."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from . import db as dbmod
    from .roster import logic as roster
    from .roster.models import SchoolClass

    app = _app()
    dbmod.migrate()
    with app.app_context(), dbmod.connection():
        classes = SchoolClass.select().where(SchoolClass.school == school_id).order_by(SchoolClass.name)
        if class_ref is not None:
            by = SchoolClass.id == int(class_ref) if class_ref.isdigit() else SchoolClass.sourced_id == class_ref
            classes = classes.where(by)
        table = Table("class", "student", "guardian", "relationship", "code", "valid until", box=box.SIMPLE_HEAD,
                      title="Invite codes: sign in with your phone, then enter the code (Add a child)")
        count = 0
        for klass in classes:
            for item in roster.phoneless_guardian_invites(klass.id, None):
                count += 1
                table.add_row(klass.name, item["student_name"], item["guardian_name"], item["relationship"],
                              item["code"], item["expires_at"].date().isoformat())
        out = Console(highlight=False)
        out.print(table) if count else out.print("No guardian without a phone.")


@cli.command()
@click.option("--out", default="mobile_api_docs", show_default=True)
def docs(out):
    """Write mobile_api_docs/openapi.json and asyncapi.json from the code."""
    from .apidocs import write_docs
    from .app import create_app
    from .config import Config

    app = create_app(Config(database_url="sqlite:///:memory:", secret_key="docs"), web=False)
    for path in write_docs(app, out):
        click.echo(path, err=True)


@cli.command("create-school")
@click.option("--name", required=True, help="the school's name")
@click.option("--admin-phone", required=True, help="the first school admin's phone number (signs in by OTP)")
@click.option("--admin-name", required=True)
@click.option("--code", default=None, help="the school's code (mã trường)")
@click.option("--timezone", default="Asia/Ho_Chi_Minh", show_default=True)
def create_school(name, admin_phone, admin_name, code, timezone):
    """Create a school and its first admin (an operator task: the API has no POST /schools)."""
    from . import db as dbmod
    from .roster import logic as roster
    from .errors import ApiError

    app = _app()
    dbmod.migrate()
    with app.app_context(), dbmod.connection():
        try:
            school, admin = roster.create_school_with_admin(name, admin_phone, admin_name, code=code,
                                                            timezone=timezone)
        except ApiError as exc:
            raise click.ClickException(f"{exc.message} {exc.fields or ''}".strip()) from exc
    click.echo(json.dumps({"school_id": str(school.id), "admin": {"user_id": str(admin.id), "phone": admin.phone}}))


def main():
    _maybe_patch_gevent()
    cli(prog_name="lienlac")


if __name__ == "__main__":
    main()
