"""Waiting for a state, never for a fixed time: poll a condition until it holds or a generous bound runs out."""

from __future__ import annotations

import time

import pytest


def wait_until(condition, what: str, timeout: float = 60.0, every: float = 0.02):
    """Poll `condition` until it returns something truthy and return that; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)
