# One image for every remixq process; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# The pinned runtime first, in its own layer: it changes only when the lock does.
COPY requirements/main.lock requirements/main.lock
RUN pip install --no-cache-dir -r requirements/main.lock
COPY pyproject.toml README.md alembic.ini ./
COPY remixq remixq
COPY worker worker
COPY webhook_receiver webhook_receiver
COPY simulator simulator
COPY migrations migrations
RUN pip install --no-cache-dir --no-deps . && useradd --create-home remixq
USER remixq
ENTRYPOINT ["remixq"]
