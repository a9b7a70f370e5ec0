"""Who may do what with announcements, built on ``service.permissions``.

``notifications.announcements`` asks these; each raises ``NotFound`` (404: the caller may not
know it exists) or ``Forbidden`` (403: the caller's role never may). The inbox, devices and
preferences need no policy: every query there is scoped to the caller's own rows.

- Announce: a school admin, to anything in their school (the whole school, grades, classes,
  named guardians of the school); a homeroom teacher, to their own homeroom classes only
  (``class_ids``), never ``urgent``. Anyone holding neither role anywhere: 403. A school, class
  or guardian the caller cannot reach: 404.
- Manage (read the delivery counts, cancel): its author and the admins of its school.
- Read it (without counts) and acknowledge it: a recipient (someone it was delivered to).
"""
from __future__ import annotations

from service import permissions
from service.errors import Forbidden, NotFound, ValidationError
from service.roster import logic as roster
from service.roster import queries as roster_queries

from .models import Announcement, Notification

ANNOUNCER_ROLES = ("admin", "teacher")


def _announcer_schools(user_id: int) -> set[int]:
    return {school for role, school in roster.staff_roles(user_id) if role in ANNOUNCER_ROLES}


def require_announcer(user_id: int) -> None:
    """403 unless the caller is a school admin or teacher somewhere."""
    if not _announcer_schools(user_id):
        raise Forbidden("Only a school admin or a homeroom teacher makes announcements.")


def announcing_school(user_id: int, school_id: int | None, class_ids: list[int]) -> int:
    """The school an announcement goes out in: the one named, the classes' school, or the caller's only one."""
    if school_id:
        return int(school_id)
    schools = {roster.get_class(class_id).school_id for class_id in class_ids}
    if len(schools) > 1:
        raise ValidationError("The classes are in different schools.", fields={"audience": ["One school at a time."]})
    if schools:
        return schools.pop()
    mine = _announcer_schools(user_id)
    if not mine:
        raise Forbidden("Only school staff make announcements.")
    if len(mine) > 1:
        raise ValidationError("Say which school.", fields={"audience": {"school_id": ["Required: you work at several schools."]}})
    return mine.pop()


def may_announce(user_id: int, school_id: int, grades: list[int], class_ids: list[int],
                 guardian_ids: list[int], urgent: bool) -> None:
    """May the caller announce to this audience of this school (see the module docstring)?"""
    require_announcer(user_id)
    roster.get_school(school_id)
    if not permissions.is_staff(user_id, school_id, ("admin",)):
        if not permissions.is_staff(user_id, school_id, ("teacher",)):
            raise NotFound("No such school.")
        if not class_ids or grades or guardian_ids:
            raise Forbidden("A teacher announces to their own homeroom classes only (class_ids).")
        if urgent:
            raise Forbidden("Urgent announcements are for the school admin.")
        for class_id in class_ids:
            klass = roster.get_class(class_id)
            if klass.school_id != school_id or not permissions.can_see_class(user_id, klass):
                raise NotFound("No such class.")
            if not permissions.is_homeroom_teacher(user_id, class_id):
                raise Forbidden("Only the class's homeroom teacher announces to it.")
    if class_ids and roster_queries.classes_in_school(school_id, class_ids) != set(class_ids):
        raise NotFound("No such class.")
    if guardian_ids and set(roster_queries.audience_guardian_ids(school_id, guardian_ids=guardian_ids)) != set(guardian_ids):
        raise NotFound("No such guardian in this school.")


def can_manage(user_id: int, ann: Announcement) -> bool:
    """Its author or an admin of its school: they see the counts and may cancel it."""
    return ann.author_id == user_id or permissions.is_staff(user_id, ann.school_id, ("admin",))


def is_recipient(user_id: int, announcement_id: int) -> bool:
    return Notification.select().where((Notification.announcement == announcement_id)
                                       & (Notification.user == user_id)).exists()


def manageable(user_id: int, announcement_id: int) -> Announcement:
    """An announcement the caller may manage (cancel), else 404."""
    ann = Announcement.get_or_none(Announcement.id == announcement_id)
    if ann is None or not can_manage(user_id, ann):
        raise NotFound("No such announcement.")
    return ann


def readable(user_id: int, announcement_id: int) -> tuple[Announcement, bool]:
    """An announcement the caller may read, and whether they manage it (else they are a recipient); 404 otherwise."""
    ann = Announcement.get_or_none(Announcement.id == announcement_id)
    if ann is None:
        raise NotFound("No such announcement.")
    if can_manage(user_id, ann):
        return ann, True
    if not is_recipient(user_id, ann.id):
        raise NotFound("No such announcement.")
    return ann, False


def received(user_id: int, announcement_id: int) -> Announcement:
    """An announcement sent to the caller (to acknowledge), else 404."""
    ann = Announcement.get_or_none(Announcement.id == announcement_id)
    if ann is None or not is_recipient(user_id, ann.id):
        raise NotFound("No such announcement.")
    return ann
