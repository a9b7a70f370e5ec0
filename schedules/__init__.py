"""Lienlac schedules package: timetables, their changes, school events and sign-ups, the iCalendar feed.

Other packages use its public entry only: ``schedules.timetable_for_day(student_id, date)``
(:func:`schedules.logic.week.timetable_for_day`: the student's periods that day, changes applied;
the caller has authorised the student), never its modules or tables.
"""


def timetable_for_day(student_id: int, date):
    """The student's periods on ``date`` (school time), changes applied: see ``schedules.logic.timetable_for_day``."""
    from .logic.week import timetable_for_day as _for_day

    return _for_day(student_id, date)


from .schemas import TimetableDayPeriodOut  # noqa: E402 - the schema of timetable_for_day's items

__all__ = ["TimetableDayPeriodOut", "timetable_for_day"]
