"""The ASGI application: routes, error pages and the lifespan that owns the runtime."""

from __future__ import annotations

import multiprocessing
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from counter import api
from counter.logs import configure_logging
from counter.orphans import exit_with_parent
from counter.problems import ProblemType, problem
from counter.runtime import open_runtime
from counter.settings import Settings

ROUTES = [
    Route("/webhooks/messages", api.receive_message, methods=["POST"]),
    Route("/counts", api.hourly_counts, methods=["GET"]),
    Route("/healthz", api.healthz, methods=["GET"]),
    Route("/readyz", api.readyz, methods=["GET"]),
    Route("/metrics", api.metrics, methods=["GET"]),
]


async def http_error(request: Request, exc: Exception) -> Response:
    """Render Starlette's 404 and 405 as problem+json, like every other error."""
    if isinstance(exc, HTTPException) and exc.status_code == 405:
        return problem(
            ProblemType.METHOD_NOT_ALLOWED,
            f"{request.method} is not allowed on {request.url.path}.",
            headers=exc.headers,
        )
    return problem(ProblemType.NOT_FOUND, f"No endpoint at {request.url.path}.")


def create_app(settings: Settings, with_dispatcher: bool | None = None) -> Starlette:
    """Build the app. Nothing connects until the lifespan starts."""
    dispatch = settings.dispatcher_enabled if with_dispatcher is None else with_dispatcher

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_runtime(settings, dispatch) as runtime:
            app.state.runtime = runtime
            yield

    return Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers={404: http_error, 405: http_error, Exception: api.internal_error},
    )


def app_from_env() -> Starlette:
    """Build the app from COUNTER_* variables; uvicorn calls this in every worker."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    parent = multiprocessing.parent_process()
    if settings.workers > 1 and parent is not None and parent.pid is not None:
        # A worker of a SIGKILLed `counter serve` would otherwise keep the port.
        exit_with_parent(parent.pid)
    return create_app(settings)
