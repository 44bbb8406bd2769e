"""`export --images`: readable names that cannot lead outside the folder, a spec's variant as
its axis values, and the files written from the storage."""

from __future__ import annotations

from pathlib import Path

from remixq.assets.export import folder_of, readable, write_images
from remixq.assets.storage import FileStorage


def test_names_are_one_safe_component() -> None:
    assert readable("../../etc/passwd") == "etc-passwd"
    assert readable("spring tins/2027") == "spring-tins-2027"
    assert readable("..") == "-" and readable("") == "-"
    assert len(readable("x" * 500)) == 80


def test_a_variant_names_its_folder_by_its_axis_values() -> None:
    variant = {"providerSettings.ideogram.stylePreset": "VINTAGE_POSTER", "positivePrompt": "a tin"}
    assert folder_of({"variant": variant, "job_id": 3}) == (
        "positivePrompt=a-tin_stylePreset=VINTAGE_POSTER"
    )
    assert folder_of({"variant": {"job": 2}, "job_id": 3}) == "job=2"
    assert folder_of({"variant": None, "job_id": 3}) == "job-3"


def test_stored_images_are_written_and_the_others_listed(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path / "store")
    storage.put("sha256/ab/cd/abcd.png", b"png-bytes", "image/png")
    rows = [
        {"campaign": "../spring", "job_id": 1, "variant": None, "image_uuid": "u1",
         "asset_status": "stored", "size_bytes": 9, "storage_key": "sha256/ab/cd/abcd.png"},
        {"campaign": "../spring", "job_id": 1, "variant": None, "image_uuid": "u2",
         "asset_status": "failed", "size_bytes": None, "storage_key": None},
    ]  # fmt: skip
    out = tmp_path / "out"
    written = list(write_images(rows, storage, out))
    assert [row["file"] for row in written] == ["spring/job-1/u1.png", None]
    assert all("storage_key" not in row for row in written)
    assert (out / "spring" / "job-1" / "u1.png").read_bytes() == b"png-bytes"
    assert [p.name for p in out.rglob("*") if p.is_file()] == ["u1.png"]
