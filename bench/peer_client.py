"""What a user would write instead of remixq: Runware's official Python SDK (`runware-sdk`, the
`bench` extra), its REST transport with sync delivery, every request in flight at once, the
images' results written to a file as they come.

    python -m bench.peer_client CAMPAIGN.jsonl --url http://127.0.0.1:8700/v1 --out results.jsonl

The SDK's REST transport posts to `http_base_url`, so it talks to the simulator as it would to
Runware (a Bearer key, a list of tasks, the answer in the same response). It is written as the
SDK's documentation shows it (one `Runware` client, `asyncio.gather` over `client.run`), with the
SDK's defaults: its aiohttp session keeps at most 100 connections open, so at most 100 requests
are in flight at once whatever the script gathers. Prints one JSON line: when the last result
was written (`ended_at`, time.time(), so that the caller's clock can start at the process's
launch, as remixq's starts at `remixq submit`'s), images, failures and this process's CPU
seconds, its start-up included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


async def run_all(lines: list[dict[str, Any]], url: str, out: Path) -> tuple[int, list[str]]:
    from runware import Runware  # the `bench` extra

    failures: list[str] = []
    images = 0
    async with Runware(api_key="bench-key", transport="rest", http_base_url=url) as client:

        async def one(line: dict[str, Any]) -> list[dict[str, Any]]:
            task = {**line, "taskType": "imageInference", "deliveryMethod": "sync"}
            return await client.run(task)

        with out.open("w") as sink:
            for done in asyncio.as_completed([one(line) for line in lines]):
                try:
                    results = await done
                except Exception as exc:  # noqa: BLE001 (a user's script counts its failures)
                    failures.append(repr(exc)[:200])
                    continue
                for item in results:
                    sink.write(json.dumps(item) + "\n")
                    images += 1
    return images, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer_client")
    parser.add_argument("campaign", type=Path)
    parser.add_argument("--url", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    lines = [json.loads(line) for line in args.campaign.read_text().splitlines() if line.strip()]
    started = time.monotonic()
    images, failures = asyncio.run(run_all(lines, args.url, args.out))
    ended_at = time.time()
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    summary = {
        "jobs": len(lines),
        "images": images,
        "failed": len(failures),
        "failures": failures[:3],
        "wall_s": wall,  # from asyncio.run on: the caller times from the launch
        "ended_at": ended_at,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss": usage.ru_maxrss * 1024,
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0 if not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
