"""The API's typed bodies agree with the domain where they spell one of its facts again."""

from __future__ import annotations

from typing import get_args

from remixq.budgets import COST_GROUPS
from webhook_receiver.api import schemas


def test_the_cost_groups_are_the_domains() -> None:
    assert get_args(schemas.CostBy) == COST_GROUPS
