"""Socket.IO events of the notifications package (server → client only)."""
from service.apidocs import socket_event

from .schemas import NotificationEvent

socket_event("notification:new", "server", NotificationEvent,
             "A new inbox notification for the connected user (sent to room user:<id>, from any web "
             "process or worker). Same item as GET /notifications; a repeat carries the same id.")
