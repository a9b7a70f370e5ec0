"""Messaging's limits: the rules' numbers, owned here and imported downwards by the schemas (which
document them), the policy and the logic (which enforce them)."""
from __future__ import annotations

import datetime as dt

#: characters in a message body
MAX_BODY = 4000
#: characters in the ``client_id`` an app gives a message (its idempotency key)
MAX_CLIENT_ID = 100
#: files sent with one message
MAX_ATTACHMENTS = 10
#: people in a direct conversation, the caller included
MAX_DIRECT_PARTICIPANTS = 10
#: how long after sending the sender may edit or delete a message
EDIT_WINDOW = dt.timedelta(minutes=15)
#: characters of a message shown in its push
PUSH_PREVIEW = 180
#: the window of a user's upload quota (``upload_quota_bytes_per_day``)
UPLOAD_QUOTA_WINDOW = dt.timedelta(days=1)
#: uploads expiring within the same hour share one purge job
PURGE_SLOT = dt.timedelta(hours=1)
