"""Operations: the failure log (secrets redacted as in `trainlog failures`), the athletes
waiting for a metrics recompute, the checks of `trainlog doctor` (queue lengths among them)
and a link to Flower."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tasks.failures import list_failures
from workers.health import check_all

if TYPE_CHECKING:
    from workers.web.app import Console

FAILURES_SHOWN = 100


def routes(console: Console) -> list[Route]:
    async def operations(request: Request) -> Response:
        return console.page(
            request,
            "operations.html",
            failures=list_failures(console.stores, FAILURES_SHOWN),
            pending=sorted(console.stores.coordination.pending_athletes().items()),
            checks=check_all(console.settings),
        )

    return [Route("/operations", operations)]
