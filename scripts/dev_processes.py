"""`make run`'s processes (Procfile.dev) under honcho: each command gets the listening sockets
it names (`$WEB_FD`, ...), and when one process stops, the message names it."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from honcho.environ import parse_procfile
from honcho.manager import SYSTEM_PRINTER_NAME, Manager
from honcho.printer import Message, Printer
from honcho.process import Popen

ROOT = Path(__file__).resolve().parent.parent


class _WatchingPrinter(Printer):  # type: ignore[misc]  # honcho has no type hints
    """honcho's printer, remembering the first process to stop and whether Ctrl-C (or a
    SIGTERM) stopped them all."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)
        self.first_stopped = ""
        self.signalled = False

    def write(self, message: Message) -> None:
        if message.name == SYSTEM_PRINTER_NAME and isinstance(message.data, str):
            if message.data.endswith(" received\n"):
                self.signalled = True
            elif " stopped (rc=" in message.data and not self.first_stopped:
                self.first_stopped = message.data.strip()
        super().write(message)


def run_procfile(
    procfile: Path,
    env: dict[str, str],
    sockets: dict[str, socket.socket],
    announce: Callable[[threading.Event], str | None],
) -> int:
    """Run every process of `procfile` until one stops or Ctrl-C; `announce(alive)` runs beside
    them (the banner) and returns a problem that stops them all, or None. The exit status:
    0 after Ctrl-C, else 1 with a line naming what failed."""
    printer = _WatchingPrinter()
    manager = Manager(printer=printer)
    descriptors = {f"${name}": int(value) for name, value in env.items() if name.endswith("_FD")}
    for name, command in parse_procfile(procfile.read_text()).processes.items():
        passed = tuple(fd for variable, fd in descriptors.items() if variable in command)
        process: Any = manager.add_process(name, command, env=env, cwd=str(ROOT))
        # honcho closes every other descriptor in its children (close_fds): hand over the
        # sockets this command serves on (`_child_ctor` is honcho 2.0.0's, pinned).
        process._child_ctor = partial(Popen, pass_fds=passed)
    alive = threading.Event()
    alive.set()
    problems: list[str] = []

    def watch() -> None:
        problem = announce(alive)
        if problem:
            problems.append(problem)
            manager.terminate()

    threading.Thread(target=watch, daemon=True).start()
    manager.loop()
    alive.clear()
    if problems:
        print(f"make run: {problems[0]}", file=sys.stderr)
        return 1
    if printer.signalled:
        return 0
    print(
        f"make run: {printer.first_stopped or 'a process stopped'} first, so everything else "
        "was stopped; its output is above.",
        file=sys.stderr,
    )
    return 1
