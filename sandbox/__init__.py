"""Yomira in a box: a simulated Yomira stack for `make run` and drills (issue 12).

Plain Python (no Django): each part is its own process, so that an outage can be
real. Never on in production (settings refuse SANDBOX without DEBUG).
"""
