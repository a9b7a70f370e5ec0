"""Schedules' rules: timetables, changes, the week view, events and sign-ups, the calendar feed.

Functions take the acting user first (except ``timetable_for_day``, for callers that have
authorised the student already) and authorise through ``schedules.policy``.
"""
from .changes import change_view, list_changes, post_change
from .events import cancel_signup, create_event, sign_up, student_calendar
from .feed import build_feed, issue_feed, revoke_feed
from .timetables import get_timetable, set_timetable
from .week import student_week, timetable_for_day

__all__ = ["set_timetable", "get_timetable", "post_change", "list_changes", "change_view", "student_week",
           "timetable_for_day", "create_event", "student_calendar", "sign_up", "cancel_signup", "issue_feed",
           "revoke_feed", "build_feed"]
