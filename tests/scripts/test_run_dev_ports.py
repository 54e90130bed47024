"""`make run` binds every server's port itself and hands the socket over: launches started
together never collide, and a port that cannot be had, or a process that stops, is named."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from scripts.dev_processes import run_procfile
from scripts.run_dev import SERVERS, print_banner
from tests.support.processes import ROOT, listening_socket, run_to_exit

BIND_AND_HOLD = (
    "import json, sys; from scripts.run_dev import bind_servers; env = {}; "
    "sockets = bind_servers(env); "
    "print(json.dumps({name: s.getsockname()[1] for name, s in sockets.items()}), flush=True); "
    "sys.stdin.read()"
)


def test_launches_started_together_each_bind_their_own_ports() -> None:
    launches = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", BIND_AND_HOLD],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.endswith("_PORT") and k != "PORT"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        ports = [json.loads(launch.stdout.readline()) for launch in launches]  # type: ignore[union-attr]
        # Held while the launches run: nobody else can listen there.
        for port in ports[0].values():
            with socket.socket() as probe:
                assert probe.connect_ex(("127.0.0.1", port)) == 0
    finally:
        for launch in launches:
            launch.communicate("", timeout=10)

    every = [port for launch in ports for port in launch.values()]
    assert len(every) == 3 * len(SERVERS)
    assert len(set(every)) == len(every)  # no two servers of any launch share a port


def test_a_taken_port_that_was_asked_for_is_an_error_naming_the_process(tmp_path: Path) -> None:
    taken = listening_socket()
    port = taken.getsockname()[1]
    env = {**os.environ, "PORT": str(port), "NOTIFIER_VAR_DIR": str(tmp_path)}
    try:
        result = run_to_exit([sys.executable, "-m", "scripts.run_dev"], env)
    finally:
        taken.close()

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"make run: web: cannot listen on 127.0.0.1:{port} (Address already in use); set PORT to "
        "a free port, or leave it unset for one that is free"
    )
    assert not (tmp_path / "run.env").exists()  # it stopped before starting anything


SERVE_ONCE = (
    "python -c \"import os, socket, time; s = socket.socket(fileno=int(os.environ['WEB_FD'])); "
    "c, _ = s.accept(); c.sendall(b'served'); c.close(); time.sleep(30)\""
)


def test_processes_get_their_sockets_and_the_one_that_stops_is_named(
    tmp_path: Path, capfd: object
) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text(f"web: {SERVE_ONCE} $WEB_FD\nbroken: sleep 2; echo boom; exit 3\n")
    listening = listening_socket()
    env = {**os.environ, "WEB_FD": str(listening.fileno())}
    replies: list[bytes] = []

    def announce(alive: threading.Event) -> str | None:
        with socket.create_connection(listening.getsockname(), timeout=20) as client:
            replies.append(client.recv(100))
        return None

    try:
        status = run_procfile(procfile, env, {"web": listening}, announce)
    finally:
        listening.close()

    err = capfd.readouterr().err  # type: ignore[attr-defined]
    assert status == 1
    assert replies == [b"served"]  # from the process that inherited the socket
    assert err.strip() == (
        "make run: broken stopped (rc=3) first, so everything else was stopped; its output is "
        "above."
    )


def test_the_banner_says_how_to_reset_an_unknown_admin_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {
        "REDIS_URL": "redis://127.0.0.1:6390/0",
        "SENDGRID_API_URL": "http://127.0.0.1:8025",
        "TWILIO_API_URL": "http://127.0.0.1:8026",
        "FCM_API_URL": "http://127.0.0.1:8027",
    }
    demo = {"recipient": "demo-user", "template": "welcome", "api_key": "nk_x_y"}

    print_banner("http://127.0.0.1:8000", env, {**demo, "admin_password": ""})
    unknown = capsys.readouterr().out
    print_banner("http://127.0.0.1:8000", env, {**demo, "admin_password": "s3cret-pw"})
    known = capsys.readouterr().out

    assert (
        "admin / password unknown: set one with `.venv/bin/python manage.py changepassword admin`"
        in unknown
    )
    assert "(admin / s3cret-pw   (kept in var/admin_password))" in known


@pytest.mark.parametrize("port", ["70000", "-1", "web"])
def test_a_port_out_of_range_is_an_error_naming_the_process(tmp_path: Path, port: str) -> None:
    env = {**os.environ, "PORT": port, "NOTIFIER_VAR_DIR": str(tmp_path)}

    result = run_to_exit([sys.executable, "-m", "scripts.run_dev"], env)

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"make run: web: PORT={port} is not a port number (0-65535); set PORT to a free port, "
        "or leave it unset for one that is free"
    )


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("port", [70000, -1])
def test_listening_socket_refuses_a_port_out_of_range_and_leaks_no_socket(port: int) -> None:
    before = _open_descriptors()

    for _ in range(20):
        with pytest.raises(ValueError, match=f"port {port} is not between 0 and 65535"):
            listening_socket(port)

    assert _open_descriptors() == before
