"""``/metrics`` (Prometheus) and JSON logs with job ids, against a live server started with
``F5VI_LOG_JSON=1``; plus per-app registries in one process."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from f5vi.api.app import create_app
from f5vi.config import Settings
from f5vi.logging_setup import JobIdFilter, JsonFormatter, log_context
from realtime_helpers import SHORT_TEXT, VOICE, start_server, wait_job
from server_helpers import LiveServer, assert_error_shape

NAMED = {
    "f5vi_jobs": "gauge",
    "f5vi_jobs_finished": "counter",
    "f5vi_queue_depth": "gauge",
    "f5vi_engine_busy": "gauge",
    "f5vi_engine_ready": "gauge",
    "f5vi_streams_active": "gauge",
    "f5vi_streams": "counter",
    "f5vi_synthesis_seconds": "histogram",
    "f5vi_rtf": "histogram",
    "f5vi_audio_seconds": "counter",
    "f5vi_first_chunk_latency_seconds": "histogram",
    "f5vi_gpu_available": "gauge",
    "f5vi_gpu_memory_bytes": "gauge",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = start_server(tmp_path_factory.mktemp("metrics"), tmp_path_factory.getbasetemp(), log_json=1)
    yield srv
    srv.close()


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(server: LiveServer) -> tuple[dict[str, str], Samples]:
    response = server.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return types, samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_exist_and_change_after_a_job_and_a_stream(server: LiveServer) -> None:
    types, before = _scrape(server)
    for name, kind in NAMED.items():
        assert types.get(name) == kind, (name, types.get(name))
    assert _value(before, "f5vi_engine_ready") == 1
    assert _value(before, "f5vi_gpu_available") == 0  # the test server runs on the CPU

    job = server.client.post("/tts", json={"text": SHORT_TEXT, "ref_name": VOICE}).json()
    assert wait_job(server.client, job["job_id"])["state"] == "succeeded"
    body = {"input": SHORT_TEXT, "voice": VOICE, "response_format": "pcm", "stream": True}
    with server.client.stream("POST", "/v1/audio/speech", json=body) as response:
        assert response.status_code == 200 and response.read()

    _, after = _scrape(server)
    assert _value(after, "f5vi_jobs", state="succeeded") == _value(before, "f5vi_jobs", state="succeeded") + 1
    assert _value(after, "f5vi_jobs_finished_total", state="succeeded") == 1
    assert _value(after, "f5vi_synthesis_seconds_count", kind="job") == 1
    assert _value(after, "f5vi_synthesis_seconds_sum", kind="job") > 0
    assert _value(after, "f5vi_rtf_count", kind="job") == 1
    assert _value(after, "f5vi_audio_seconds_total", kind="job") > 1.0
    assert _value(after, "f5vi_synthesis_seconds_count", kind="stream") == 1
    assert _value(after, "f5vi_rtf_count", kind="stream") == 1
    assert _value(after, "f5vi_first_chunk_latency_seconds_count", endpoint="openai") == 1
    assert 0 < _value(after, "f5vi_first_chunk_latency_seconds_sum", endpoint="openai") < 60
    assert _value(after, "f5vi_streams_total", endpoint="openai", outcome="completed") == 1
    assert _value(after, "f5vi_queue_depth") == 0 and _value(after, "f5vi_streams_active") == 0


def test_metrics_need_the_api_key(server: LiveServer) -> None:
    assert_error_shape(httpx.get(f"{server.base_url}/metrics", timeout=30), 401, "unauthorized")


def test_server_logs_are_json_lines_with_job_ids(server: LiveServer) -> None:
    job = server.client.post("/tts", json={"text": SHORT_TEXT, "ref_name": VOICE}).json()
    assert wait_job(server.client, job["job_id"])["state"] == "succeeded"
    body = {"input": SHORT_TEXT, "voice": VOICE, "response_format": "wav", "stream": True}
    with server.client.stream("POST", "/v1/audio/speech", json=body) as response:
        stream_id = response.headers["x-f5vi-stream-id"]
        response.read()
    records = []
    for line in server.log_path.read_text(encoding="utf-8").splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))  # every structured line must parse
    assert records, server.log_tail()
    for record in records:
        assert {"ts", "level", "logger", "message"} <= set(record), record
    about_job = [r for r in records if r.get("job_id") == job["job_id"]]
    assert any("succeeded" in r["message"] for r in about_job), about_job
    about_stream = [r for r in records if r.get("job_id") == stream_id]
    assert any("completed" in r["message"] for r in about_stream), about_stream
    assert any(r["logger"] == "uvicorn.access" for r in records)  # uvicorn's lines go through JSON too


def test_json_formatter_fields() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord(
        "f5vi.x", logging.WARNING, __file__, 1, "job %s failed: %s", ("job_1", "x"), None
    )
    JobIdFilter().filter(record)
    line = json.loads(formatter.format(record))
    assert (
        line["job_id"] == "job_1" and line["level"] == "WARNING" and line["message"] == "job job_1 failed: x"
    )
    with log_context("stream_abc"):
        other = logging.LogRecord("f5vi.y", logging.INFO, __file__, 1, "vocoding %d", (3,), None)
        other.extra_field = 5
        assert json.loads(formatter.format(other)) | {"ts": ""} == {
            "ts": "",
            "level": "INFO",
            "logger": "f5vi.y",
            "message": "vocoding 3",
            "job_id": "stream_abc",
            "extra_field": 5,
        }
    try:
        raise ValueError("boom")
    except ValueError:
        failing = logging.LogRecord("f5vi.z", logging.ERROR, __file__, 1, "oops", None, sys.exc_info())
    assert "ValueError: boom" in json.loads(formatter.format(failing))["exc_info"]


def test_each_app_has_its_own_registry(tmp_path) -> None:
    def settings(name: str) -> Settings:
        base = tmp_path / name
        return Settings(data_dir=base / "d", output_dir=base / "o", voices_dir=base / "v")

    first, second = create_app(settings("a")), create_app(settings("b"))
    assert first.state.metrics.registry is not second.state.metrics.registry
    first.state.metrics.jobs_finished.labels("succeeded").inc()
    assert b'f5vi_jobs_finished_total{state="succeeded"} 1.0' in first.state.metrics.render()
    assert b'f5vi_jobs_finished_total{state="succeeded"} 1.0' not in second.state.metrics.render()
    assert not [m.name for m in REGISTRY.collect() if m.name.startswith("f5vi_")]  # not the global registry
