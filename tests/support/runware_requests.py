"""Runware request fixtures shared by the schema tests: valid requests of each model to mutate,
the images and ids they use, and ``changed`` to set or remove a dotted path in a copy."""

from __future__ import annotations

import base64
import copy
from typing import Any

WEBHOOK = "https://hooks.example.test/webhooks/runware/s3cr3t"
TASK_UUID = "0b5a3e7c-2f4d-4c1e-9a8b-6d2f1e3c4b5a"
IMAGE_URL = "https://assets.example.test/inputs/source.jpg"
IMAGE_UUID = "c64351d5-4c59-42f7-95e1-eace013eddab"
PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 24).decode()
JPEG_B64 = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 20).decode()
WEBP_B64 = base64.b64encode(b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8).decode()
DELETE = object()

V1_OK: dict[str, Any] = {
    "model": "ideogram:1@2",
    "positivePrompt": "A retro cereal box",
    "width": 1024,
    "height": 768,
    "inputs": {"referenceImages": [IMAGE_URL]},
}
V3_OK: dict[str, Any] = {**V1_OK, "model": "ideogram:4@2", "width": 1344, "height": 768}
V4_OK: dict[str, Any] = {
    "model": "ideogram:4@remix",
    "positivePrompt": "A retro cereal box",
    "width": 2048,
    "height": 2048,
    "inputs": {"seedImage": IMAGE_URL},
}
BASES = {"v1": V1_OK, "v3": V3_OK, "v4": V4_OK}


def changed(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with dotted paths set (or removed with DELETE)."""
    out = copy.deepcopy(base)
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return out
