"""The roster: schools, school years and terms, classes, staff, students and guardians.

Rooms: ``models`` (tables), ``schemas``, ``policy`` (who may do what, built on
``service.permissions``), ``actions`` (the acting-user entry points: user first, authorized by the
policy), ``logic`` (trusted internals: ids in, no authorization; for other packages, jobs, the
CLI and the importer), ``api`` (views: parse, call ``actions``, serialize), ``oneroster/``
(the import, by stage). Depends on the core and accounts.
"""
