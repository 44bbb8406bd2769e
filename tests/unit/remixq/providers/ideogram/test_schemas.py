"""Ideogram's native request schema: every rule of page 004 refused with its field, its value and
what is allowed; every documented value accepted; the stored form exactly Ideogram's fields."""

from __future__ import annotations

from typing import Any

import pytest

from remixq.errors import FieldError, InvalidInput
from remixq.providers.ideogram import assumptions as A
from remixq.providers.ideogram.schemas import build_request, parse_request
from remixq.url_policy import UrlPolicy
from tests.support.ideogram_requests import (
    DELETE,
    IMAGE_URL,
    JPEG,
    PNG,
    WEBP,
    big_png,
    data_uri,
    request,
)
from tests.support.images import image_bytes


def refusals(data: dict[str, Any], **options: Any) -> list[FieldError]:
    with pytest.raises(InvalidInput) as caught:
        parse_request(data, **options)
    return caught.value.errors


def only(data: dict[str, Any], **options: Any) -> FieldError:
    errors = refusals(data, **options)
    assert len(errors) == 1, errors
    return errors[0]


def test_the_base_request_is_valid_and_stored_as_ideograms_fields() -> None:
    parsed = parse_request(request())
    assert build_request(parsed) == {"image": PNG, "prompt": "A seaside ticket booth"}


def test_every_field_is_stored_under_its_own_name() -> None:
    full = request(
        image_weight=70,
        seed=42,
        aspect_ratio="16x9",
        rendering_speed="TURBO",
        magic_prompt="OFF",
        negative_prompt="text",
        num_images=3,
        color_palette={"members": [{"color_hex": "#1A2B3C", "color_weight": 0.5}]},
        style_preset="BRIGHT_ART",
        style_type="REALISTIC",
        style_reference_images=[JPEG, WEBP],
        character_reference_images=[PNG],
        character_reference_images_mask=[PNG],
    )
    stored = build_request(parse_request(full))
    assert stored == full
    assert "taskUUID" not in build_request(
        parse_request(request(taskUUID="6ba7b826-9dad-41d1-80b4-00c04fd430c8"))
    )


@pytest.mark.parametrize("image", [PNG, JPEG, WEBP, IMAGE_URL])
def test_each_supported_image_form_is_accepted(image: str) -> None:
    assert parse_request(request(image=image)).image == image


# (changes, field, value shown, words the allowed text must contain)
CASES: list[tuple[dict[str, Any], str, Any, str]] = [
    ({"image": DELETE}, "image", None, "required: a JPEG, PNG or WebP image"),
    ({"image": "in.png"}, "image", "in.png", "https URL"),
    ({"image": "http://assets.example.test/in.png"}, "image", None, "https URL"),
    ({"image": data_uri(image_bytes("GIF"), "image/gif")}, "image", None, "JPEG, PNG or WebP"),
    ({"image": "data:image/png;base64,@@@"}, "image", None, "base64"),
    ({"prompt": DELETE}, "prompt", None, "required: a non-empty string"),
    ({"prompt": ""}, "prompt", "", "a non-empty string"),
    ({"prompt": 7}, "prompt", 7, "a non-empty string"),
    ({"image_weight": 0}, "image_weight", 0, "an integer from 1 to 100"),
    ({"image_weight": 101}, "image_weight", 101, "an integer from 1 to 100"),
    ({"image_weight": "50"}, "image_weight", "50", "an integer from 1 to 100"),
    ({"seed": -1}, "seed", -1, "an integer from 0 to 2147483647"),
    ({"seed": 2147483648}, "seed", 2147483648, "an integer from 0 to 2147483647"),
    ({"seed": True}, "seed", True, "an integer from 0 to 2147483647"),
    ({"num_images": 0}, "num_images", 0, "an integer from 1 to 8"),
    ({"num_images": 9}, "num_images", 9, "an integer from 1 to 8"),
    ({"num_images": 2.0}, "num_images", 2.0, "an integer from 1 to 8"),
    ({"resolution": "1000x1000"}, "resolution", "1000x1000", "ResolutionV3"),
    ({"aspect_ratio": "7x5"}, "aspect_ratio", "7x5", "one of 1x3, 3x1"),
    ({"rendering_speed": "FAST"}, "rendering_speed", "FAST", "FLASH, TURBO, DEFAULT, QUALITY"),
    ({"magic_prompt": "YES"}, "magic_prompt", "YES", "AUTO, ON, OFF"),
    ({"style_type": "ANIME"}, "style_type", "ANIME", "AUTO, GENERAL, REALISTIC, DESIGN, FICTION"),
    ({"style_preset": "NOPE"}, "style_preset", "NOPE", "BRIGHT_ART"),
    ({"negative_prompt": ""}, "negative_prompt", "", "a non-empty string"),
    ({"seed": None}, "seed", None, "an integer from 0 to 2147483647"),
    ({"color_palette": {"name": "RAINBOW"}}, "color_palette.name", "RAINBOW", "EMBER"),
    (
        {"color_palette": {"members": [{"color_hex": "1A2B3C"}]}},
        "color_palette.members[0].color_hex",
        "1A2B3C",
        '"#RRGGBB"',
    ),
    (
        {"color_palette": {"members": [{"color_hex": "#1A2B3C", "color_weight": 0.01}]}},
        "color_palette.members[0].color_weight",
        0.01,
        "from 0.05 to 1",
    ),
    (
        {"color_palette": {"members": [{"color_hex": "#1A2B3C", "color_weight": 2}]}},
        "color_palette.members[0].color_weight",
        None,
        "from 0.05 to 1",
    ),
    ({"color_palette": {"members": []}}, "color_palette.members", [], "a list of 1 to 16"),
    ({"color_palette": "EMBER"}, "color_palette", "EMBER", "an object with the fields name"),
    ({"style_codes": ["1A2B3C4"]}, "style_codes[0]", "1A2B3C4", "8 hexadecimal"),
    ({"style_codes": ["1A2B3C4G"]}, "style_codes[0]", "1A2B3C4G", "8 hexadecimal"),
    ({"style_codes": []}, "style_codes", [], "a list of 1 to 16 codes"),
    ({"style_codes": "1A2B3C4D"}, "style_codes", "1A2B3C4D", "a list of 1 to 16 codes"),
    ({"style_reference_images": []}, "style_reference_images", [], "a list of 1 or more"),
    ({"style_reference_images": ["x.png"]}, "style_reference_images[0]", "x.png", "https URL"),
    (
        {"character_reference_images": [PNG, PNG]},
        "character_reference_images",
        None,
        "exactly 1 character reference image",
    ),
    (
        {"character_reference_images": [PNG], "character_reference_images_mask": [PNG, PNG]},
        "character_reference_images_mask",
        None,
        "exactly 1 mask image",
    ),
    ({"taskUUID": "not-a-uuid"}, "taskUUID", "not-a-uuid", "UUID v4"),
]


