"""The names the producer, the tasks and beat agree on: the queue and the registered task names.

A leaf module (it imports nothing), so that the app factory, the tasks, the periodic work and the
producer can all name a task without importing one another.
"""

from __future__ import annotations

QUEUE = "remixq"
# The periodic ticks have a queue of their own: behind a long submission backlog they would
# expire before their turn, and the relay counts the submission queue's messages as jobs.
PERIODIC_QUEUE = "remixq.periodic"
# Image downloads have a queue of their own: a submission backlog never delays the copies that
# must be made before the provider's links expire, and the relay counts only submissions.
ASSETS_QUEUE = "remixq.assets"
# Calls to a synchronous provider (Ideogram's own API) have a queue and a pool of their own:
# each holds a thread for the whole generation, and must never starve Runware's submissions.
NATIVE_QUEUE = "remixq.native"

SUBMIT_TASK = "remixq.submit_jobs"  # args: [list of job ids], submitted in one request
NATIVE_TASK = "remixq.native_remix"  # args: [job_id], one synchronous call
RELAY_TASK = "remixq.relay"
RECONCILE_TASK = "remixq.reconcile"
FAILOVER_TASK = "remixq.failover"  # failed Runware jobs re-run natively (remixq.failover)
ACCOUNT_PROBE_TASK = "remixq.account_probe"
INBOX_PRUNE_TASK = "remixq.inbox_prune"
SCHEDULES_TASK = "remixq.schedules.fire"
ASSET_SWEEP_TASK = "remixq.asset_sweep"  # hands pending assets over (under beat)
ASSET_FETCH_TASK = "remixq.fetch_assets"  # args: [token, list of image ids]
