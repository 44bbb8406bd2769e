"""Ideogram's own "Remix with Ideogram 3.0" API, simulated: ``POST /v1/ideogram-v3/remix``.

The page (``../shared/spec/004_*``, ``runware-platform.md`` section 7): a multipart form with the
source ``image`` file and the options as fields, an ``Api-Key`` header, a synchronous answer
``{"created", "data": [ImageObject]}`` once the images exist, and errors 400 / 401|403 / 422
``{"error": ...}`` / 429. Open points are decided in ``assumptions`` (I1-I7).

Per call: count it, check the key, validate the form (400 naming the field), draw one fault
(429, 5xx, 422 safety, lost answer: exclusive shares of one draw), wait the generation time,
make ``num_images`` images (served by the same ``GET /images/...`` as Runware's results, with
the same lifetime knob), count the call as charged, and answer. A lost answer is charged too
(the images were made), then the answer is cut mid-body or held past the client's timeout.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.datastructures import FileStorage, MultiDict

from simulator import assumptions as A
from simulator.config import FaultKnobs, SimulatorConfig
from simulator.engine import Simulator
from simulator.faults import Faults
from simulator.images import ImageSpec
from simulator.models import STYLE_PRESETS
from simulator.stats import Stats
from simulator.store import TaskStore

PATH = "/v1/ideogram-v3/remix"
EXTENSION_KEY = "remixq_simulator_ideogram"
MODEL = "ideogram-v3-remix"  # the name the simulator's price table knows this endpoint by

ASPECT_RATIOS = (
    "1x3", "3x1", "1x2", "2x1", "9x16", "16x9", "10x16", "16x10", "2x3", "3x2", "3x4", "4x3",
    "4x5", "5x4", "1x1",
)  # fmt: skip
RENDERING_SPEEDS = ("FLASH", "TURBO", "DEFAULT", "QUALITY")
MAGIC_PROMPTS = ("AUTO", "ON", "OFF")
STYLE_TYPES = ("AUTO", "GENERAL", "REALISTIC", "DESIGN", "FICTION")
PALETTE_PRESETS = ("EMBER", "FRESH", "JUNGLE", "MAGIC", "MELON", "MOSAIC", "PASTEL", "ULTRAMARINE")
TEXT_FIELDS = (
    "prompt", "image_weight", "seed", "resolution", "aspect_ratio", "rendering_speed",
    "magic_prompt", "negative_prompt", "num_images", "color_palette", "style_codes",
    "style_type", "style_preset",
)  # fmt: skip
FILE_FIELDS = (
    "image",
    "style_reference_images",
    "character_reference_images",
    "character_reference_images_mask",
)
_HEX8 = re.compile(r"[0-9A-Fa-f]{8}")
_HEX_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
_INT = re.compile(r"-?[0-9]+")

ideogram_api = Blueprint("ideogram_api", __name__)


class CallFault(Enum):
    """What happens to one remix call instead of (or after) its normal answer."""

    NONE = "none"
    HTTP_429 = "ideogram_429"
    HTTP_5XX = "ideogram_5xx"
    SAFETY_422 = "ideogram_422"
    LOST_ANSWER = "ideogram_lost_answer"


_CALL_ODDS = (
    ("ideogram_429_rate", CallFault.HTTP_429),
    ("ideogram_5xx_rate", CallFault.HTTP_5XX),
    ("ideogram_422_rate", CallFault.SAFETY_422),
    ("ideogram_lost_answer_rate", CallFault.LOST_ANSWER),
)


@dataclass(frozen=True)
class Answer:
    """The HTTP answer of one call; ``cut`` sends half the body under the whole length, then
    closes the connection (a lost answer)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    cut: bool = False


class Invalid(Exception):
    """A form the API refuses with 400; the message names the field."""


