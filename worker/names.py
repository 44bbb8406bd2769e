"""The names the producer, the tasks and beat agree on: the queue and the registered task names.

A leaf module (it imports nothing), so that the app factory, the tasks, the periodic work and the
producer can all name a task without importing one another.
"""

from __future__ import annotations

QUEUE = "remixq"

SUBMIT_TASK = "remixq.submit_jobs"  # args: [list of job ids], submitted in one request
RELAY_TASK = "remixq.relay"
RECONCILE_TASK = "remixq.reconcile"
ACCOUNT_PROBE_TASK = "remixq.account_probe"
