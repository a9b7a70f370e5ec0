"""Contact-book rules: plain functions taking the acting user and explicit arguments.

``attendance`` (a class's day, a student's days, the audit), ``checkins`` (gate devices and their
events), ``leave`` (leave requests), ``daypage`` (the day's page), ``settings`` (per-school
start time and school days), ``texts`` (notices in Vietnamese and English). The grades half of
the package adds its own modules here (``grades``, ``remarks``, ...).
"""
