"""Accounts: users, sign-in (password and OTP), access and refresh tokens, sessions.

Rooms: ``models`` (tables), ``logic`` (the rules: login, OTP, tokens, ``login_required``),
``api`` (the ``/auth`` and ``/me`` views). Depends on the service core only.
"""
