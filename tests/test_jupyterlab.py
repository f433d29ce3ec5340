"""A student can open the course in JupyterLab: the server starts offline, serves the lab UI, and
runs a notebook's code in the course kernel through the server's own API."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    port, token = free_port(), "course-test"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={REPO}", "--ServerApp.open_browser=False",
         *(["--allow-root"] if os.geteuid() == 0 else [])],  # CI machines run as root
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("jupyter lab did not start within 60 s")
    yield base, token
    proc.terminate()
    proc.wait(timeout=30)


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.read()


def test_lab_serves_the_course_and_its_kernel(lab):
    base, token = lab
    status, page = get(f"{base}/lab?token={token}")
    assert status == 200 and b"JupyterLab" in page
    specs = json.loads(get(f"{base}/api/kernelspecs?token={token}")[1])
    assert "python3" in specs["kernelspecs"]
    for path in ["lectures/01_tensors.ipynb", "assignments/01_pytorch_basics/pytorch_basics.ipynb"]:
        model = json.loads(get(f"{base}/api/contents/{path}?token={token}")[1])
        assert model["type"] == "notebook" and model["content"]["cells"]
