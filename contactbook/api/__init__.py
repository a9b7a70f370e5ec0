"""HTTP of the contact book (paths fixed by API.md "Contact book"). Views parse, call ``logic``, serialise.

``blueprints`` (registered by the app factory) gathers the ``blueprints`` of every module of this
package and of every top-level ``contactbook/api_*.py`` module, in name order: a new module of the
package (e.g. the grades half's) is served without editing this file or the app factory.
"""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path


def _collect() -> tuple:
    names = [f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    package_dir = Path(__file__).resolve().parents[1]
    names += [f"contactbook.{m.name}" for m in pkgutil.iter_modules([str(package_dir)]) if m.name.startswith("api_")]
    found = []
    for name in sorted(names):
        module = importlib.import_module(name)
        found.extend(getattr(module, "blueprints", None) or ([module.blp] if hasattr(module, "blp") else []))
    return tuple(found)


blueprints = _collect()
