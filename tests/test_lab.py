"""`make lab` as a student uses it: JupyterLab serves notebooks/, and its kernel is the course's.

The test starts `make lab` headless on a free port of 127.0.0.1 with a random token, lists the
notebooks through the REST API, starts a kernel through it, asks the kernel where it imports
phys555_cl from and which Python it is, and shuts everything down. A kernel that runs a system
Python (a stray user-level kernelspec, a jupyter from another environment) fails it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from conftest import PortTaken, on_a_free_port

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
START_TIMEOUT = 180  # s: JupyterLab on a busy 2-core machine
REPLY_TIMEOUT = 120  # s: a fresh kernel importing torch

pytestmark = [
    pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed"),
    pytest.mark.skipif(Path(sys.prefix).resolve() != VENV.resolve(),
                       reason="make lab runs the course environment .venv/; these tests run "
                              "in another one (conda route?)"),
]


class Lab:
    """A running `make lab` on ``port`` and a small client of its REST API."""

    def __init__(self, tmp: Path, port: int):
        self.port, self.token = port, secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        args = (f"--no-browser --ip=127.0.0.1 --port={self.port} --port-retries=0 "
                f"--IdentityProvider.token={self.token}")
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # a container: Jupyter refuses root
            args += " --allow-root"
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
               "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces")}
        env.pop("PHYS555_FAST", None)  # as a student starts it
        self.log = open(tmp / "lab.log", "w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"],
                                     cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            text = reply.read().decode()
        return json.loads(text) if text else None

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if "already in use" in self.output():  # taken since _free_port: try another
                    raise PortTaken(f"port {self.port}")
                pytest.fail(f"make lab exited with {self.proc.returncode} before serving:\n"
                            f"{self.output()}")
            try:
                self.request("GET", "/api/status", timeout=5)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        pytest.fail(f"JupyterLab did not answer within {START_TIMEOUT} s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.request("POST", "/api/shutdown", timeout=10)
                self.proc.wait(timeout=30)
            except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:  # our own process group: make, jupyter, kernels
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    def start(port):
        server = Lab(tmp_path_factory.mktemp("lab"), port)
        try:
            server.wait_ready()
        except BaseException:
            server.stop()
            raise
        return server

    server = on_a_free_port(start)
    try:
        yield server
    finally:
        server.stop()


def _execute(lab: Lab, kernel_id: str, code: str) -> str:
    """Run ``code`` in the kernel over its websocket; return what it printed."""
    import websocket  # websocket-client, a dependency of jupyter_server

    ws = websocket.create_connection(
        f"ws://127.0.0.1:{lab.port}/api/kernels/{kernel_id}/channels",
        header=[f"Authorization: token {lab.token}"], timeout=REPLY_TIMEOUT)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False}}))
        printed, deadline = [], time.monotonic() + REPLY_TIMEOUT
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream":
                printed.append(msg["content"]["text"])
            elif kind == "error":
                pytest.fail("the kernel raised: " + "\n".join(msg["content"]["traceback"]))
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(printed)
        pytest.fail(f"the kernel did not finish within {REPLY_TIMEOUT} s")
    finally:
        ws.close()


def test_make_lab_serves_the_student_notebooks(lab):
    listing = lab.request("GET", "/api/contents/")
    served = {item["name"] for item in listing["content"] if item["type"] == "notebook"}
    folders = {item["name"] for item in listing["content"] if item["type"] == "directory"}
    assert "source" in folders, f"JupyterLab serves another folder than notebooks/: {folders}"
    expected = {p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert expected and expected <= served, f"notebooks/ holds {sorted(expected)}, " \
                                            f"JupyterLab serves {sorted(served)}"
    first = sorted(expected)[0]
    notebook = lab.request("GET", f"/api/contents/{first}")
    assert notebook["type"] == "notebook" and notebook["content"]["cells"]


def test_make_lab_kernel_runs_the_course_environment(lab):
    # as JupyterLab does when a student opens a notebook: a session for that path
    first = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))[0]
    session = lab.request("POST", "/api/sessions", {"path": first, "type": "notebook",
                                                    "name": first, "kernel": {"name": "python3"}})
    kernel_id = session["kernel"]["id"]
    try:
        printed = _execute(lab, kernel_id, (
            "import json, os, sys\nimport phys555_cl\n"
            "print(json.dumps({'prefix': sys.prefix, 'package': phys555_cl.__file__, "
            "'cwd': os.getcwd()}))"))
    finally:
        lab.request("DELETE", f"/api/sessions/{session['id']}")
    where = json.loads(printed.strip().splitlines()[-1])
    assert Path(where["prefix"]).resolve() == VENV.resolve(), (
        f"the notebook kernel runs {where['prefix']}, not the course environment {VENV}: "
        f"a kernelspec outside .venv/ shadows it (`jupyter kernelspec list`)")
    assert Path(where["package"]).resolve().is_relative_to(ROOT / "phys555_cl")
    assert Path(where["cwd"]).resolve() == (ROOT / "notebooks").resolve()
    assert kernel_id not in {k["id"] for k in lab.request("GET", "/api/kernels")}
