"""Waiting for a page that re-renders, shared by the browser tests."""
from __future__ import annotations

import time


def poll(check, timeout: float, what: str, interval: float = 0.5):
    """check() until it returns something truthy; its last value (or exception) in the message otherwise."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # the page is re-rendering: stale elements, missing frames
            last = exc
        time.sleep(interval)
    raise AssertionError(f"{what}: not so after {timeout:.0f} s (last: {last!r})")
