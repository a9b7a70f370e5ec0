"""mobile_api_docs/: OpenAPI from the flask-smorest schemas, AsyncAPI from the Socket.IO event registry.

Every Socket.IO event is declared once with ``socket_event`` next to the code that handles or emits
it; ``lienlac docs`` writes both documents, and a test fails when the checked-in copies drift.
"""
from __future__ import annotations

import json
from pathlib import Path

from apispec.ext.marshmallow import resolver
from marshmallow import Schema

_EVENTS: dict[tuple[str, str], dict] = {}


def socket_event(name: str, direction: str, payload, description: str, ack=None) -> None:
    """Declare an event. ``direction``: "client" (client → server) or "server" (server → client).

    ``payload``/``ack``: a marshmallow Schema class or instance, or a JSON-schema dict.
    """
    if direction not in ("client", "server"):
        raise ValueError("direction is 'client' or 'server'")
    _EVENTS[(name, direction)] = {"payload": payload, "description": description, "ack": ack}


def _json_schema(payload, spec) -> dict:
    if payload is None:
        return {}
    if isinstance(payload, dict):
        return payload
    schema = payload() if isinstance(payload, type) and issubclass(payload, Schema) else payload
    name = resolver(type(schema))
    if name not in spec.components.schemas:
        spec.components.schema(name, schema=type(schema))
    return {"$ref": f"#/components/schemas/{name}"}


def asyncapi(app) -> dict:
    api = app.extensions["lienlac.api"]
    spec = api.spec
    channels, operations = {}, {}
    for (name, direction), info in sorted(_EVENTS.items()):
        key = f"{name.replace(':', '_')}_{direction}"
        message = {"name": name, "summary": info["description"],
                   "payload": _json_schema(info["payload"], spec)}
        if info["ack"] is not None:
            message["x-ack"] = _json_schema(info["ack"], spec)
        channels[key] = {"address": name, "messages": {name.replace(":", "_"): message}}
        operations[key] = {"action": "send" if direction == "server" else "receive",
                           "channel": {"$ref": f"#/channels/{key}"},
                           "summary": ("server → client: " if direction == "server" else "client → server: ") + name}
    components = spec.to_dict().get("components", {}).get("schemas", {})
    doc = {
        "asyncapi": "3.0.0",
        "info": {"title": "Lienlac real-time API (Socket.IO, default namespace)", "version": "1.0.0",
                 "description": "Connect with `auth: {token: <access_token>}`; a bad or missing token is "
                                "refused. Each channel address is a Socket.IO event name."},
        "channels": channels,
        "operations": operations,
        "components": {"schemas": json.loads(json.dumps(components).replace("#/components/schemas/",
                                                                             "#/components/schemas/"))},
    }
    return doc


def openapi(app) -> dict:
    return app.extensions["lienlac.api"].spec.to_dict()


def documents(app) -> dict[str, dict]:
    events = asyncapi(app)  # registers event schemas first, so openapi holds every component
    return {"openapi.json": openapi(app), "asyncapi.json": events}


def render(doc: dict) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_docs(app, out: str = "mobile_api_docs") -> list[str]:
    """Write the documents of ``app`` (an app built on any configuration: nothing is connected)."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in documents(app).items():
        path = out_dir / name
        path.write_text(render(doc), encoding="utf-8")
        written.append(str(path))
    return written
