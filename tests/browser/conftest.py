"""Browser UI tests: a JupyterLab server and a headless Chromium (Debian's, driven by selenium).

Fixtures:
- ``lab``: JupyterLab on a free port with a token, offline (no news, no update check), ``--allow-root`` when
  root, serving a temporary copy of the lectures; settings, workspaces and runtime files live in the temporary
  folder too, so nothing a developer has open is restored and nothing is written to their home. The kernels
  import ``course`` from this checkout (PYTHONPATH). ``lab.url(path)`` opens a notebook, ``lab.root`` is the
  served folder. ``start_lab(root, home, env, cwd)`` (the ``lab_server`` fixture) starts another one (the nbgrader
  tests: an instructor's in the course folder, a simulated student's with HOME set to their home).
- ``browser``: one headless Chromium for the session (``/usr/bin/chromium`` with ``/usr/bin/chromedriver``,
  from Debian's ``chromium`` and ``chromium-driver`` packages, which .ci/run installs). Without them, or
  without selenium, the browser tests are skipped and say which is missing.

Every test here is marked ``browser`` and ``slow``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("COURSE_CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL_HINT = "install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)"


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    base: str
    token: str
    root: Path
    log: Path | None = None

    def url(self, path: str) -> str:
        # ?reset: a fresh workspace, nothing restored from an earlier test
        return f"{self.base}/lab/tree/{path}?reset&token={self.token}"

    def api(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.base}/api/{path}?token={self.token}", timeout=30) as r:
            return json.loads(r.read())


def _settings(folder: Path) -> None:
    """User settings: no news fetching, no update check, no toast asking about them; no windowing."""
    notification = folder / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # every cell in the page (not only those scrolled into view), so that the tests can find the outputs
    tracker = folder / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))


@contextmanager
def start_lab(root: Path, home: Path, env: dict[str, str] | None = None, cwd: Path | None = None,
              settings: Path | None = None):
    """A JupyterLab serving ``root`` (run in ``cwd``, default ``home``; its own runtime files under ``home``);
    ``env``: the environment (default: this one, with the test settings below). Yields a ``Lab``."""
    settings = settings or home / "settings"
    _settings(settings)
    port, token = free_port(), "course-browser-test"
    if env is None:
        env = dict(
            os.environ,
            JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            JUPYTER_CONFIG_DIR=str(home / "config"),
        )
    env = dict(env, COURSE_OFFLINE="1", JUPYTERLAB_SETTINGS_DIR=str(settings),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.pop("MPLBACKEND", None)       # the kernels use the inline backend, as a student's do
    log_path = home / f"lab-{port}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        stdout=log, stderr=subprocess.STDOUT, cwd=cwd or home, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"jupyter lab did not start: {log_path.read_text()[-3000:]}")
            time.sleep(0.5)
    try:
        yield Lab(base, token, root, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def lab_server():
    """``start_lab`` for tests that need a server of their own (test modules cannot import conftest)."""
    return start_lab


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    home = tmp_path_factory.mktemp("lab")
    root = home / "served"
    shutil.copytree(REPO / "lectures", root / "lectures", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    env = dict(
        os.environ,
        COURSE_PROGRESS="1",          # the progress bars are part of what is tested
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTER_CONFIG_DIR=str(home / "config"),
    )
    with start_lab(root, home, env) as server:
        yield server


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (Path(p).is_file() and os.access(p, os.X_OK))]
    if missing:
        pytest.skip(f"browser tests need {' and '.join(missing)}: {INSTALL_HINT}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("browser tests need selenium (pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
                     "--no-first-run", "--disable-extensions",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")   # Chromium refuses to run its sandbox as root
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_script_timeout(60)
    yield driver
    driver.quit()