class IdeogramRemix:
    """The simulated endpoint; shares the store, stats, faults and clock of the Simulator (one
    account, one image host, one ``/_control`` API for both providers)."""

    def __init__(self, simulator: Simulator) -> None:
        self.config: SimulatorConfig = simulator.config
        self.faults: Faults = simulator.faults
        self.stats: Stats = simulator.stats
        self.store: TaskStore = simulator.store
        self._clock: Callable[[], float] = simulator.now
        self._pause: Callable[[float], None] = simulator.pause

    def call(
        self,
        api_key: str | None,
        form: MultiDict[str, str],
        files: MultiDict[str, FileStorage],
        base_url: str,
    ) -> Answer:
        knobs = self.faults.knobs
        prompt = form.get("prompt")
        self.stats.ideogram_call(prompt)
        if not api_key:
            self.stats.count("auth_failures")
            return _error(A.IDEOGRAM_STATUS_NO_KEY, A.IDEOGRAM_NO_KEY_MESSAGE)
        if self.config.api_key is not None and api_key != self.config.api_key:
            self.stats.count("auth_failures")
            return _error(A.IDEOGRAM_STATUS_WRONG_KEY, A.IDEOGRAM_WRONG_KEY_MESSAGE)
        try:
            fields = validate(form, files)
        except Invalid as exc:
            self.stats.count("validation_errors")
            return _error(400, str(exc))
        fault = self._draw(knobs)
        if fault is not CallFault.NONE:
            self.stats.fault(fault.value)
        if fault is CallFault.HTTP_429:
            headers = {}
            if knobs.retry_after_s is not None:
                headers["Retry-After"] = str(knobs.retry_after_s)
            return _error(429, A.IDEOGRAM_429_MESSAGE, headers)
        if fault is CallFault.HTTP_5XX:
            return _error(500, A.IDEOGRAM_5XX_MESSAGE)
        if fault is CallFault.SAFETY_422:
            return _error(422, A.IDEOGRAM_SAFETY_MESSAGE)
        self._pause(self.faults.ideogram_latency_s(knobs))
        body = self._generate(fields, knobs, (self.config.public_url or base_url).rstrip("/"))
        if fault is CallFault.LOST_ANSWER:
            if knobs.ideogram_lost_answer_mode == "hold":
                self._pause(knobs.ideogram_lost_answer_hold_s)
                return Answer(200, body, {})
            return Answer(200, body, {}, cut=True)
        return Answer(200, body, {})

    def _draw(self, knobs: FaultKnobs) -> CallFault:
        draw = self.faults.rng.random()
        edge = 0.0
        for name, fault in _CALL_ODDS:
            edge += getattr(knobs, name)
            if draw < edge:
                return fault
        return CallFault.NONE

    def _generate(
        self, fields: Mapping[str, Any], knobs: FaultKnobs, base_url: str
    ) -> dict[str, Any]:
        rng: random.Random = self.faults.rng
        count = int(fields.get("num_images", 1))
        resolution = str(
            fields.get("resolution")
            or A.IDEOGRAM_ASPECT_RESOLUTIONS[fields.get("aspect_ratio", "1x1")]
        )
        width, height = (int(side) for side in resolution.split("x"))
        now = self._clock()
        expires = now + knobs.image_ttl_s if knobs.image_ttl_s is not None else None
        given_seed = fields.get("seed")
        style_type = None if "style_codes" in fields else fields.get("style_type", "GENERAL")
        items = []
        unsafe = 0
        for index in range(count):
            seed = (
                (int(given_seed) + index) % (A.SEED_MAX + 1)
                if given_seed is not None
                else rng.randint(0, A.SEED_MAX)
            )
            safe = not self.faults.chance(knobs.ideogram_unsafe_rate)
            url = None
            if safe:
                image_uuid = str(uuid.uuid4())
                spec = ImageSpec(
                    prompt=str(fields["prompt"]),
                    seed=seed,
                    width=width,
                    height=height,
                    output_format="PNG",
                    quality=95,
                )
                self.store.publish(image_uuid, spec, expires)
                url = f"{base_url}/images/{image_uuid}.{spec.extension}"
            else:
                unsafe += 1
                self.stats.fault("ideogram_unsafe")
            items.append(
                {
                    "url": url,
                    "prompt": fields["prompt"],
                    "resolution": resolution,
                    "is_image_safe": safe,
                    "seed": seed,
                    "style_type": style_type,
                }
            )
        speed = str(fields.get("rendering_speed", "DEFAULT"))
        cost = self.config.price(MODEL, speed) * count
        self.stats.ideogram_charged(str(fields["prompt"]), images=count, unsafe=unsafe, cost=cost)
        created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return {"created": created, "data": items}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, {"error": message}, headers or {})


# --- validation (I3) -----------------------------------------------------------------------------


