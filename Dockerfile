# One image for every remixq process; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY remixq remixq
COPY worker worker
COPY webhook_receiver webhook_receiver
COPY simulator simulator
COPY migrations migrations
RUN pip install --no-cache-dir . && useradd --create-home remixq
USER remixq
ENTRYPOINT ["remixq"]
