"""The documented values: 62 style presets and the size tables of 1.0 and 4.0."""

from __future__ import annotations

from remixq.providers.runware.schemas import IDEOGRAM_1_SIZES, IDEOGRAM_4_SIZES, STYLE_PRESETS


def test_there_are_62_style_presets_11_sizes_for_1_0_and_23_for_4_0() -> None:
    assert len(STYLE_PRESETS) == len(set(STYLE_PRESETS)) == 62
    assert len(set(IDEOGRAM_1_SIZES)) == 11
    assert len(set(IDEOGRAM_4_SIZES)) == 23
