"""The report of the sustained runs, the embedded default and the peer baseline: the targets'
verdicts and the tables, from results made here (no run)."""

from __future__ import annotations

from collections import Counter

from bench.campaign import CampaignResult
from bench.diag import explain
from bench.document import _embedded, _sustained, targets
from bench.peer import PeerPoint
from bench.plan import Plan, Results
from bench.sustained import SustainedResult, SustainedRun
from bench.windows import Stall, Window

MIB = 2**20


def _window(p99: float, p999: float) -> Window:
    return Window(0, 10, 25_000, 5.0, p99, p999, p999 * 1.5)


def _run(label: str, generator: str, rate: float, p99: float, p999: float) -> SustainedRun:
    total = _window(p99, p999)
    return SustainedRun(
        label=label,
        generator=generator,
        seconds=60,
        requests=int(rate * 60),
        windows=[total],
        total=total,
        rss_start=200 * MIB,
        rss_end=204 * MIB,
        statuses={"200": int(rate * 60)},
        server_cpu_s=30,
        db_cpu_s=10,
    )


def _campaign(backend: str, wall: float) -> CampaignResult:
    return CampaignResult(
        jobs=10_000,
        images=18_000,
        expected_images=18_000,
        wall_s=wall,
        submit_s=5,
        cpu_s={"worker": 5, "receiver": 9, "producer (remixq submit)": 3, "postgres": 4},
        peak_rss={"receiver": 230 * MIB, "worker": 110 * MIB},
        table_bytes={"database file": 80_000_000},
        statuses={"completed": 10_000},
        backend=backend,
        asset_statuses={"stored": 18_000},
    )


def _series(worker_mib: list[int]) -> list[tuple[float, dict[str, int]]]:
    """A sample every 10 s: the worker as given, the receiver and the background pool steady."""
    return [
        (10.0 * i, {"receiver": 230 * MIB, "worker": w * MIB, "assets worker": 120 * MIB})
        for i, w in enumerate(worker_mib)
    ]


def test_memory_growth_is_taken_after_the_first_window() -> None:
    run = _run("receiver", "loadgen", 2_600, 14, 80)
    run.rss_by_window = [203 * MIB, 0]  # a window without a sample counts for nothing
    assert f"{run.rss_growth:.3f}" == f"{204 / 203 - 1:.3f}"
    assert f"{run.rss_growth_from_start:.3f}" == "0.020"


def _results() -> Results:
    results = Results()
    results.sustained = SustainedResult(
        runs=[
            _run("bare Flask", "loadgen", 5_000, 30, 60),
            _run("receiver", "loadgen", 2_600, 14, 80),
            _run("bare Flask", "wrk", 5_000, 30, 60),
            _run("receiver", "wrk", 2_000, 40, 300),
        ],
        stored={"inbox rows": 276_000, "images": 290_000},
        answered_ok=276_000,
    )
    # 4b runs both set-ups itself (images copied on both); 3-4's campaigns are not its baseline.
    results.embedded = [_campaign("embedded", 50), _campaign("postgres", 25)]
    results.campaigns = [_campaign("postgres", 10)]
    script = {"wall_s": 3.0, "cpu_s": 2.0, "images": 3_600, "failed": 0}
    results.peer = [PeerPoint(0.0, 2_000, script, 3.0, _campaign("postgres", 4.0))]
    return results


def test_the_verdicts() -> None:
    verdicts = {row["target"]: (row["measured"], row["verdict"]) for row in targets(_results())}
    loadgen = "sustained ingest, 60 s (loadgen)"
    assert verdicts[f"{loadgen}: p99 < 25 ms"] == ("14.0 ms", "met")
    assert verdicts[f"{loadgen}: p99.9 < 100 ms"] == ("80.0 ms", "met")
    assert verdicts[f"{loadgen}: >= 0.5x bare"] == ("0.52x", "met")
    memory = verdicts[f"{loadgen}: receiver memory after the first 10 s < +5%"]
    assert memory == ("+2.0% (from the start +2.0%)", "met")
    wrk = "sustained ingest, 60 s (wrk)"
    assert verdicts[f"{wrk}: p99.9 < 100 ms"] == ("300.0 ms", "NOT met")
    assert verdicts[f"{wrk}: >= 0.5x bare"] == ("0.40x", "NOT met")
    assert verdicts["sustained ingest: nothing lost (every answer 2xx)"] == ("0 not", "met")
    embedded = verdicts["embedded default, 10,000 jobs: >= 0.7x PostgreSQL + Redis jobs/s"]
    assert embedded == ("0.50x", "NOT met")
    assert verdicts["peer at 0 ms: remixq wall <= 1.5x the SDK script's"] == ("1.33x", "met")
    # (3 + 5 + 9 + 4) s of CPU for 10,000 jobs against 2 s for 2,000: 2.1 ms against 1 ms.
    cpu = verdicts["peer at 0 ms: remixq CPU/job (PostgreSQL included) <= 1.5x"]
    assert cpu == ("2.10x", "NOT met")
    done = verdicts["embedded default, 10,000 jobs: every job final, every image stored"]
    assert done == ("10,000 final, 18,000 of 18,000 images stored", "met")


