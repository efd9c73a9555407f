"""Print the mutation score per module from mutmut's results (`make mutate`).

Reads the `.meta` files mutmut 3 writes under `mutants/`, keeps the mutants whose
names match the patterns given (the safety-critical functions `make mutate` runs), and
prints killed / survived / no test per module, then every survivor by name so that each
one can be killed with a test or justified (see the README's "Mutation testing")."""

from __future__ import annotations

import fnmatch
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from mutmut.stats import status_by_exit_code


def verdicts(patterns: list[str]) -> dict[str, str]:
    """{mutant name: status} for the mutants matching the patterns."""
    found = {}
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        for name, code in codes.items():
            if any(fnmatch.fnmatchcase(name, p) for p in patterns):
                found[name] = status_by_exit_code.get(code, "not checked")
    return found


def survivors(patterns: list[str]) -> list[str]:
    return [
        name
        for name, status in verdicts(patterns).items()
        if status in ("survived", "no tests", "not checked")
    ]


def main(patterns: list[str]) -> int:
    per_module: dict[str, Counter] = defaultdict(Counter)
    left: list[str] = []
    for name, status in verdicts(patterns).items():
        module = name.split(".x_", 1)[0].split(".xǁ", 1)[0]
        per_module[module][status] += 1
        if status in ("survived", "no tests"):
            left.append(f"{name}: {status}")
    print(
        f"{'module':<28} {'mutants':>7} {'killed':>7} {'survived':>8} {'no test':>7} score"
    )
    for module, c in sorted(per_module.items()):
        total = sum(c.values())
        killed = c["killed"] + c["timeout"]
        print(
            f"{module:<28} {total:>7} {killed:>7} {c['survived']:>8} "
            f"{c['no tests']:>7} {100 * killed / total:5.1f}%"
        )
    for line in left:
        print("  ", line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["*"]))
