"""`python -m sandbox [--root DIR] start|stop|status|env|inject NAME [k=v...]|heal NAME|heal-all`

By hand, outside the console: start the stack, print the TARGET_* to export
(`eval "$(python -m sandbox env)"`), break or heal it."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from . import faults
from .stack import Stack


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox")
    parser.add_argument("--root", type=Path, default=Path("var/sandbox"))
    parser.add_argument("verb", choices=["start", "stop", "status", "env", "inject",
                                         "heal", "heal-all"])  # fmt: skip
    parser.add_argument("name", nargs="?")
    parser.add_argument("params", nargs="*", help="key=value")
    args = parser.parse_args()
    stack = Stack(args.root)
    if args.verb == "start":
        stack.start()
    elif args.verb == "stop":
        stack.stop()
    elif args.verb == "env":
        for key, value in stack.env().items():
            print(f"export {key}={shlex.quote(value)}")
        return
    elif args.verb in {"inject", "heal"}:
        if args.name not in faults.FAULTS:
            parser.error(f"name one of: {', '.join(sorted(faults.FAULTS))}")
        params = dict(p.split("=", 1) for p in args.params if "=" in p)
        verb = faults.inject if args.verb == "inject" else faults.heal
        print(verb(stack, args.name, **{k: _value(v) for k, v in params.items()}))
    elif args.verb == "heal-all":
        print("\n".join(faults.ALL_HEAL(stack)))
    for name, up in stack.running().items():
        print(f"{name:9} {'running' if up else 'stopped'}")
    if active := faults.active(stack):
        print("faults:", ", ".join(sorted(active)))


if __name__ == "__main__":
    main()
