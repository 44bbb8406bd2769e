"""Query and form parameters as the dashboard reads them: a bad one is a 400 page naming the
parameter, its value and what is allowed."""

from __future__ import annotations

from flask import abort, request

MAX_ID = 2**63 - 1


def _as_id(name: str, text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_ID:
        abort(400, f"{name}: {text[:40]!r} is not allowed; a positive whole number (an id)")
    return int(text)


def optional_id(name: str) -> int | None:
    text = request.args.get(name)
    return None if text in (None, "") else _as_id(name, text)


def id_list(name: str, most: int) -> list[int]:
    texts = request.args.getlist(name)
    if len(texts) > most:
        abort(400, f"{name}: {len(texts)} values are not allowed; at most {most}")
    return [_as_id(name, text) for text in texts]
