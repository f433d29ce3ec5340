"""autograder.plugin: tracebacks cut before they are formatted."""
import sys
import time
import traceback

from autograder.plugin import TRACEBACK_KEEP, cut_traceback


def _down(n):
    return _down(n - 1) if n else 1 / 0


def test_a_deep_traceback_keeps_its_outer_and_inner_frames():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(200_000)
    try:
        try:
            _down(100_000)
        except ZeroDivisionError as exc:
            caught = exc
    finally:
        sys.setrecursionlimit(old)
    started = time.perf_counter()
    dropped = cut_traceback(caught)
    assert time.perf_counter() - started < 5
    frames = traceback.extract_tb(caught.__traceback__)
    assert len(frames) == 2 * TRACEBACK_KEEP and dropped == 100_002 - 2 * TRACEBACK_KEEP
    assert frames[0].name == "test_a_deep_traceback_keeps_its_outer_and_inner_frames"
    assert frames[-1].name == "_down" and frames[-1].line.endswith("1 / 0")
    assert cut_traceback(caught) == 0  # already short


def test_a_short_traceback_and_its_context_are_left_alone():
    try:
        try:
            _down(3)
        except ZeroDivisionError:
            raise ValueError("while handling")
    except ValueError as exc:
        caught = exc
    before = len(traceback.extract_tb(caught.__context__.__traceback__))
    assert cut_traceback(caught) == 0
    assert len(traceback.extract_tb(caught.__context__.__traceback__)) == before
