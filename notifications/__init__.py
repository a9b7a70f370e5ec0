"""Lienlac notifications package: devices, inbox, preferences, push, announcements.

Other packages call ``notifications.notify(...)`` (same as ``notifications.logic.notify``).
"""


def notify(*args, **kwargs):
    """See :func:`notifications.logic.notify` (imported lazily: the FCM test server imports this package)."""
    from .logic import notify as _notify

    return _notify(*args, **kwargs)
