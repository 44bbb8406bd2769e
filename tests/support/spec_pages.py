"""Reading the provider's spec pages (``../shared/spec``): the JSON objects a page holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# The contract beside the checkout: ../shared/spec
SPEC_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "spec"


def json_objects(text: str) -> list[dict[str, Any]]:
    """Every top-level JSON object in a page, fenced in Markdown (001) or run together (000)."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    at = text.find("{")
    while at != -1:
        try:
            value, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            at = text.find("{", at + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
        at = text.find("{", end)
    return found
