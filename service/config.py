"""Configuration from the environment (12-factor).

Every process (web, worker, CLI) builds its Config with ``Config.from_env()``; tests build
one directly and override what they need.
"""
from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _instance_dir() -> Path:
    return Path(os.environ.get("LIENLAC_INSTANCE", Path.cwd() / "instance"))


def _secret_key(instance: Path) -> str:
    """The embedded default generates a secret on first run and keeps it in the instance folder."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


@dataclasses.dataclass
class Config:
    database_url: str = "sqlite:///instance/lienlac.sqlite3"
    redis_url: str | None = None
    secret_key: str = ""
    access_token_seconds: int = 900
    refresh_token_seconds: int = 60 * 60 * 24 * 30
    firebase_credentials: str | None = None
    firebase_project_id: str | None = None
    fcm_endpoint: str | None = None
    fcm_rate_per_second: float = 10000.0  # FCM's default project quota: 600,000 messages a minute
    push_claim_timeout_seconds: float = 60.0  # a push claim older than this (its worker died) is taken up again
    recovery_sweep_seconds: float = 30.0  # how often the workers look for due work whose job was lost
    fcm_retry_base_seconds: float = 0.5  # first push retry delay; doubles per try, with jitter
    timezone: str = "Asia/Ho_Chi_Minh"
    upload_dir: str = "instance/uploads"
    max_upload_bytes: int = 10 * 1024 * 1024
    login_rate_limit: str = "10 per minute"
    otp_rate_limit: str = "5 per 10 minutes"
    message_rate_limit: str = "60 per minute"  # per sender, HTTP and Socket.IO together
    upload_quota_bytes_per_day: int = 200 * 1024 * 1024  # per user, over the last 24 hours
    unsent_attachment_seconds: int = 24 * 3600  # an upload never sent is deleted after this
    refresh_rate_limit: str = "30 per minute"  # per client address
    claim_rate_limit: str = "10 per hour"  # invite claims, per user
    announcement_rate_limit: str = "30 per hour"  # announcements created, per user
    # cumulative sign-in lockout per phone: this many failed OTP checks / passwords within the
    # window lock the number (login, OTP request and verify answer 429) for auth_lockout_seconds
    auth_lockout_failures: int = 20
    auth_failure_window_seconds: int = 24 * 3600
    auth_lockout_seconds: int = 24 * 3600
    socket_sweep_seconds: float = 1.0  # how often a web process drops sockets whose token expired
    socket_revalidate_seconds: float = 30.0  # how often it re-checks every local socket's session
    socketio_async_mode: str = "threading"  # in-process apps (tests); `lienlac serve` and service.wsgi run gevent
    # authenticated sessions cached per web process (revocations invalidate them at once, through Redis)
    session_cache_size: int = 10000  # token families; 0 switches the cache off
    session_cache_seconds: float = 60.0  # backstop: an entry is re-read from the database after this
    presence_refresh_seconds: float = 60.0  # each web process re-stamps its sockets; 3 periods = gone
    db_pool_size: int = 32  # PostgreSQL connections per process
    socketio_channel: str = "lienlac-socketio"  # Redis pub/sub channel shared by web processes and workers
    rq_maintenance_interval: int = 60  # seconds: how soon a dead worker's jobs are requeued
    rq_monitor_interval: int = 10
    trusted_proxies: int = 0  # load balancers in front that set X-Forwarded-For
    jobs_inline: bool = False  # embedded default: run jobs synchronously instead of a thread pool
    testing: bool = False
    log_level: str = "INFO"
    extra: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Config":
        env = os.environ if env is None else env
        instance = _instance_dir()
        database_url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'lienlac.sqlite3'}"
        secret = env.get("SECRET_KEY") or _secret_key(instance)
        return cls(
            database_url=database_url,
            redis_url=env.get("REDIS_URL") or None,
            secret_key=secret,
            access_token_seconds=int(env.get("JWT_ACCESS_SECONDS", 900)),
            refresh_token_seconds=int(env.get("JWT_REFRESH_SECONDS", 60 * 60 * 24 * 30)),
            firebase_credentials=env.get("FIREBASE_CREDENTIALS") or None,
            firebase_project_id=env.get("FIREBASE_PROJECT_ID") or None,
            fcm_endpoint=env.get("FCM_ENDPOINT") or None,
            fcm_rate_per_second=float(env.get("FCM_RATE_PER_SECOND", 10000)),
            push_claim_timeout_seconds=float(env.get("PUSH_CLAIM_TIMEOUT_SECONDS", 60)),
            fcm_retry_base_seconds=float(env.get("FCM_RETRY_BASE_SECONDS", 0.5)),
            recovery_sweep_seconds=float(env.get("RECOVERY_SWEEP_SECONDS", 30)),
            timezone=env.get("TIMEZONE", "Asia/Ho_Chi_Minh"),
            upload_dir=env.get("UPLOAD_DIR") or str(instance / "uploads"),
            max_upload_bytes=int(env.get("MAX_UPLOAD_BYTES", 10 * 1024 * 1024)),
            login_rate_limit=env.get("LOGIN_RATE_LIMIT", "10 per minute"),
            otp_rate_limit=env.get("OTP_RATE_LIMIT", "5 per 10 minutes"),
            message_rate_limit=env.get("MESSAGE_RATE_LIMIT", "60 per minute"),
            upload_quota_bytes_per_day=int(env.get("UPLOAD_QUOTA_BYTES_PER_DAY", 200 * 1024 * 1024)),
            unsent_attachment_seconds=int(env.get("UNSENT_ATTACHMENT_SECONDS", 24 * 3600)),
            refresh_rate_limit=env.get("REFRESH_RATE_LIMIT", "30 per minute"),
            claim_rate_limit=env.get("CLAIM_RATE_LIMIT", "10 per hour"),
            announcement_rate_limit=env.get("ANNOUNCEMENT_RATE_LIMIT", "30 per hour"),
            auth_lockout_failures=int(env.get("AUTH_LOCKOUT_FAILURES", 20)),
            auth_failure_window_seconds=int(env.get("AUTH_FAILURE_WINDOW_SECONDS", 24 * 3600)),
            auth_lockout_seconds=int(env.get("AUTH_LOCKOUT_SECONDS", 24 * 3600)),
            socket_sweep_seconds=float(env.get("SOCKET_SWEEP_SECONDS", 1.0)),
            presence_refresh_seconds=float(env.get("PRESENCE_REFRESH_SECONDS", 60)),
            db_pool_size=int(env.get("DB_POOL_SIZE", 32)),
            socket_revalidate_seconds=float(env.get("SOCKET_REVALIDATE_SECONDS", 30.0)),
            socketio_async_mode=env.get("SOCKETIO_ASYNC_MODE", "threading"),
            session_cache_size=int(env.get("SESSION_CACHE_SIZE", 10000)),
            session_cache_seconds=float(env.get("SESSION_CACHE_SECONDS", 60.0)),
            socketio_channel=env.get("SOCKETIO_CHANNEL", "lienlac-socketio"),
            jobs_inline=_bool(env.get("JOBS_INLINE")),
            trusted_proxies=int(env.get("TRUSTED_PROXIES", 0)),
            rq_maintenance_interval=int(env.get("RQ_MAINTENANCE_INTERVAL", 60)),
            rq_monitor_interval=int(env.get("RQ_MONITOR_INTERVAL", 10)),
            log_level=env.get("LOG_LEVEL", "INFO"),
            extra={"ip_rate_limit": env["IP_RATE_LIMIT"]} if env.get("IP_RATE_LIMIT") else {},
        )
