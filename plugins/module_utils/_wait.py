# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Polling until something is done, with a deadline: PCS transitions, BOS sessions, IMS jobs."""
from __future__ import annotations

import time


class WaitTimeout(Exception):
    """The deadline passed; ``last`` is the last thing the poll saw (for the error message)."""

    def __init__(self, message, last=None):
        super(WaitTimeout, self).__init__(message)
        self.last = last


def wait_for(fetch, done, timeout, interval=2.0, what="operation", sleep=None, clock=None, max_interval=15.0):
    """Call ``fetch()`` until ``done(value)``; returns that value.

    The interval grows by half each poll up to ``max_interval`` (long BOS sessions are not
    polled every two seconds for half an hour). ``timeout`` of 0 means poll once.
    """
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    deadline = clock() + max(0.0, float(timeout))
    delay = max(0.1, float(interval))
    while True:
        value = fetch()
        if done(value):
            return value
        remaining = deadline - clock()
        if remaining <= 0:
            raise WaitTimeout("%s did not finish within %ss" % (what, _fmt(timeout)), last=value)
        sleep(min(delay, remaining))
        delay = min(max_interval, delay * 1.5)


def _fmt(seconds):
    seconds = float(seconds)
    return str(int(seconds)) if seconds == int(seconds) else str(seconds)
