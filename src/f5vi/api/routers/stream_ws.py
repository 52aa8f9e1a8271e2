"""``WS /tts/stream``: real-time synthesis over a WebSocket (protocol in ``docs/streaming.md``).

Client -> server: text messages, each one JSON object:

- ``{"type": "speak", "text": ..., "voice": ..., "speed"?, "nfe_step"?, "seed"?, "id"?}`` (``type``
  may be omitted) queues a request; requests of one connection run one after the other. ``[voice_id]``
  tags in the text switch voices as in ``POST /tts`` (``[[`` is a literal ``[``).
- ``{"type": "cancel"}`` stops the running request and drops the queued ones.
- ``{"type": "ping"}`` -> ``{"type": "pong"}``.

Server -> client: JSON text frames ``ready`` (once), then per request ``start``, for each audio frame
(at most 1 s; an engine piece longer than that is split) a ``chunk`` frame (with ``words``: the
timed words that start in its audio, seconds of the whole request, offsets into ``text``)
immediately followed by ONE binary frame, then ``done``; or ``error`` (for a bad message or a
failed request; the connection stays open). A binary frame is a 16-byte header
``<4sIII`` = (``b"F5PC"``, request ``seq``, chunk ``index``, sample count) then signed 16-bit
little-endian mono PCM at 24 kHz.

Each request goes through the shared engine queue like a job. Closing the socket cancels what runs.
When the server shuts down, what runs or waits gets an ``error`` frame (``server_shutdown``), then
a ``closing`` frame, and the socket is closed with code 1012 (service restart): reconnect and resend.
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from f5vi.api.realtime.ws_protocol import PROTOCOL, authorize
from f5vi.api.realtime.ws_session import WsSession
from f5vi.config import Settings

router = APIRouter()


@router.websocket("/tts/stream", name="tts_stream")
async def tts_stream(websocket: WebSocket) -> None:
    settings: Settings = websocket.app.state.settings
    if not await authorize(websocket, settings):
        return
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol=PROTOCOL if PROTOCOL in offered else None)
    state = websocket.app.state
    async with state.runtime.connection() as stopping:
        await WsSession(websocket, state.streams, state.metrics, settings, stopping).run()
