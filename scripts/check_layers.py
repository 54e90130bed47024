"""Imports flow one way, config -> apps -> notifier.

`notifier` imports neither `apps` nor `config`."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"notifier": ("apps", "config"), "apps": ("config.settings",)}


def violations() -> list[str]:
    found = []
    for package, banned in FORBIDDEN.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                found.extend(
                    f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
                    for name in names
                    if any(name == b or name.startswith(b + ".") for b in banned)
                )
    return found


def main() -> int:
    problems = violations()
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print("layers ok: notifier imports neither apps nor config")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
