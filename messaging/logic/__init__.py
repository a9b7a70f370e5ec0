"""Messaging rules, by concern: plain functions with explicit arguments (the caller's user id
first), usable from a view, a socket handler, a job or a test. They authorize through
``messaging.policy`` and return plain dicts/rows; the schemas turn them into the JSON clients see.

- ``clock``: the injectable now
- ``conversations``: membership, class channels, direct conversations, the conversation list
- ``history``: message and attachment views, the paged history
- ``sending``: storing a message in seq order, the push after it
- ``edits``: editing and deleting one's own message
- ``reports``: reporting a message to the school admin
- ``receipts``: read marks, "seen by N of M"
- ``attachments``: uploads, quota, download access, the purge of unsent files
- ``office_hours``: a teacher's weekly hours and their effect on a family's message
- ``publish``: delivering events to the members' sockets, in seq order across processes
"""