@pytest.mark.parametrize(("changes", "field", "value", "allowed"), CASES)
def test_a_bad_value_is_refused_naming_field_value_and_what_is_allowed(
    changes: dict[str, Any], field: str, value: Any, allowed: str
) -> None:
    error = only(request(**changes))
    assert error.field == field
    if value is not None:
        assert error.value == value
    assert allowed in error.allowed, error.allowed


def test_an_image_over_10_mib_is_refused_with_its_size() -> None:
    error = only(request(image=data_uri(big_png(A.IMAGE_MAX_BYTES + 1))))
    assert error.field == "image"
    assert "at most 10.0 MiB; this one is 10.0 MiB" in error.allowed
    assert parse_request(request(image=data_uri(big_png(A.IMAGE_MAX_BYTES))))


def test_an_image_url_is_held_to_the_url_policy() -> None:
    policy = UrlPolicy(refuse_private=True, resolve=lambda _host: ["10.0.0.7"])
    error = only(request(image=IMAGE_URL), urls=policy)
    assert error.field == "image" and "10.0.0.7" in error.allowed and "https URL" in error.allowed


def test_resolution_and_aspect_ratio_exclude_each_other() -> None:
    parse_request(request(resolution="1024x1024"))
    parse_request(request(aspect_ratio="1x1"))
    error = only(request(resolution="1024x1024", aspect_ratio="1x1"))
    assert (error.field, error.value) == ("aspect_ratio", "1x1")
    assert "either resolution or aspect_ratio" in error.allowed


@pytest.mark.parametrize("other", [{"style_reference_images": [PNG]}, {"style_type": "GENERAL"}])
def test_style_codes_exclude_style_references_and_style_type(other: dict[str, Any]) -> None:
    parse_request(request(style_codes=["1A2B3C4D", "deadbeef"]))
    parse_request(request(**other))
    error = only(request(style_codes=["1A2B3C4D"], **other))
    (name,) = other
    assert error.field == name and "not together with style_codes" in error.allowed


def test_style_reference_images_are_bounded_in_total() -> None:
    half = data_uri(big_png(A.STYLE_REFERENCES_MAX_TOTAL_BYTES // 2))
    parse_request(request(style_reference_images=[half, half]))
    error = only(request(style_reference_images=[half, half, PNG]))
    assert error.field == "style_reference_images"
    assert "3 images" in error.value and "at most 10.0 MiB in total" in error.allowed


def test_character_masks_go_with_their_references() -> None:
    parse_request(request(character_reference_images=[PNG]))
    parse_request(request(character_reference_images=[PNG], character_reference_images_mask=[PNG]))
    error = only(request(character_reference_images_mask=[PNG]))
    assert error.field == "character_reference_images_mask"
    assert "only together with character_reference_images" in error.allowed


def test_a_palette_is_a_preset_or_members_never_both() -> None:
    parse_request(request(color_palette={"name": "EMBER"}))
    parse_request(request(color_palette={"members": [{"color_hex": "#abcdef"}]}))
    error = only(request(color_palette={"name": "EMBER", "members": [{"color_hex": "#abcdef"}]}))
    assert error.field == "color_palette" and "exactly one of them" in error.allowed


@pytest.mark.parametrize("speed", ["FLASH", "TURBO", "DEFAULT", "QUALITY"])
def test_every_rendering_speed_is_accepted(speed: str) -> None:
    assert parse_request(request(rendering_speed=speed)).rendering_speed == speed


@pytest.mark.parametrize("resolution", A.RESOLUTIONS)
def test_every_documented_resolution_is_accepted(resolution: str) -> None:
    parse_request(request(resolution=resolution))


def test_a_runware_field_gets_a_pointer_to_the_ideogram_one() -> None:
    error = only(request(positivePrompt="x", prompt=DELETE) | {"prompt": "y"})
    assert error.field == "positivePrompt"
    assert "Runware field" in error.allowed and "use prompt" in error.allowed
    error = only(request(colour="red"))
    assert error.field == "colour" and "allowed here: taskUUID, image, prompt" in error.allowed
    error = only(request(color_palette={"members": [{"color_hex": "#abcdef", "alpha": 1}]}))
    assert error.field == "color_palette.members[0].alpha"
    assert "allowed here: color_hex, color_weight" in error.allowed


def test_every_problem_is_reported_at_once() -> None:
    errors = refusals(
        request(prompt="", num_images=9, resolution="1024x1024", aspect_ratio="1x1", seed=-1)
    )
    assert {e.field for e in errors} == {"prompt", "num_images", "aspect_ratio", "seed"}
