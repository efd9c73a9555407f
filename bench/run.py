"""Benchmarks (not tests): print figures and ratios. Run with `make bench`.

Today: how fast the runbook importer parses, against plain markdown-it parsing of the
same text (the floor any Markdown-based importer pays)."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from incidents.runbook import parse_runbook  # noqa: E402
from incidents.runbook.markdown import make_markdown  # noqa: E402


def timed(fn, repeat: int = 200) -> list[float]:  # noqa: ANN001
    fn()  # warm up
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    source = (ROOT / "runbooks" / "yomira.md").read_bytes()
    text = source.decode()
    md = make_markdown()
    parse = timed(lambda: parse_runbook(source))
    floor = timed(lambda: md.parse(text))
    p50, f50 = statistics.median(parse), statistics.median(floor)
    print(
        f"runbook parse (yomira.md, {len(source)} bytes): p50 {p50 * 1000:.2f} ms, "
        f"p95 {sorted(parse)[int(len(parse) * 0.95)] * 1000:.2f} ms"
    )
    print(f"markdown-it parse alone: p50 {f50 * 1000:.2f} ms")
    print(f"ratio importer / markdown-it: {p50 / f50:.1f}x")


if __name__ == "__main__":
    main()
