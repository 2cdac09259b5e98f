"""The worker-side request of every trainlog job: arguments nested too deep are refused in the
worker's main process, before the pool sees them. Celery passes the message body to a pool
process, which decodes and reports on it recursively; ~500 levels deep and the job vanished
there (no result, no log line, the message never acknowledged, so Redis would hand it out
again and again). Here it fails at once as VALIDATION, recorded like any other failure."""

from __future__ import annotations

from billiard.einfo import ExceptionInfo
from celery.worker.request import Request

from storage.errors import ValidationError
from storage.values import check_arguments_nesting


class TrainlogRequest(Request):
    _refused = False

    def revoked(self) -> bool:
        """Celery asks this before handing a job to the pool (and a subclass it builds per
        task replaces `execute_using_pool`): a refused job counts as revoked, and so is
        dropped quietly after `_refuse` failed it."""
        if self._refused or super().revoked():
            return True
        try:
            check_arguments_nesting(self.args, self.kwargs)
        except ValidationError as error:
            self._refused = True
            self._refuse(error)
            return True
        return False

    def _refuse(self, error: ValidationError) -> None:
        """Fail the job here: the failure log, the result backend, the event, the ack."""
        self.task.on_failure(error, self.id, self.args, self.kwargs, None)
        try:
            raise error
        except ValidationError:
            self.on_failure(ExceptionInfo(), send_failed_event=True, return_ok=False)
