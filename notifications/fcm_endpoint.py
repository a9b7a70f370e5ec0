"""Build a firebase-admin App, optionally pointed at a non-Google FCM endpoint.

Used by production code (the ``FCM_ENDPOINT`` / ``FIREBASE_CREDENTIALS`` settings)
and by tests/benchmarks together with :mod:`tests.support.fcm_server`.

firebase-admin has no public option for the FCM base URL.  Its messaging service is a
per-App object (``messaging._get_messaging_service(app)``, cached on the App) whose
``_fcm_url`` / ``_fcm_topic_url`` instance attributes are built from hard-coded Google
URLs in ``__init__``.  :func:`redirect_messaging` creates that service eagerly and
rewrites those attributes.  It checks the SDK's layout first and, afterwards, that no
Google URL is left on the service, so an SDK upgrade that changes the internals fails
loudly instead of silently sending to fcm.googleapis.com.
"""
from __future__ import annotations

import firebase_admin
import requests
from firebase_admin import _http_client, credentials, messaging
from google.auth.credentials import AnonymousCredentials

__all__ = ["firebase_app", "redirect_messaging", "fcm_send_url"]

_GOOGLE_FCM = "https://fcm.googleapis.com"


def fcm_send_url(endpoint: str, project_id: str) -> str:
    """``{endpoint}/v1/projects/{project_id}/messages:send`` (FCM HTTP v1 send)."""
    return f"{endpoint.rstrip('/')}/v1/projects/{project_id}/messages:send"


def redirect_messaging(app: firebase_admin.App, endpoint: str) -> None:
    """Make ``app``'s messaging service send to ``endpoint`` (e.g. ``http://127.0.0.1:9099``)."""
    endpoint = endpoint.rstrip("/")
    if not endpoint.startswith(("http://", "https://")):
        raise ValueError(f"FCM endpoint must be an http(s) base URL, got {endpoint!r}")
    svc = messaging._get_messaging_service(app)  # pylint: disable=protected-access
    project_id = svc._project_id  # pylint: disable=protected-access

    expected = {
        "_fcm_url": messaging._MessagingService.FCM_URL.format(project_id),  # pylint: disable=protected-access
        "_fcm_topic_url": f"{_GOOGLE_FCM}/v1/projects/{project_id}/registrations",
    }
    for attr, value in expected.items():
        current = getattr(svc, attr, None)
        if current != value:
            raise RuntimeError(
                f"firebase-admin {firebase_admin.__version__}: messaging service attribute "
                f"{attr}={current!r}, expected {value!r}; cannot redirect FCM safely")

    svc._fcm_url = fcm_send_url(endpoint, project_id)  # pylint: disable=protected-access
    svc._fcm_topic_url = f"{endpoint}/v1/projects/{project_id}/registrations"  # pylint: disable=protected-access

    # Same connection pool / retry policy the SDK mounts for fcm.googleapis.com
    # (pool of 100, retry 500/503 up to 4 times) -- otherwise requests uses its
    # default 10-connection pool for the new host.
    session = svc._client.session  # pylint: disable=protected-access
    session.mount(endpoint, requests.adapters.HTTPAdapter(
        pool_connections=100, pool_maxsize=100,
        max_retries=_http_client.DEFAULT_RETRY_CONFIG))

    leftovers = {k: v for k, v in vars(svc).items()
                 if isinstance(v, str) and "googleapis.com" in v}
    if leftovers:
        raise RuntimeError(f"messaging service still points at Google after redirect: {leftovers}")


def firebase_app(project_id: str, endpoint: str | None = None,
                 credentials_file: str | None = None,
                 name: str | None = None) -> firebase_admin.App:
    """Initialise a firebase-admin App.

    * ``credentials_file``: service-account JSON (``credentials.Certificate``); without it
      anonymous google-auth credentials are used (no token fetch, no Authorization header).
    * ``endpoint``: base URL of an FCM-compatible server; messaging is redirected there.
    * ``name``: App name; ``None`` means firebase-admin's default App.
    """
    cred = (credentials.Certificate(credentials_file) if credentials_file
            else AnonymousCredentials())
    kwargs = {"name": name} if name is not None else {}
    app = firebase_admin.initialize_app(cred, {"projectId": project_id}, **kwargs)
    if endpoint:
        try:
            redirect_messaging(app, endpoint)
        except Exception:
            firebase_admin.delete_app(app)
            raise
    return app
