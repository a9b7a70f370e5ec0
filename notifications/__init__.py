"""Lienlac notifications package: devices, inbox, preferences, push, announcements.

Other packages use its public entry only, never its modules or tables:

- ``notify(user_ids, category, title, body, data)``: one notice to many users;
- ``notify_each(notices)``: many notices (each its own recipients and texts) in one job;
- ``announcements_received(...)``: the announcements that reached a family on a day (the day's page).
"""
from .logic import announcements_received, notify, notify_each

__all__ = ["announcements_received", "notify", "notify_each"]
