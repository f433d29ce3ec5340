"""autograder.sandbox: the audit-hook guard and the integrity snapshot.

An audit hook cannot be removed, so each guard test runs in a fresh interpreter.
"Student" code is code compiled under a cell's file name, as the grader does.
"""
import json
import subprocess
import sys
import textwrap

import pytest


def run(script: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


GUARDED = """
import json, os, sys, tempfile
from autograder.sandbox import Guard
root = tempfile.mkdtemp()
secret, own, other = (os.path.join(root, d) for d in ("secret", "own", "other"))
for d in (secret, own, other):
    os.makedirs(d)
open(os.path.join(secret, "answers.py"), "w").write("x = 1")
guard = Guard(protected=(secret,), readonly=(root,), writable=(own,), modules=("json",)).arm()
def student(source):
    try:
        exec(compile(source, "<cell 3 (sgd)>", "exec"), {"root": root, "secret": secret, "own": own, "other": other})
        return "ran"
    except PermissionError as exc:
        return str(exc)
"""


def test_guard_blocks_the_graders_files_and_other_folders_but_not_the_students_own():
    out = run(GUARDED + """
results = {
    "read_secret": student("open(secret + '/answers.py').read()"),
    "write_own": student("open(own + '/notes.txt', 'w').write('hi')"),
    "write_other": student("open(other + '/x.txt', 'w').write('hi')"),
    "delete_other": student("import os; os.remove(secret + '/answers.py')"),
    "run_program": student("import subprocess; subprocess.run(['true'])"),
    "linecache": student("import linecache; linecache.getlines(secret + '/answers.py')"),
    "grader_reads_secret": open(secret + "/answers.py").read(),
}
print(json.dumps({"results": results, "violations": guard.violations}))
""")
    r = out["results"]
    assert r["write_own"] == "ran" and r["grader_reads_secret"] == "x = 1"
    assert "reading" in r["read_secret"] and "not allowed while grading" in r["read_secret"]
    assert "writing to" in r["write_other"] and "only your own folder" in r["write_other"]
    assert "changing" in r["delete_other"]
    assert "starting programs" in r["run_program"]
    assert any("in your cell 3 (sgd), line 1" in v for v in out["violations"])
    assert sum("answers.py" in v and "reading" in v for v in out["violations"]) == 2  # open() and linecache
    assert not any("programs" in v for v in out["violations"])  # refused, not counted as tampering


def test_guard_reports_frame_inspection_and_gc_from_student_code_only():
    out = run(GUARDED + """
import inspect, collections
inspect.currentframe()  # the grader's own code: fine
results = {
    "getframe": student("import sys; sys._getframe(0).f_globals"),
    "inspect": student("import inspect; inspect.currentframe().f_back"),
    "namedtuple": student("import collections; collections.namedtuple('P', 'x y')"),
    "gc": student("import gc; gc.get_objects()"),
}
print(json.dumps({"results": results, "violations": guard.violations}))
""")
    r, v = out["results"], out["violations"]
    assert r["getframe"] == "ran" and r["namedtuple"] == "ran"  # reported, not blocked
    assert "gc.get_objects" in r["gc"]
    assert sum("inspecting the call stack" in x for x in v) == 2, v


def test_snapshot_finds_monkeypatching_but_not_torchs_own_wrappers():
    out = run("""
import json, builtins, torch
from autograder.sandbox import Snapshot
snap = Snapshot()
clean = snap.changes()
import torch._dynamo  # wraps torch.manual_seed in PyTorch's own code
after_dynamo = snap.changes()
torch.allclose = lambda *a, **k: True
torch.Tensor.__sub__ = lambda a, b: a
builtins.AssertionError = ValueError
print(json.dumps({"clean": clean, "after_dynamo": after_dynamo, "patched": snap.changes()}))
""")
    assert out["clean"] == [] and out["after_dynamo"] == []
    assert {"torch.allclose", "torch.Tensor.__sub__", "builtins.AssertionError"} <= set(out["patched"])


def test_snapshot_watches_torch_optim_and_the_course_library_but_not_default_dtype_or_device():
    out = run("""
import json, torch
from autograder.sandbox import Snapshot
snap = Snapshot()  # imports course itself: watched even when only student code imports it
import course
torch.set_default_dtype(torch.float64)  # rebinds torch.Storage (torch's own C code)
torch.set_default_device("meta")
torch.set_default_device(None)
p = torch.nn.Parameter(torch.zeros(2))
torch.optim.SGD([p], lr=0.1).step()  # the first optimizer of a class wraps its step (PyTorch's own code)
course.RuleOptimizer([p], lambda param, grad, state, *, lr: None, lr=0.1).step()
used = snap.changes()
torch.set_default_dtype(torch.float32)
torch.optim.SGD.step = lambda self, closure=None: None
course.RuleOptimizer.step = lambda self, closure=None: None
course.to_tensors = lambda *a, **k: None
torch.Storage = dict
print(json.dumps({"used": used, "patched": snap.changes()}))
""")
    assert out["used"] == []
    assert {"torch.optim.sgd.SGD.step", "course.optim.RuleOptimizer.step", "course.to_tensors",
            "torch.Storage"} <= set(out["patched"])
