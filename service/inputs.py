"""Request-level input checks, run before every view (of every package).

- A JSON body must parse (strict UTF-8, no ``NaN``/``Infinity``, not nested beyond Python's
  recursion limit, no integer of thousands of digits): otherwise 400 ``validation_error``.
- No text may hold the NUL character or an unpaired surrogate (``"\\u0000"``, ``"\\ud800"``):
  PostgreSQL refuses NUL in text and neither can be encoded to UTF-8, so they would surface as
  500s deep inside a view. They answer 422 ``validation_error`` with the offending fields, wherever
  they are: JSON keys and values, query arguments, path segments, form fields, upload file names.
"""
from __future__ import annotations

import json

from flask import Flask, request

from .errors import ApiError, ValidationError

MAX_REPORTED = 20


def _problem(text: str) -> str | None:
    if "\x00" in text:
        return "Must not contain the NUL character."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Not valid Unicode text (unpaired surrogate)."
    return None


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _parse_json_body():
    data = request.get_data(cache=True)
    if not data.strip():
        return None, False
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant), True
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ApiError("The request body is not valid JSON.", status=400) from exc


def _walk(value, root: str, problems: dict) -> None:
    """Iterative (a body may be nested hundreds deep): ``problems[path] = [message]``."""
    stack = [(root, value)]
    while stack and len(problems) < MAX_REPORTED:
        path, item = stack.pop()
        if isinstance(item, str):
            message = _problem(item)
            if message:
                problems.setdefault(path or "_schema", [message])
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                message = _problem(key) if isinstance(key, str) else None  # a form part may have no name
                if message:
                    problems.setdefault(child_path, [message])
                stack.append((child_path, child))
        elif isinstance(item, list):
            stack.extend((f"{path}.{i}" if path else str(i), child) for i, child in enumerate(item))


def check_request() -> None:
    if request.routing_exception is not None:  # 404/405: the router answers
        return
    problems: dict = {}
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str):
            _walk(value, name, problems)
    for name, values in request.args.lists():
        _walk({name: values[0] if len(values) == 1 else values}, "", problems)
    if request.is_json:
        body, present = _parse_json_body()
        if present:
            _walk(body, "", problems)
    elif request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        for name, values in request.form.lists():
            _walk({name: values[0] if len(values) == 1 else values}, "", problems)
        for name, upload in request.files.items(multi=True):
            _walk(upload.filename or "", name, problems)
    if problems:
        raise ValidationError("The request has invalid fields.", fields=problems)


def init_app(app: Flask) -> None:
    app.before_request(check_request)
