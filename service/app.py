"""The application factory."""
from __future__ import annotations

import importlib
import importlib.util
import logging

import orjson
from flask import Flask, request
from flask.ctx import RequestContext
from flask.sessions import SessionInterface
from flask.json.provider import DefaultJSONProvider

from . import inputs, jobs, realtime
from .accounts import logic as accounts
from .accounts import sessioncache
from .accounts.logic import LogSmsSender
from .config import Config
from .db import db, init_database, release as release_db
from .errors import register_error_handlers
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_smorest import Api
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter
from .logs import configure_logging, init_request_logging
from .schemas import ErrorEnvelope

log = logging.getLogger("lienlac.app")

#: domain packages; each may have ``api.py`` (``blp``, a flask-smorest Blueprint, or ``blueprints``)
#: and ``events.py`` (Socket.IO handlers), imported here in this order.
DOMAIN_PACKAGES = ("notifications", "messaging", "contactbook", "nutrition", "schedules")
API_PREFIX = "/api/v1"


class _Api(Api):
    """flask-smorest documenting the errors as they are sent: the API.md envelope (``register_error_handlers``)."""

    ERROR_SCHEMA = ErrorEnvelope


class JSONProvider(DefaultJSONProvider):
    """JSON answers through orjson: the same bytes Flask's ``json.dumps`` gives (compact, UTF-8 as it
    is, keys in their order, dates and dataclasses through Flask's ``default``), several times
    faster on the large answers of the hot paths (the conversation list is ~30 KB). Whatever orjson
    refuses (an integer past 64 bits, say) goes through Flask's own encoder."""

    ensure_ascii = False
    sort_keys = False
    _OPTIONS = (orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
                | orjson.OPT_PASSTHROUGH_DATACLASS)

    def response(self, *args, **kwargs):
        if (self.compact is None and self._app.debug) or self.compact is False:
            return super().response(*args, **kwargs)
        obj = self._prepare_response_obj(args, kwargs)
        try:
            body = orjson.dumps(obj, default=self.default, option=self._OPTIONS)
        except TypeError:  # orjson.JSONEncodeError included
            return super().response(*args, **kwargs)
        return self._app.response_class(body, mimetype=self.mimetype)


class _NoSessions(SessionInterface):
    """No cookie sessions: requests carry bearer tokens, and nothing reads or writes Flask's
    ``session``. The default interface would build a signing serializer and read the cookie for
    every request and every socket event; ``session`` is a ``NullSession``, whose writes raise."""

    def open_session(self, app, request):
        return None

    def save_session(self, app, session, response):
        return None


class _RequestContext(RequestContext):
    """A socket event's context (Flask-SocketIO pushes one per event, from the connection's
    environ) skips URL matching: its path is Socket.IO's, which no route serves, and matching it
    against every route to record a 404 nobody raises was ~8 % of a web process's CPU in a burst
    of messages. HTTP requests match as always."""

    def match_request(self) -> None:
        if self.request.environ.get("PATH_INFO", "").startswith(realtime.SOCKETIO_PATH):
            return
        super().match_request()


class _Flask(Flask):
    json_provider_class = JSONProvider
    session_interface = _NoSessions()

    def request_context(self, environ) -> RequestContext:
        return _RequestContext(self, environ)


class IdConverter(IntegerConverter):
    """``<int:...>`` in routes: ids are BIGINTs, so a larger number answers 404 (not a database overflow)."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


def _optional_module(name: str):
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)


def _blueprints(module):
    if module is None:
        return []
    return list(getattr(module, "blueprints", None) or [module.blp])


def create_app(config: Config | None = None, *, web: bool = True) -> Flask:
    """``web=False`` (worker, CLI): no Socket.IO server, events go out through a write-only emitter."""
    config = config or Config.from_env()
    configure_logging(config.log_level)
    app = _Flask("lienlac")
    app.url_map.converters["int"] = IdConverter  # before any route is added
    app.config.update(
        LIENLAC=config,
        SECRET_KEY=config.secret_key,
        TESTING=config.testing,
        MAX_CONTENT_LENGTH=config.max_upload_bytes + 64 * 1024,
        API_TITLE="Lienlac mobile API",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_URL_PREFIX=API_PREFIX,
        API_SPEC_OPTIONS={
            "info": {"description": "The contract the Lienlac mobile app is written against. "
                                    "See mobile_api_docs/GUIDE.md."},
            "security": [{"bearerAuth": []}],
        },
    )
    app.extensions["lienlac.sms"] = LogSmsSender()

    init_database(config.database_url, config.db_pool_size)
    jobs.configure(app, config.redis_url, inline=config.jobs_inline, monitor_interval=config.rq_monitor_interval)

    @app.before_request
    def _open_db():
        if request.blueprint == "health":  # probes handle the database themselves (503, not 500)
            return
        db.connect(reuse_if_open=True)

    @app.teardown_request
    def _close_db(_exc):
        release_db()  # back to the pool, or out of it if PostgreSQL ended it

    init_request_logging(app)
    inputs.init_app(app)  # after the request log starts, so rejected requests are logged too
    api = _Api(app)
    app.extensions["lienlac.api"] = api
    register_error_handlers(app)  # after flask-smorest's, so the API.md envelope wins
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})

    from . import health
    from .accounts import api as api_accounts
    from .roster import api as api_roster
    from .roster.oneroster import api as api_import

    app.register_blueprint(health.bp)
    for blp in (*api_accounts.blueprints, *api_roster.blueprints, *api_import.blueprints):
        api.register_blueprint(blp, url_prefix=API_PREFIX + (blp.url_prefix or ""))
    for package in DOMAIN_PACKAGES:
        for blp in _blueprints(_optional_module(f"{package}.api")):
            api.register_blueprint(blp, url_prefix=API_PREFIX + (blp.url_prefix or ""))
        _optional_module(f"{package}.events")
        setup = getattr(_optional_module(f"{package}.setup"), "init_app", None)
        if setup:
            setup(app, config)

    # login and OTP limits per phone number and per client address (Redis storage when configured)
    limiter = Limiter(key_func=get_remote_address, app=app, storage_uri=config.redis_url or "memory://",
                      key_prefix="lienlac", headers_enabled=True, strategy="moving-window",
                      in_memory_fallback_enabled=True)  # Redis down: limits go on per process
    if config.trusted_proxies:  # behind a load balancer: the client address is in X-Forwarded-For
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.trusted_proxies, x_proto=config.trusted_proxies)
    api_accounts.apply_rate_limits(app, limiter, config)
    realtime.set_session_checks(app, accounts.socket_identity, accounts.session_is_live)
    sessioncache.init_app(app, config, web=web)
    if web:
        realtime.init_app(app, config)
    else:
        realtime.configure_emitter(config)
    return app
