"""The production web entry point: ``gunicorn -k gevent -w 1 'service.wsgi:app'``.

One gunicorn process per instance (``-w 1``: a Socket.IO client's polling requests must reach
the process that holds its session); run several instances behind a load balancer with sticky
sessions, sharing rooms through Redis (``REDIS_URL``). The standard library is patched for gevent
and psycopg2 made cooperative (psycogreen) before anything else loads; Socket.IO runs in
``gevent`` mode. Apply migrations before starting (``lienlac migrate``), not from here.
"""
from gevent import monkey

monkey.patch_all()  # gunicorn's gevent worker has done it already; the call is then a no-op

from psycogreen.gevent import patch_psycopg  # noqa: E402

patch_psycopg()

from .app import create_app  # noqa: E402
from .config import Config  # noqa: E402

config = Config.from_env()
config.socketio_async_mode = "gevent"  # the only mode that fits this entry point
app = create_app(config, web=True)
