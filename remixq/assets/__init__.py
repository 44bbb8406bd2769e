"""Image assets: a durable, verified copy of every generated image, made soon after its result
is ingested, before the provider's link expires.

Ingestion writes nothing more than the image row, whose asset is `pending` by default; the
workers make the copies, outside the webhook's request:

- `claims`: the rows: a sweep hands pending assets over (`FOR UPDATE SKIP LOCKED`, a token and a
  lease, so that a lost message or a dead worker's asset is handed over again), a worker claims
  them and records what it did;
- `policy` and `fetch`: where a download may go (an allow list, HTTPS, public addresses only,
  the address checked being the one connected to, redirects checked again) and the download
  itself (a size cap, timeouts);
- `verify`: the bytes must decode whole (Pillow) as the requested format; their SHA-256, size,
  format, content type, width and height are read from them;
- `storage`: a folder or an S3-compatible bucket, content-addressed (identical bytes once);
- `copying`: one asset's copy and its outcome (stored, retried with backoff while the link
  lives, failed or refused with a reason);
- `thumbnails`: smaller copies for the API, made once and kept;
- `export`: the stored files of a campaign under readable names, with a manifest.
"""
