"""The roster: schools, school years and terms, classes, staff, students and guardians.

Rooms: ``models`` (tables), ``schemas``, ``logic`` (roster reads and writes; callers authorize
through ``service.permissions``), ``api`` (admin views). Depends on the core and accounts.
"""
