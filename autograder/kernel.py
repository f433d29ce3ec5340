"""The student's kernel, started inside the sandbox (:mod:`autograder.isolation`) while it is graded.

A kernel normally talks to its client over TCP on localhost; inside the sandbox it has its own
network namespace, so it cannot reach (nor be reached on) the grader's loopback. It talks over
Unix sockets instead (Jupyter's ``ipc`` transport), in a private folder that only it and the
grader share. The kernel's working folder is a scratch copy of the submission's folder, mounted
where that folder is: what it writes there is thrown away with the sandbox (it never reaches the feedback, the gradebook or the
next submission). Interrupts go over the control channel (``interrupt_mode = "message"``): the
grader cannot signal a process inside another pid namespace by its pid, and does not need to.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from jupyter_client import AsyncKernelManager

from autograder.isolation import Sandbox, sandbox_env


def _copy_folder(source: str, target: Path) -> None:
    """Copy the submission's folder without following links (a link is copied as a link: inside the sandbox it
    points at nothing the kernel can reach) and without FIFOs or devices."""
    def ignore(folder, names):
        skipped = []
        for name in names:
            path = os.path.join(folder, name)
            if not os.path.islink(path) and not (os.path.isdir(path) or os.path.isfile(path)):
                skipped.append(name)  # FIFOs, sockets, devices: reading one could block or reach elsewhere
        return skipped

    shutil.copytree(source, target, symlinks=True, ignore=ignore, dirs_exist_ok=True)


class SandboxedKernelManager(AsyncKernelManager):
    """An AsyncKernelManager whose kernel runs in a sandbox and talks over Unix sockets in its own folder.

    :attr:`folder` holds the connection file, the sockets, the guard's log (``guard.log``) and the
    scratch copy of the working folder (``work/``); :meth:`cleanup_sandbox` removes it all.
    """

    def __init__(self, **kwargs):
        folder = Path(tempfile.mkdtemp(prefix="autograder-kernel-"))
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", str(folder / "k"))
        kwargs.setdefault("connection_file", str(folder / "kernel.json"))
        super().__init__(**kwargs)
        self.folder = folder
        self.work = folder / "work"
        self.work.mkdir()
        self.sandbox: Sandbox | None = None
        self.cwd_inside = str(self.work)  # the kernel's working folder, as it sees it

    @property
    def guard_log(self) -> str:
        return str(self.folder / "guard.log")

    async def _async_pre_start_kernel(self, **kw):
        cwd = kw.pop("cwd", None)
        if cwd and os.path.isdir(cwd):
            _copy_folder(cwd, self.work)
        # The copy appears where the submission's folder is, so paths the student's code builds (relative or
        # from os.getcwd()) name the grader's real files: the guard, as a second layer, reports reaching for them.
        inside = os.path.abspath(cwd) if cwd and os.path.isdir(cwd) else str(self.work)
        kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
        self.kernel_spec.interrupt_mode = "message"
        Path(self.guard_log).touch()
        binds = [(str(self.work), inside)] if inside != str(self.work) else []
        self.sandbox = Sandbox(writable=[str(self.folder)], binds=binds, cwd=inside)
        self.cwd_inside = inside
        kw["env"] = sandbox_env(kw.get("env") or dict(os.environ))
        kw["cwd"] = str(self.folder)
        # Inside its pid namespace the kernel's parent is the sandbox's init (pid 1), which ipykernel's parent
        # poller takes for "the client is gone"; bwrap's --die-with-parent ends the kernel with the grader instead.
        return self.sandbox.command([*kernel_cmd, "--IPKernelApp.parent_handle=1"]), kw

    def cleanup_sandbox(self) -> None:
        """Kill anything the kernel left running and remove its folder (call after the kernel is shut down)."""
        if self.sandbox is not None:
            self.sandbox.cleanup()
        shutil.rmtree(self.folder, ignore_errors=True)
