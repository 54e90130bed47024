"""Files of pinned npm packages for the browser tests (React, Vue): fetched once with `npm pack`
(the npm registry checks each tarball's integrity) into var/npm/, read from the tarballs.

The packages are test fixtures, not part of the service: nothing of them is committed or
served by it."""

from __future__ import annotations

import shutil
import subprocess
import tarfile

from tests.support.processes import ROOT

CACHE = ROOT / "var" / "npm"


def npm_file(package: str, version: str, path: str) -> bytes:
    """`path` inside the package's tarball (`package/` is its root). Fails loudly when npm is
    missing or the registry cannot be reached: the test needs these files."""
    name = package.replace("/", "-").lstrip("@")
    tarball = CACHE / f"{name}-{version}.tgz"
    if not tarball.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to fetch the browser tests' front-end packages"
        CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(  # noqa: S603 - npm and pinned package names of ours
            [npm, "pack", f"{package}@{version}", "--pack-destination", str(CACHE), "--silent"],
            cwd=CACHE,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert tarball.exists(), f"npm pack wrote no {tarball.name}"
    with tarfile.open(tarball) as archive:
        member = archive.extractfile(f"package/{path}")
        assert member is not None, f"{package}@{version} has no {path}"
        return member.read()
