"""The module-level Celery app that Celery's own tools attach to:

    celery -A worker.celery_app inspect active      # what each worker runs now
    celery -A worker.celery_app inspect stats       # pools, prefetch, totals
    celery -A worker.celery_app events              # a live view (workers' events enabled)
    celery -A worker.celery_app flower              # Flower's dashboard (the `flower` extra)

It is made from the environment (REMIXQ_BROKER_URL ... as every `remixq` process reads it) when
this module is imported: an import-time app on purpose, for `-A`, and nothing of remixq imports
it (`remixq worker` and `beat` build theirs with `worker.app.create_celery`). A tool needs only
the broker's address; the app gives it the task names and the queues.
"""

from __future__ import annotations

from remixq.config import load_settings
from remixq.logs import hide, use_format
from worker.app import create_celery

settings = load_settings()
hide(*settings.configured_secrets())
use_format(settings.log_format)
app = create_celery(settings)
