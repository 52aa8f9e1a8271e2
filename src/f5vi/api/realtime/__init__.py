"""The real-time services behind the thin routes ``WS /tts/stream`` and ``POST /v1/audio/speech``.

- :mod:`.frames`: the step both share: a stream of float32 pieces -> encoded frames, with the
  first-chunk latency observed when the first bytes exist.
- :mod:`.ws_protocol`, :mod:`.ws_session`: the WebSocket protocol (messages, frame header, auth) and
  one connection's session (its queue of requests, cancel, shutdown).
- :mod:`.speech_request`, :mod:`.speech_response`: OpenAI's speech body and the one-shot / streamed /
  SSE responses.
"""
