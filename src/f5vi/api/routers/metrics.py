"""``GET /metrics``: Prometheus text exposition of this app's own registry (see :mod:`f5vi.metrics`).

Protected by the API key like every other route: configure the scraper with
``authorization: {type: Bearer, credentials: <key>}``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from f5vi.api.auth import bearer_scheme
from f5vi.api.deps import ManagerDep, MetricsDep
from f5vi.api.responses import error_responses
from f5vi.metrics import CONTENT_TYPE

router = APIRouter(tags=["admin"], dependencies=[Depends(bearer_scheme)])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Jobs by state, queue depth, synthesis seconds, RTF, first-chunk latency, GPU memory.",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **error_responses(),
    },
)
async def get_metrics(manager: ManagerDep, metrics: MetricsDep) -> Response:
    await metrics.refresh(manager)
    return Response(metrics.render(), media_type=CONTENT_TYPE)
