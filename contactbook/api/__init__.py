"""HTTP of the contact book (paths fixed by API.md "Contact book"). Views parse, call ``logic``, serialise.

``blueprints`` (registered by the app factory) gathers the ``blueprints`` of every module of this
package, in name order: a new module is served without editing this file or the app factory.
"""
from __future__ import annotations

import importlib
import pkgutil


def _collect() -> tuple:
    names = [f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    found = []
    for name in sorted(names):
        module = importlib.import_module(name)
        found.extend(getattr(module, "blueprints", None) or ([module.blp] if hasattr(module, "blp") else []))
    return tuple(found)


blueprints = _collect()
