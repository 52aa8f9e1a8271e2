"""Completion webhook: a signed JSON POST with bounded, exponential-backoff retries.

Wire format (documented in ``docs/runpod.md``):

* body: UTF-8 JSON, sent byte-for-byte as signed (``Content-Type: application/json``);
* ``X-F5VI-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`` when a secret is
  configured. The timestamp is part of the signed text so a captured request cannot be replayed
  later than the receiver's tolerance; each attempt is signed afresh with its own timestamp;
* ``X-F5VI-Delivery: <id>``: the same for every attempt of one delivery, so a receiver can drop
  duplicates (an attempt can time out here after the receiver already handled it);
* ``X-API-Key: <key>`` when configured: the seed's static header, kept so the existing Next.js route
  (which checks only that header) keeps working.

Retried: connection errors, timeouts, HTTP 5xx, 408 and 429. Other 4xx answers are final (the
receiver rejected the request; sending it again would not change that). :func:`deliver` never
raises: a webhook failure must not turn a finished synthesis into a failed job.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-F5VI-Signature"
DELIVERY_HEADER = "X-F5VI-Delivery"
API_KEY_HEADER = "X-API-Key"
SIGNATURE_VERSION = "v1"

_RETRYABLE_STATUS = frozenset({408, 429})


@dataclass(frozen=True)
class WebhookConfig:
    """Where and how to deliver. ``retries`` counts attempts after the first one."""

    url: str
    secret: str | None = None
    api_key: str | None = None
    retries: int = 3
    timeout_seconds: float = 30.0
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 30.0


@dataclass
class WebhookResult:
    """Outcome of one delivery (all attempts). ``delivered`` means a 2xx answer was received."""

    delivered: bool
    attempts: int
    delivery_id: str
    status_code: int | None = None
    error: str | None = None
    history: list[str] = field(default_factory=list)


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes that are signed and sent (compact, UTF-8, key order kept)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed with ``secret``."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={ts},{SIGNATURE_VERSION}={compute_signature(secret, ts, body)}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    tolerance_seconds: float = 300.0,
    now: float | None = None,
) -> bool:
    """Receiver-side check, also what the tests use: parse, recompute, compare in constant time.

    Rejects a missing or malformed header and timestamps further than ``tolerance_seconds`` from
    ``now`` (replay protection). Several ``v1=`` entries are accepted (secret rotation).
    """
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == SIGNATURE_VERSION:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = compute_signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def _backoff(config: WebhookConfig, attempt: int) -> float:
    """Delay before attempt ``attempt + 1`` (attempt counts from 1): doubling, capped, +-20 % jitter."""
    base = min(config.backoff_max_seconds, config.backoff_initial_seconds * (2 ** (attempt - 1)))
    return max(0.0, base * random.uniform(0.8, 1.2))


def _redact(url: str) -> str:
    """Scheme, host and path only: query strings often carry tokens."""
    try:
        parsed = httpx.URL(url)
        return f"{parsed.scheme}://{parsed.host}{':' + str(parsed.port) if parsed.port else ''}{parsed.path}"
    except Exception:
        return "<invalid url>"


async def deliver(
    config: WebhookConfig,
    payload: Mapping[str, Any],
    *,
    client: httpx.AsyncClient | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> WebhookResult:
    """POST ``payload`` to ``config.url``; retry as described in the module docstring. Never raises."""
    body = encode_body(payload)
    result = WebhookResult(delivered=False, attempts=0, delivery_id=uuid.uuid4().hex)
    target = _redact(config.url)
    own_client = client is None
    http = client or httpx.AsyncClient(timeout=config.timeout_seconds, follow_redirects=False)
    total_attempts = 1 + max(0, int(config.retries))
    try:
        for attempt in range(1, total_attempts + 1):
            result.attempts = attempt
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "f5vi-webhook/1",
                DELIVERY_HEADER: result.delivery_id,
            }
            if config.secret:
                headers[SIGNATURE_HEADER] = signature_header(config.secret, body)
            if config.api_key:
                headers[API_KEY_HEADER] = config.api_key
            retryable = True
            try:
                response = await http.post(
                    config.url, content=body, headers=headers, timeout=config.timeout_seconds
                )
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:  # misconfiguration: final
                result.error = f"{type(exc).__name__}: {exc}"
                retryable = False
            except httpx.HTTPError as exc:  # connection refused/reset, timeouts: worth retrying
                result.status_code = None
                result.error = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # a malformed URL and the like: not worth retrying
                result.error = f"{type(exc).__name__}: {exc}"
                retryable = False
            else:
                result.status_code = response.status_code
                if 200 <= response.status_code < 300:
                    result.delivered = True
                    result.error = None
                    result.history.append(str(response.status_code))
                    logger.info(
                        "webhook %s delivered to %s (attempt %d)", result.delivery_id, target, attempt
                    )
                    return result
                result.error = f"HTTP {response.status_code}"
                retryable = response.status_code >= 500 or response.status_code in _RETRYABLE_STATUS
            result.history.append(result.error or "?")
            if not retryable or attempt == total_attempts:
                break
            delay = _backoff(config, attempt)
            logger.warning(
                "webhook %s to %s failed (attempt %d/%d: %s); retrying in %.1f s",
                result.delivery_id,
                target,
                attempt,
                total_attempts,
                result.error,
                delay,
            )
            await sleep(delay)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # defensive: delivery must never fail the job
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        if own_client:
            await http.aclose()
    logger.error(
        "webhook %s to %s not delivered after %d attempt(s): %s",
        result.delivery_id,
        target,
        result.attempts,
        result.error,
    )
    return result
