"""Lienlac notifications package: devices, inbox, preferences, push, announcements.

Other packages use its public entry only: ``notifications.notify(...)``
(:func:`notifications.logic.notify`), never its modules or tables.
"""
from .logic import notify

__all__ = ["notify"]
