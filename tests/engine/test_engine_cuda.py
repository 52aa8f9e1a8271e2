"""The engine on a CUDA GPU (skipped without one; ``bench/device_run.sh`` runs them on a lent GPU).

Three requests at once on the GPU share ODE batches, and each equals its solo run: in fp32 (TF32
off, so the only difference left is the rounding of other GEMM shapes) to the CPU test's tolerance;
in fp16, the service default on CUDA, to a tolerance of half-precision rounding. A request whose
padding leaked into another's attention would be off by far more than either.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from test_engine_sharing import TEXTS, _together  # the CPU test's requests, run the same way

from engine_helpers import demo_settings
from f5vi.engine.synthesizer import Synthesizer
from f5vi.engine.types import ReferenceVoice, SynthesisRequest, SynthesisResult

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

REPO_ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = {"float32": 1e-3, "float16": 2e-2}


@pytest.fixture(scope="module", params=["float32", "float16"])
def synthesizer(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Synthesizer]:
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    settings = demo_settings(
        tmp_path_factory.mktemp("demo"),
        device="cuda",
        dtype=request.param,
        max_batch_frames=16_384,
        normalizer="none",
    )
    try:
        yield Synthesizer.from_settings(settings)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


def _requests() -> list[SynthesisRequest]:
    wav = REPO_ROOT / "voices" / "vi_north_male.wav"
    voice = ReferenceVoice(wav, wav.with_suffix(".txt").read_text(encoding="utf-8").strip(), "vi_north_male")
    return [
        SynthesisRequest(text=text, reference=voice, seed=seed, nfe_step=nfe)
        for text, seed, nfe in zip(TEXTS, (3, 11, 29), (16, 12, 16), strict=True)
    ]


def test_concurrent_requests_share_batches_on_the_gpu_and_each_equals_its_solo_run(
    synthesizer: Synthesizer,
) -> None:
    assert synthesizer.device.type == "cuda"
    dtype = str(synthesizer.dtype).removeprefix("torch.")
    requests = _requests()
    alone = [synthesizer.synthesize(request) for request in requests]
    synthesizer.sampler.largest_batch = 0
    together = _together(synthesizer, requests, [None] * len(requests))
    assert synthesizer.sampler.largest_batch >= 3, "the requests never shared a batch"
    for solo, shared in zip(alone, together, strict=True):
        assert isinstance(shared, SynthesisResult), shared
        assert shared.chunks == solo.chunks and len(shared.audio) == len(solo.audio)
        assert np.isfinite(shared.audio).all() and float(np.abs(shared.audio).max()) > 1e-3
        np.testing.assert_allclose(shared.audio, solo.audio, atol=TOLERANCE[dtype])
    stats = synthesizer.memory_stats()
    assert stats["allocated_bytes"] > 0 and stats["max_allocated_bytes"] >= stats["allocated_bytes"]
