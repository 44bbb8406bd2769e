# One image for every remixq process; docker-compose.yml picks the command.
FROM python:3.11-slim
# REMIXQ_DATA_DIR: beat's schedule and, without a server, the embedded default's files; a folder
# the unprivileged user owns (the code in /app stays root's, read-only to the processes).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    REMIXQ_DATA_DIR=/var/lib/remixq
WORKDIR /app
# The pinned runtime first, in its own layer: it changes only when the lock does (Flower too,
# for docker-compose.yml's `flower` profile).
COPY requirements/main.lock requirements/main.lock
RUN pip install --no-cache-dir -r requirements/main.lock
COPY pyproject.toml README.md alembic.ini ./
COPY remixq remixq
COPY worker worker
COPY webhook_receiver webhook_receiver
COPY simulator simulator
COPY migrations migrations
RUN pip install --no-cache-dir --no-deps . \
    && useradd --system --no-log-init --uid 10001 --user-group --create-home --home-dir /home/remixq remixq \
    && install -d -o remixq -g remixq -m 0700 /var/lib/remixq
USER 10001:10001
ENTRYPOINT ["remixq"]
CMD ["--help"]