def validate(form: MultiDict[str, str], files: MultiDict[str, FileStorage]) -> dict[str, Any]:
    """The form's fields as values, or Invalid naming the first problem found (I3)."""
    unknown = sorted(
        {name for name in form if name not in TEXT_FIELDS}
        | {name for name in files if name not in FILE_FIELDS}
    )
    if unknown:
        raise Invalid(f"Unknown field {unknown[0]!r}.")
    for name in FILE_FIELDS:
        if name in form:
            raise Invalid(f"{name} must be sent as a file.")
    for name in TEXT_FIELDS:
        if name != "style_codes" and len(form.getlist(name)) > 1:
            raise Invalid(f"{name} is given more than once.")
    fields: dict[str, Any] = {}
    image = files.getlist("image")
    if len(image) != 1:
        raise Invalid("image is required: one JPEG, PNG or WebP file.")
    _check_image("image", image[0], A.IDEOGRAM_IMAGE_MAX_BYTES)
    prompt = form.get("prompt")
    if not prompt:
        raise Invalid("prompt is required and must not be empty.")
    fields["prompt"] = prompt
    for name, low, high in (
        ("image_weight", 1, 100),
        ("seed", 0, A.SEED_MAX),
        ("num_images", 1, 8),
    ):
        if name in form:
            fields[name] = _integer(name, form[name], low, high)
    for name, allowed in (
        ("aspect_ratio", ASPECT_RATIOS),
        ("rendering_speed", RENDERING_SPEEDS),
        ("magic_prompt", MAGIC_PROMPTS),
        ("style_type", STYLE_TYPES),
        ("style_preset", STYLE_PRESETS),
        ("resolution", A.IDEOGRAM_RESOLUTIONS),
    ):
        if name in form:
            if form[name] not in allowed:
                raise Invalid(f"{name} must be one of {', '.join(allowed)}.")
            fields[name] = form[name]
    if "resolution" in fields and "aspect_ratio" in fields:
        raise Invalid("resolution cannot be used in conjunction with aspect_ratio.")
    if "negative_prompt" in form:
        if not form["negative_prompt"]:
            raise Invalid("negative_prompt must not be empty.")
        fields["negative_prompt"] = form["negative_prompt"]
    if "color_palette" in form:
        fields["color_palette"] = _palette(form["color_palette"])
    codes = form.getlist("style_codes")
    if codes:
        for code in codes:
            if not _HEX8.fullmatch(code):
                raise Invalid("style_codes must be 8 character hexadecimal codes.")
        if "style_type" in fields or "style_reference_images" in files:
            raise Invalid(
                "style_codes cannot be used in conjunction with style_reference_images or "
                "style_type."
            )
        fields["style_codes"] = codes
    styles = files.getlist("style_reference_images")
    total = sum(
        _check_image("style_reference_images", f, A.IDEOGRAM_IMAGE_MAX_BYTES) for f in styles
    )
    if total > A.IDEOGRAM_IMAGE_MAX_BYTES:
        raise Invalid("style_reference_images may total at most 10MB.")
    characters = files.getlist("character_reference_images")
    masks = files.getlist("character_reference_images_mask")
    if len(characters) > A.IDEOGRAM_CHARACTER_REFERENCES_MAX:
        raise Invalid("character_reference_images: only 1 image is supported.")
    if masks and len(masks) != len(characters):
        raise Invalid(
            "character_reference_images_mask needs one mask per character reference image."
        )
    for name, parts in (
        ("character_reference_images", characters),
        ("character_reference_images_mask", masks),
    ):
        for part in parts:
            _check_image(name, part, A.IDEOGRAM_IMAGE_MAX_BYTES)
    return fields


def _integer(name: str, text: str, low: int, high: int) -> int:
    if not _INT.fullmatch(text.strip()):
        raise Invalid(f"{name} must be an integer.")
    value = int(text)
    if not low <= value <= high:
        raise Invalid(f"{name} must be >= {low} and <= {high}.")
    return value


def _palette(text: str) -> dict[str, Any]:
    try:
        palette = json.loads(text)
    except ValueError:
        raise Invalid("color_palette must be a JSON object.") from None
    if (
        not isinstance(palette, dict)
        or len({"name", "members"} & set(palette)) != 1
        or (set(palette) - {"name", "members"})
    ):
        raise Invalid("color_palette must have EITHER name OR members.")
    if "name" in palette:
        if palette["name"] not in PALETTE_PRESETS:
            raise Invalid(f"color_palette.name must be one of {', '.join(PALETTE_PRESETS)}.")
        return palette
    members = palette["members"]
    if not isinstance(members, list) or not members:
        raise Invalid("color_palette.members must be a non-empty list.")
    for member in members:
        if not isinstance(member, dict) or set(member) - {"color_hex", "color_weight"}:
            raise Invalid("color_palette.members items have color_hex and color_weight only.")
        hex_value = member.get("color_hex")
        if not isinstance(hex_value, str) or not _HEX_COLOUR.fullmatch(hex_value):
            raise Invalid("color_palette.members[].color_hex must be a #RRGGBB colour.")
        weight = member.get("color_weight", 0.5)
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not (A.IDEOGRAM_COLOR_WEIGHT_MIN <= weight <= 1)
        ):
            raise Invalid("color_palette.members[].color_weight must be >= 0.05 and <= 1.")
    return palette


def _check_image(name: str, part: FileStorage, limit: int) -> int:
    data = part.stream.read(limit + 1)
    if len(data) > limit:
        raise Invalid(f"{name}: the image exceeds the maximum size of 10MB.")
    if not (
        data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"))
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
    ):
        raise Invalid(f"{name}: only JPEG, WebP and PNG formats are supported.")
    return len(data)


# --- the view ------------------------------------------------------------------------------------


def register(app: Flask, simulator: Simulator) -> None:
    """Mount the endpoint on the simulator's app, sharing ``simulator``'s state."""
    app.extensions[EXTENSION_KEY] = IdeogramRemix(simulator)
    app.register_blueprint(ideogram_api)


def get_remix() -> IdeogramRemix:
    remix = current_app.extensions[EXTENSION_KEY]
    assert isinstance(remix, IdeogramRemix)
    return remix


@ideogram_api.post(PATH)
def remix() -> Any:
    answer = get_remix().call(
        request.headers.get("Api-Key"), request.form, request.files, request.host_url
    )
    if not answer.cut:
        response = jsonify(answer.body)
        response.status_code = answer.status
        response.headers.update(answer.headers)
        return response
    # A lost answer (I5): the whole length declared, half the body sent, the connection closed.
    data = json.dumps(answer.body).encode()
    response = Response(iter([data[: len(data) // 2]]), answer.status, mimetype="application/json")
    response.headers["Content-Length"] = str(len(data))
    response.headers["Connection"] = "close"
    return response
