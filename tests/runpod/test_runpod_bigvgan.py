"""A RunPod job on a worker whose model directory holds a BigVGAN (random-weight demo in NVIDIA's
layout), in process: the job completes and its inline audio decodes."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path

import numpy as np
import soundfile as sf

from f5vi.config import Settings
from f5vi.engine.demo import make_demo_model
from f5vi.runpod.handler import RunPodWorker

REPO = Path(__file__).resolve().parents[2]


def test_runpod_job_with_a_bigvgan_model_directory(tmp_path: Path) -> None:
    model = make_demo_model(tmp_path / "model", vocoder="bigvgan")
    settings = Settings(
        model=str(model),
        vocoder=str(model / "bigvgan"),
        device="cpu",
        voices_dir=REPO / "voices",
        data_dir=tmp_path / "data",
        output_dir=tmp_path / "output",
        host="127.0.0.1",
        port=0,
        nfe_step=4,
        normalizer="none",
    )
    worker = RunPodWorker(settings, serve_http=False)
    worker.start()
    try:
        payload = {"id": "rp-bigvgan-1", "input": {"text": "xin chào các bạn.", "ref_name": "vi_north_male"}}
        output = asyncio.run(asyncio.wait_for(worker.handler(payload), 120))
    finally:
        worker.stop()
    assert "error" not in output, output
    assert output["storage"] == "local" and output["demo"] is True
    audio, sr = sf.read(io.BytesIO(base64.b64decode(output["audio_base64"])), dtype="float32")
    assert sr == 24_000 and len(audio) > 4_000 and np.isfinite(audio).all()
    assert float(np.abs(audio).max()) > 0.001
