"""Signals service raises for packages it must not import (it imports libraries only)."""
from blinker import Namespace

_signals = Namespace()

#: sent with ``user_id`` and ``device_token`` (or None) when a session logs out;
#: notifications drops that device's push token.
logged_out = _signals.signal("lienlac.logged-out")
