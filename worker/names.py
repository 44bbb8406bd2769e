"""The names the producer, the tasks and beat agree on: the queue and the registered task names.

A leaf module (it imports nothing), so that the app factory, the tasks, the periodic work and the
producer can all name a task without importing one another.
"""

from __future__ import annotations

QUEUE = "remixq"
# The periodic ticks have a queue of their own: behind a long submission backlog they would
# expire before their turn, and the relay counts the submission queue's messages as jobs.
PERIODIC_QUEUE = "remixq.periodic"

SUBMIT_TASK = "remixq.submit_jobs"  # args: [list of job ids], submitted in one request
RELAY_TASK = "remixq.relay"
RECONCILE_TASK = "remixq.reconcile"
ACCOUNT_PROBE_TASK = "remixq.account_probe"
INBOX_PRUNE_TASK = "remixq.inbox_prune"
SCHEDULES_TASK = "remixq.schedules.fire"
