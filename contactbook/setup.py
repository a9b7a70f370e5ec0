"""Wiring done by the app factory: the gate devices' security scheme in the OpenAPI document."""
from __future__ import annotations

from .policy import DEVICE_HEADER


def init_app(app, config) -> None:
    spec = app.extensions["lienlac.api"].spec
    if "deviceKey" not in spec.components.security_schemes:
        spec.components.security_scheme("deviceKey", {
            "type": "apiKey", "in": "header", "name": DEVICE_HEADER,
            "description": "A gate device's API key (POST /schools/{id}/gate-devices shows it once)."})
