"""The Celery edge: the app factory, the submission task, the periodic work, the producer."""
