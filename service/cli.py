"""The ``lienlac`` command. Every subcommand reads the same environment (DATABASE_URL, REDIS_URL, ...)."""
from __future__ import annotations

import json
import os
import sys

import click


def _maybe_patch_gevent() -> None:
    """``serve`` in gevent mode must patch the standard library before anything imports it."""
    if len(sys.argv) > 1 and sys.argv[1] == "serve" and os.environ.get("SOCKETIO_ASYNC_MODE") == "gevent":
        from gevent import monkey

        monkey.patch_all()
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()


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
    """Serve HTTP and Socket.IO on one port."""
    from . import db as dbmod
    from .realtime import socketio

    app = _app(web=True)
    if not no_migrate:
        dbmod.migrate()
    config = app.config["LIENLAC"]
    click.echo(f"Lienlac serving on http://{host}:{port} (database {config.database_url.split('://')[0]}, "
               f"jobs {'RQ on Redis' if config.redis_url else 'in-process'}, socket.io {config.socketio_async_mode})",
               err=True)
    kwargs = {"allow_unsafe_werkzeug": True} if config.socketio_async_mode == "threading" else {}
    socketio.run(app, host=host, port=port, use_reloader=False, log_output=False, **kwargs)


@cli.command()
@click.option("--burst", is_flag=True, help="drain the queues and exit")
@click.option("--simple", is_flag=True, help="run jobs in the worker process (no fork per job)")
@click.option("--name", default=None)
def worker(burst, simple, name):
    """Run an RQ worker (with RQ's scheduler) on the high, default and low queues."""
    from rq import SimpleWorker, Worker

    from . import jobs

    app = _app()
    if jobs.redis_connection() is None:
        raise click.ClickException("REDIS_URL is not set: the embedded default runs jobs in-process.")
    cls = SimpleWorker if simple else Worker
    maintenance = int(os.environ.get("RQ_MAINTENANCE_INTERVAL", 60))
    with app.app_context():
        w = cls(jobs.queues(), connection=jobs.redis_connection(), name=name,
                maintenance_interval=maintenance, job_monitoring_interval=int(os.environ.get("RQ_MONITOR_INTERVAL", 10)))
        w.work(burst=burst, with_scheduler=True, logging_level=os.environ.get("LOG_LEVEL", "INFO"))


@cli.command()
def migrate():
    """Bring the schema up to date (safe to run again)."""
    from . import db as dbmod

    _app()
    applied = dbmod.migrate()
    click.echo("\n".join(applied) if applied else "schema is up to date", err=True)


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
def import_roster(path, school):
    """Import a OneRoster 1.1 CSV set (folder or zip); re-importing changes nothing."""
    from . import db as dbmod
    from .oneroster import import_path_cli

    app = _app()
    dbmod.migrate()
    with app.app_context(), dbmod.connection():
        import_path_cli(path, school)


@cli.command()
@click.option("--out", default="mobile_api_docs", show_default=True)
def docs(out):
    """Write mobile_api_docs/openapi.json and asyncapi.json from the code."""
    from .apidocs import write_docs

    for path in write_docs(out):
        click.echo(path, err=True)


def main():
    _maybe_patch_gevent()
    cli(prog_name="lienlac")


if __name__ == "__main__":
    main()
