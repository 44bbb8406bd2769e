"""The request models: one schema per model id, each enforcing the cross-field rules itself."""

from __future__ import annotations

import pytest

from remixq.providers.runware import (
    MODEL_IDS,
    MODELS,
    Ideogram1Remix,
    Ideogram3Remix,
    Ideogram4Remix,
)
from tests.support.runware_requests import V1_OK


def test_models_map_each_id_to_its_schema() -> None:
    assert MODEL_IDS == ("ideogram:1@2", "ideogram:4@2", "ideogram:4@remix")
    expected = {
        "ideogram:1@2": Ideogram1Remix,
        "ideogram:4@2": Ideogram3Remix,
        "ideogram:4@remix": Ideogram4Remix,
    }
    assert expected == MODELS


def test_schemas_enforce_cross_field_rules_when_used_directly() -> None:
    with pytest.raises(ValueError, match="documented sizes"):
        Ideogram1Remix.model_validate({**V1_OK, "width": 1000, "height": 1000})
