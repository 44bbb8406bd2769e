"""`remixq submit --failover` and a spec's `failover` (remixq.failover): stored on the
campaign, shown by `remixq campaigns --json`, a bad value refused in one readable line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import remixq

REQUEST = {
    "model": "ideogram:4@2",
    "positivePrompt": "a poster",
    "width": 1024,
    "height": 1024,
    "inputs": {"referenceImages": ["https://assets.example.test/in.png"]},
}


def campaign_file(tmp_path: Path, name: str) -> Path:
    file = tmp_path / f"{name}.jsonl"
    file.write_text(json.dumps(REQUEST | {"positivePrompt": name}) + "\n")
    return file


def failovers(tmp_path: Path) -> dict[str, object]:
    found = json.loads(remixq(tmp_path, "campaigns", "--json").stdout)
    return {c["name"]: c["failover"] for c in found}


def test_submit_sets_failover_and_an_existing_campaign_keeps_it(tmp_path: Path) -> None:
    on = remixq(
        tmp_path, "submit", str(campaign_file(tmp_path, "a")), "--campaign", "spring",
        "--failover", "ideogram",
    )  # fmt: skip
    assert on.returncode == 0, on.stderr
    kept = remixq(tmp_path, "submit", str(campaign_file(tmp_path, "b")), "--campaign", "spring")
    assert kept.returncode == 0, kept.stderr
    plain = remixq(tmp_path, "submit", str(campaign_file(tmp_path, "c")), "--campaign", "plain")
    assert plain.returncode == 0, plain.stderr
    assert failovers(tmp_path) == {"spring": "ideogram", "plain": None}
    off = remixq(
        tmp_path, "submit", str(campaign_file(tmp_path, "d")), "--campaign", "spring",
        "--failover", "off",
    )  # fmt: skip
    assert off.returncode == 0, off.stderr
    assert failovers(tmp_path)["spring"] is None


def test_a_spec_names_its_failover(tmp_path: Path) -> None:
    spec = tmp_path / "tins.yaml"
    spec.write_text(json.dumps({"name": "tins", "failover": "ideogram", "jobs": [REQUEST]}))
    done = remixq(tmp_path, "submit", str(spec))
    assert done.returncode == 0, done.stderr
    assert failovers(tmp_path) == {"tins": "ideogram"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({"name": "bad", "failover": "runware", "jobs": [REQUEST]}))
    refused = remixq(tmp_path, "submit", str(bad))
    assert refused.returncode == 2
    assert "failover: 'runware' is not allowed; one of ideogram, off" in refused.stderr


def test_a_bad_failover_flag_is_one_readable_line(tmp_path: Path) -> None:
    refused = remixq(
        tmp_path, "submit", str(campaign_file(tmp_path, "a")), "--failover", "elsewhere"
    )
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert line == "error: --failover: 'elsewhere' is not allowed; one of ideogram, off"
    assert "no campaign" in remixq(tmp_path, "campaigns").stdout
