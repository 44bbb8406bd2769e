"""Ingestion of provider results: webhooks, getResponse answers and inbox replays, one path.

The raw body goes into the inbox first; then each result item becomes an image row inserted
once (a redelivery is a no-op thanks to the unique imageUUID), the job's received count moves by
the rows actually inserted, and the state machine completes or fails the job. Nothing is written
to the image table from a body that does not validate as a whole. All of it happens in the
caller's transaction: the inbox row is its first write and carries the status the body is
expected to end with ("processed" for a valid one), corrected before the end when the outcome
differs (an orphan, a refused transition). Bodies and poll answers are read into items by
`remixq.providers.runware.results`, the one reader of the provider's items.

A webhook is the hottest path of the system (docs/benchmarks.md), so on PostgreSQL it is one
statement sent through psycopg, not the ORM: the inbox row, the job's row lock, the image insert
and the job's update are data-modifying parts of one WITH query, and the job's new status is
decided in it by SQL generated from the rule that `decide` evaluates in Python. With the
caller's BEGIN and COMMIT a webhook costs three round trips. Other backends (SQLite, the embedded
default) take the same steps as SQLAlchemy Core statements, deciding in Python; both answer
through the same `decide`.

What one holder of a leaked webhook URL can do is bounded (`Limits`, docs/security.md): a job
stores at most its numberResults distinct images and none once final, a body that would break
that is refused whole (`decision`); a cost must be a JSON number within REMIXQ_MAX_IMAGE_COST
(`remixq.providers.runware.results`); and the inbox keeps at most REMIXQ_INBOX_MAX_PER_TASK
bodies per task, later deliveries being applied and counted on their job (`inbox_overflow`).

Modules: `apply` (one body: `ingest`, `ingest_poll`), `batch` (`ingest_batch`, the receiver's
group commit), `decision` (the rule, in Python and in SQL), `records` (the values passed
between the steps), `postgres` and `core` (the two stores).
"""

from remixq.ingest.apply import ingest, ingest_poll
from remixq.ingest.batch import ingest_batch
from remixq.ingest.records import DEFAULT_LIMITS, Limits, Outcome

__all__ = ["DEFAULT_LIMITS", "Limits", "Outcome", "ingest", "ingest_batch", "ingest_poll"]
