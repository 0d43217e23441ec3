"""The Celery app of distributed ingestion, built from Enclave's settings.

The same app is the coordinator's producer and the worker's consumer. Its settings are the ones
the crash-safety design rests on (measured in the research notes, docs/ingest.md):

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a task is acknowledged after it ran, and
  requeued when the process running it dies (without the second one a killed process's task is
  acknowledged as failed and lost);
- prefetch 1 and ``worker_disable_prefetch``: a worker holds no queued task beyond the ones its
  processes run, so a task never waits behind a busy process while another worker idles;
- ``visibility_timeout`` (``ingest.visibility_timeout_s``, default 1 h) above the longest task:
  Redis redelivers an unacknowledged task after it, *also while it still runs*, so a short one
  would run long tasks several times at once. It is a backstop; the coordinator's leases find
  lost work in seconds. ``unacked_restore_throttle = 1`` makes that backstop sweep every 10 s
  instead of every ~100 s;
- msgpack for tasks (file bytes), no result backend (results go to a Redis stream);
- ``worker_proc_alive_timeout`` long enough for a replacement process to load the model.
"""

from __future__ import annotations

from celery import Celery

from core.errors import ConfigError
from core.settings import IngestSettings

TASK_NAME = "enclave.ingest.process_files"


def broker_url(settings: IngestSettings) -> str:
    if settings.broker_url is None:
        raise ConfigError(
            "distributed ingestion needs a broker: set ingest.broker_url (or "
            "ingest.broker_url_file), e.g. redis://redis:6379/0"
        )
    return settings.broker_url.get_secret_value()


def make_app(settings: IngestSettings) -> Celery:
    """The app for ``settings``' broker, with the ingest task registered."""
    from ingest.distributed.worker import process_files

    app = Celery("enclave-ingest", broker=broker_url(settings), set_as_current=False)
    app.conf.update(
        task_default_queue=settings.queue,
        task_serializer="msgpack",
        accept_content=["msgpack"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # an exception is final for Celery: the coordinator resends what its lease check
        # finds lost, so Celery itself never retries
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_disable_prefetch=True,
        # a process loads the model before it reports up (seconds; a minute on a busy host):
        # Celery's default of 4 s would kill every replacement of a crashed process
        worker_proc_alive_timeout=600,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_s,
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
            "socket_timeout": 30,
            "socket_connect_timeout": 5,
            "health_check_interval": 10,
        },
    )
    app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True)(process_files)
    return app
