"""Which providers answer synchronously and which report no cost, read from the seam
(`remixq.providers.PROVIDERS`) once: a leaf that the ledger, the claim and the reports can
import without importing one another.

A provider is synchronous when its `delivery` is "sync" (Ideogram's own API): its jobs go to
the native queue (remixq.native), never to getResponse polling. Its costs are estimates when
its answers carry none (`reports_cost` false: Ideogram's API returns no cost), so every report
marks its costs as the price table's (`spent_estimated_usd`, `cost_estimated`).
"""

from __future__ import annotations

from functools import cache


@cache
def sync_providers() -> frozenset[str]:
    from remixq.providers import PROVIDERS

    return frozenset(name for name, p in PROVIDERS.items() if p.delivery == "sync")


@cache
def estimated_cost_providers() -> frozenset[str]:
    from remixq.providers import PROVIDERS

    return frozenset(name for name, p in PROVIDERS.items() if not p.reports_cost)
