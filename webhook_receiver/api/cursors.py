"""Opaque page cursors: the last id of a page, base64url-encoded. A page is the next `limit`
rows by id after it (keyset pagination on the primary key), so a page costs an index range
scan however deep it is, and rows inserted meanwhile never shift a page already read."""

from __future__ import annotations

import base64
import binascii

from remixq.errors import FieldError, InvalidInput

_TAG = "id:"
_MAX_ID = 2**63 - 1  # BIGINT


def encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_TAG}{last_id}".encode()).decode().rstrip("=")


def decode(cursor: str | None) -> int | None:
    """The id after which a page starts; an unreadable cursor is refused (422)."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    digits = text[len(_TAG) :]
    if text.startswith(_TAG) and digits.isascii() and digits.isdigit() and len(digits) <= 19:
        last_id = int(digits)
        if last_id <= _MAX_ID:
            return last_id
    raise InvalidInput([FieldError("cursor", cursor, "the next_cursor of a previous page")])


def page(ids: list[int], limit: int) -> tuple[int, str | None]:
    """Of `limit` + 1 rows fetched (by id, their `ids`): how many make the page, and the cursor
    of the next page (None: there is none)."""
    if len(ids) > limit:
        return limit, encode(ids[limit - 1])
    return len(ids), None
