"""moto_server with one lock around every DynamoDB and SQS call.

moto applies a conditional DynamoDB write without holding a lock, so two concurrent writes can
both pass their condition, and two concurrent SQS receives can take the same message; the real
services never let that happen. Serialising those calls gives
the tests the same guarantee, while S3 transfers stay concurrent. (A long poll would hold the
lock for its whole wait: consumers here poll without waiting.)

With MOTO_STREAMING_COMPLETE=1 (the large-asset bench), multipart uploads are completed through a
temporary file instead of in memory (moto_streaming_complete.py), so objects larger than the
machine's memory can be completed.

It also refuses to create a schedule group that exists (ConflictException), as EventBridge
Scheduler does: moto replaced the group, erasing the schedules of a suite running beside.
"""
import os
import sys
import threading

from moto.core.exceptions import JsonRESTError
from moto.scheduler.models import EventBridgeSchedulerBackend
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

_lock = threading.Lock()


class _ScheduleGroupExists(JsonRESTError):
    code = 409

    def __init__(self, name):
        super().__init__("ConflictException", f"Schedule group {name} already exists.")


_create_schedule_group = EventBridgeSchedulerBackend.create_schedule_group


def _create_schedule_group_once(self, name, tags):
    # EventBridge Scheduler refuses an existing group; moto replaced it, dropping the schedules
    # another suite had just created in it.
    if name in self.schedule_groups:
        raise _ScheduleGroupExists(name)
    return _create_schedule_group(self, name, tags)


EventBridgeSchedulerBackend.create_schedule_group = _create_schedule_group_once


def locked(app):
    def wrapper(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith(("DynamoDB", "AmazonSQS")):
            with _lock:
                # Materialise the body while holding the lock: the state change happens here.
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wrapper


if __name__ == "__main__":
    if os.environ.get("MOTO_STREAMING_COMPLETE") == "1":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import moto_streaming_complete

        moto_streaming_complete.install()
    host, port = sys.argv[1], int(sys.argv[2])
    application = DomainDispatcherApplication(create_backend_app)
    application.debug = True
    run_simple(host, port, locked(application), threaded=True, use_reloader=False)
