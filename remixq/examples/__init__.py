"""The bundled example campaign (`remixq demo`'s): ten Runware requests over the three models,
one to four results each, as a campaign file's lines."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

DEMO = "demo.jsonl"


def demo_path() -> Path:
    return Path(str(resources.files(__name__) / DEMO))


def demo_lines() -> list[dict[str, Any]]:
    text = (resources.files(__name__) / DEMO).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def campaign_lines(count: int) -> list[dict[str, Any]]:
    """`count` valid campaign lines: the demo's, repeated in turn."""
    examples = demo_lines()
    return [examples[i % len(examples)] for i in range(count)]
