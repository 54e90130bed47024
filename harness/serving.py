"""The production serving arrangement, started for tests and the bench: gunicorn (the Procfile's
`web`: REST API), uvicorn (`ws`: /ws/) and nginx routing by path in front of both, with the
committed config (docker/nginx/notifier.conf.template) rendered for local ports.

`python -m harness.serving --check` renders that config and runs `nginx -t` on it (make lint).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from harness.processes import BIN, LOG_DIR, ROOT, Proc, free_port, wait_port

TEMPLATE = ROOT / "docker" / "nginx" / "notifier.conf.template"
_VARIABLE = re.compile(r"\$\{(NOTIFIER_[A-Z_]+)\}")


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def render(values: dict[str, str]) -> str:
    """The template with its NOTIFIER_* variables filled in (what envsubst does in the image);
    every other `$name` is nginx's own and stays."""
    return _VARIABLE.sub(lambda m: values[m.group(1)], TEMPLATE.read_text())


def write_config(workdir: Path, *, listen: int, rest: str, ws: str) -> Path:
    """A complete nginx.conf in `workdir` (pid, temp files and logs there too) around the
    rendered server config; returns its path."""
    site = workdir / "notifier.conf"
    site.write_text(
        render({"NOTIFIER_LISTEN": f"127.0.0.1:{listen}", "NOTIFIER_REST_UPSTREAM": rest,
                "NOTIFIER_WS_UPSTREAM": ws})
    )  # fmt: skip
    main = workdir / "nginx.conf"
    main.write_text(
        f"""worker_processes 1;
pid {workdir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    include {site};
}}
"""
    )
    return main


def healthy(url: str) -> bool:
    """`GET /healthz` answers 200."""
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


class Gunicorn(Proc):
    """The Procfile's web process: `gunicorn -c config/gunicorn.py config.wsgi:application`."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        workers: int,
        threads: int,
        name: str = "gunicorn",
        log_dir: Path = LOG_DIR,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **env,
            "WEB_HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            "WEB_THREADS": str(threads),
        }
        argv = [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "config.wsgi:application"]
        super().__init__(name, argv, env, log_dir=log_dir, unique_log=True)
        wait_port(self.port, timeout=30)
        self.wait_started(lambda: healthy(self.url), "gunicorn", timeout=60)


class Uvicorn(Proc):
    """The Procfile's ws process: `uvicorn config.asgi:application` (it serves /ws/)."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        workers: int = 1,
        name: str = "uvicorn",
        log_dir: Path = LOG_DIR,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [str(BIN / "uvicorn"), "config.asgi:application", "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", str(workers), "--no-access-log",
                "--timeout-graceful-shutdown", "10"]  # fmt: skip
        super().__init__(name, argv, env, log_dir=log_dir, unique_log=True)
        wait_port(self.port, timeout=30)
        self.wait_started(lambda: healthy(self.url), "uvicorn", timeout=60)


class Nginx(Proc):
    """nginx with the committed config, on a free port, in front of `rest` and `ws`."""

    def __init__(self, *, rest: str, ws: str, name: str = "nginx", log_dir: Path = LOG_DIR) -> None:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx-light)")
        self.workdir = Path(tempfile.mkdtemp(prefix="notifier-nginx-"))
        self.workdir.chmod(0o755)  # nginx's workers (nobody, when started as root) write here
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        conf = write_config(self.workdir, listen=self.port, rest=rest, ws=ws)
        argv = [binary, "-p", str(self.workdir), "-c", str(conf), "-g", "daemon off;"]
        super().__init__(name, argv, dict(os.environ), log_dir=log_dir, unique_log=True)
        wait_port(self.port, timeout=15)

    def stop(self, timeout: float = 20.0) -> None:
        super().stop(timeout)
        shutil.rmtree(self.workdir, ignore_errors=True)


def check() -> int:
    """`nginx -t` on the committed config (local upstreams: compose's names do not resolve
    here). Returns nginx's exit status; 0 with a note when nginx is not installed."""
    binary = nginx_binary()
    if binary is None:
        print("nginx not installed (apt-get install nginx-light): proxy config NOT checked")
        return 0
    with tempfile.TemporaryDirectory(prefix="notifier-nginx-check-") as tmp:
        conf = write_config(
            Path(tmp), listen=free_port(), rest="127.0.0.1:8000", ws="127.0.0.1:8001"
        )
        result = subprocess.run(  # noqa: S603 - nginx, found above
            [binary, "-t", "-p", tmp, "-c", str(conf), "-g", "daemon off;"],
            capture_output=True,
            text=True,
            check=False,
        )
    print((result.stdout + result.stderr).strip())
    return result.returncode


if __name__ == "__main__":
    if sys.argv[1:] != ["--check"]:
        sys.exit("usage: python -m harness.serving --check")
    sys.exit(check())
