"""Dependencies of the real-time routes: the streaming service and the app's metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from f5vi.jobs.streaming import StreamService
from f5vi.metrics import Metrics


def get_streams(request: Request) -> StreamService:
    return request.app.state.streams


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


StreamsDep = Annotated[StreamService, Depends(get_streams)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
