"""nbgrader's Execute, made to survive what student notebooks do to a kernel.

:class:`GuardedExecute` replaces ``nbgrader.preprocessors.Execute`` in the
autograde steps (it reads the same ``c.Execute.*`` settings). Before the first
cell it arms :class:`autograder.sandbox.Guard` and a memory limit inside the
kernel. When the kernel dies (``os._exit``, a segfault, the out-of-memory
killer) or stops answering after a time-out, nbgrader would drop the whole
submission; here the cell gets an error saying what happened, the cells after
it are marked as not run, and grading goes on: the hidden checks run out of
the kernel, so the credit they find is kept.

Two kinds of cells are not run in the kernel while grading: test cells the hidden checks grade (their
output is replaced by the checks' report anyway) and cells tagged ``demo`` (``skip_tags``):
demonstrations no grade depends on. The kernel runs the setup, answer and other cells, whose outputs
and guard log the feedback and the tampering checks use.
"""
from __future__ import annotations

import os
import tempfile

from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import List, Unicode

from autograder import isolation
from autograder.kernel import SandboxedKernelManager
from autograder.preprocessors import CHECKED_CELLS, KERNEL_LOG, HiddenChecks, add_note, guard_spec
from autograder.sandbox import Guard, kernel_preamble

SKIPPED = "(a demonstration: not run while grading; no grade depends on it. Run it yourself to see it.)\n"
CHECKED_ELSEWHERE = "(graded by the hidden checks, outside this kernel)\n"
RESPONSIVE_WAIT = 10.0  # seconds a kernel gets to answer after an interrupted time-out


def _error(ename: str, text: str):
    return new_output("error", ename=ename, evalue=text, traceback=[f"{ename}: {text}"])


class GuardedExecute(Execute):
    """Execute, with a guarded kernel and a graded notebook even when the kernel dies."""

    skip_tags = List(Unicode(), default_value=["demo"], help=(
        "Code cells with any of these tags are not executed while autograding: demonstrations (training runs, "
        "plots, searches) that no grade depends on. Their output says so. The hidden checks run the graded code "
        "themselves, so skipping them costs no credit and saves the kernel their time.")).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._stopped = None  # why the remaining cells are not run
        self._armed = False
        # The kernel runs in a sandbox (autograder.kernel) unless the unsafe mode was chosen; raises
        # isolation.SandboxUnavailable (with how to install bubblewrap) when it cannot.
        self._sandboxed = isolation.required() and km is None
        if self._sandboxed:
            self.kernel_manager_class = SandboxedKernelManager
        self._managers: list = []
        fd, self._log = tempfile.mkstemp(prefix="autograder-kernel-", suffix=".log")  # the grader's copy
        os.close(fd)
        resources[KERNEL_LOG] = self._log
        spec = guard_spec(self.config, resources)
        spec["protected"].append(self._log)
        self._guard = Guard(protected=tuple(spec["protected"]), readonly=tuple(spec["readonly"]),
                            writable=tuple(spec["writable"]), modules=("autograder",), log_path=self._log)
        self._memory_limit = HiddenChecks(config=self.config).memory_limit_mb
        try:
            return super().preprocess(nb, resources, km)
        finally:
            self._collect_sandboxes()

    def create_kernel_manager(self):
        manager = super().create_kernel_manager()
        self._managers.append(manager)
        return manager

    def _collect_sandboxes(self) -> None:
        """Keep what the sandboxed kernels' guards logged (in the grader's own file), then remove their folders
        and kill whatever they left running: nothing of the kernel outlives its grading."""
        with open(self._log, "a") as log:
            for manager in self._managers:
                if not isinstance(manager, SandboxedKernelManager):
                    continue
                try:
                    log.write(open(manager.guard_log, errors="replace").read(1 << 20))
                except OSError:
                    pass
                manager.cleanup_sandbox()

    def _arm(self) -> None:
        """Run the guard's preamble in the fresh kernel (silently: it leaves no trace in the notebook)."""
        self._armed = True
        if isinstance(self.km, SandboxedKernelManager):
            # Inside the sandbox the guard logs to the kernel's own folder (no other submission's code can reach
            # it); its own scratch copy of the submission's folder is where it may write.
            self._guard.log_path = self.km.guard_log
            self._guard.writable = tuple(self._guard.writable) + (self.km.cwd_inside,)
        msg_id = self.kc.execute(kernel_preamble(self._guard, self._memory_limit), silent=True, store_history=False)
        reply = run_sync(self._wait_reply)(msg_id, 60.0)
        if reply is None or reply["content"]["status"] != "ok":
            detail = "no answer" if reply is None else reply["content"].get("evalue", "")
            self.log.warning("Could not guard the kernel (%s); grading goes on without the guard", detail)

    async def _wait_reply(self, msg_id: str, timeout: float):
        """The shell reply to ``msg_id`` within ``timeout`` seconds, or None."""
        import asyncio
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = await asyncio.wait_for(self.kc.shell_channel.get_msg(), timeout=left)
            except (asyncio.TimeoutError, TimeoutError):
                return None
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return msg

    def _responsive(self) -> bool:
        try:
            msg_id = self.kc.kernel_info()
            return run_sync(self._wait_reply)(msg_id, RESPONSIVE_WAIT) is not None
        except Exception:
            return False

    def _stop(self, cell, index: int, why: str, ename: str) -> None:
        label = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"
        self._stopped = f"not run: the kernel {why} in {label}"
        cell.outputs.append(_error(ename, f"The kernel {why} while running this cell; the cells after it were "
                                          f"not run in the notebook. The hidden checks ran your answers "
                                          f"separately, so the credit they found is kept."))
        add_note(self.nb, f"The kernel {why} in {label} (cell {index + 1}); the cells after it were not run "
                          f"in the notebook.")
        try:
            self.km.kill_kernel() if hasattr(self.km, "kill_kernel") else None
        except Exception:
            pass
        try:
            run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:
            pass

    def preprocess_cell(self, cell, resources, index):
        if self._stopped:
            if cell.cell_type == "code":
                cell.outputs = [new_output("stream", name="stdout", text=f"({self._stopped})\n")]
            return cell, resources
        if cell.cell_type == "code" and set(cell.metadata.get("tags", [])) & set(self.skip_tags):
            cell.outputs = [new_output("stream", name="stdout", text=SKIPPED)]
            cell.execution_count = None
            return cell, resources
        if cell.metadata.get("nbgrader", {}).get("grade_id") in resources.get(CHECKED_CELLS, ()):
            # A test cell the hidden checks grade: RunHiddenChecks replaces its output with their report, and
            # its public checks would only repeat, in the kernel, part of what they run outside it.
            cell.outputs = [new_output("stream", name="stdout", text=CHECKED_ELSEWHERE)]
            cell.execution_count = None
            return cell, resources
        if not self._armed:
            self._arm()
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._stop(cell, index, "died (os._exit, a crash, or out of memory)", "DeadKernelError")
            return cell, resources
        except CellTimeoutError:
            self._stop(cell, index, f"stopped answering after the {self.timeout} s limit", "CellTimeoutError")
            return cell, resources
        if cell.cell_type == "code" and any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
            label = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"
            if self._responsive():
                add_note(self.nb, f"{label} (cell {index + 1}) ran past the {self.timeout} s limit and was "
                                  f"interrupted.")
            else:
                self._stop(cell, index, f"did not stop after the {self.timeout} s limit", "CellTimeoutError")
        return cell, resources