def test_memory_that_plateaus_early_is_flat_and_memory_that_keeps_rising_is_not() -> None:
    plateau = _campaign("embedded", 50)
    plateau.memory = _series([100, 180, 200, 201, 200, 202, 201, 199])
    # 70 s: the first half's peak is 201 MiB (at 30 s), the second half's 202 (at 50 s).
    assert plateau.memory_growth("worker") == 202 / 201 - 1
    assert plateau.memory_at("worker", 0.5) == 201 * MIB  # the sample at 30 s, the last by 35 s
    leaking = _campaign("embedded", 50)
    leaking.memory = _series([100, 120, 140, 160, 180, 200, 220, 240])
    assert f"{leaking.memory_growth('worker'):.3f}" == f"{240 / 160 - 1:.3f}"
    flat = (
        "embedded default, 10,000 jobs: memory flat"
        " (second half's peak < +5% over the first half's)"
    )
    for campaign, verdict in ((plateau, "met"), (leaking, "NOT met")):
        results = _results()
        results.embedded = [campaign, _campaign("postgres", 25)]
        verdicts = {row["target"]: (row["measured"], row["verdict"]) for row in targets(results)}
        assert verdicts[flat][1] == verdict
    assert verdicts[flat][0] == "receiver +0.0%, worker +50.0%, background pool +0.0%"


def test_the_embedded_section_shows_each_process_memory_through_the_run() -> None:
    results = _results()
    results.embedded[0].memory = _series([100, 180, 200, 201, 200, 202, 201, 199])
    text = "".join(_embedded(results))
    rows = [line for line in text.splitlines() if "| worker |" in line]
    assert rows == ["| embedded | 10,000 | worker | 100 | 180 | 201 | 202 | 199 | 202 | +0.5% |"]
    assert "| background pool |" in text


def test_the_sustained_section_has_a_table_per_window_and_the_ratios() -> None:
    text = "".join(_sustained(_results(), Plan()))
    assert "loadgen: receiver / bare Flask = **0.52x**" in text
    assert "wrk: receiver / bare Flask = **0.40x**" in text
    assert text.count("| window s |") == 4
    assert "consecutive 10-s wrk runs" in text


def test_the_embedded_section_puts_both_backends_side_by_side() -> None:
    text = "".join(_embedded(_results()))
    rows = [line for line in text.splitlines() if line.startswith("| ") and "10,000" in line]
    assert [row.split(" | ")[0] for row in rows] == ["| embedded (SQLite)", "| PostgreSQL + Redis"]
    assert "every image copied" in text


def test_a_stall_is_explained_by_what_overlapped_it() -> None:
    start = 1_000_000_000
    stall = Stall(start_s=2.0, end_s=2.3, requests=12, max_ms=290)
    events = [
        {"kind": "gc", "generation": 2, "end_ns": start + 2_200_000_000, "ns": 150_000_000},
        {"kind": "gc", "generation": 2, "end_ns": start + 9_000_000_000, "ns": 40_000_000},
        {"kind": "blocked", "end_ns": start + 2_250_000_000, "ns": 20_000_000, "stack": ["x"]},
    ]
    samples = [
        {"t": start + 2_100_000_000, "rows": [["client backend", "active", "IO", "WALSync", ""]]},
        {"t": start + 5_000_000_000, "rows": [["client backend", "active", None, None, ""]]},
    ]
    evidence = explain([stall], start, events, samples)
    assert evidence.gc_full == 2
    assert evidence.waits == Counter({"IO:WALSync": 1, "CPU": 1})
    (row,) = evidence.rows
    assert row["gc in workers"] == "gen2 150 ms"
    assert row["hub blocked"] == "20 ms"
    assert row["postgres (samples)"] == "IO:WALSync x1"
