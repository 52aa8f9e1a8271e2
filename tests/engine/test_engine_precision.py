"""Half-precision behaviour that differs on purpose from upstream: rotary positions and the ODE state stay
exact (fp32); a bf16 backbone on the CPU is an opt-in where the CPU has native bf16."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from f5vi.engine.checkpoint import load_model
from f5vi.engine.device import cpu_runs_natively
from f5vi.engine.errors import ModelLoadError
from f5vi.engine.model import cfm as cfm_module
from f5vi.engine.model.modules import RotaryEmbedding


def test_rotary_positions_stay_float32_in_half_precision() -> None:
    exact = RotaryEmbedding(64)
    reduced = RotaryEmbedding(64).to(torch.bfloat16)
    frames = 3000  # ~32 s of audio: positions past 256 are not representable in bf16
    freqs_exact = exact.forward_from_seq_len(frames)
    freqs_reduced = reduced.forward_from_seq_len(frames)
    assert freqs_reduced.dtype == torch.float32
    # only the buffer's own rounding to bf16 remains, not a rounding of the positions
    inv_freq = reduced.inv_freq.float()
    expected = torch.arange(frames, dtype=torch.float32)[:, None] * inv_freq[None, :]
    torch.testing.assert_close(freqs_reduced[0, :, ::2], expected)
    # the last two positions are distinct (in bf16 arithmetic they would collapse)
    assert not torch.equal(freqs_reduced[0, -1], freqs_reduced[0, -2])
    assert freqs_exact.shape == freqs_reduced.shape == (1, frames, 64)


# --- bf16 backbone on a CPU with native bf16 (opt-in: F5VI_DTYPE=bfloat16) -------------------------------

needs_native_bf16 = pytest.mark.skipif(
    not cpu_runs_natively(torch.bfloat16), reason="this CPU has no native bf16 (AVX512-BF16 / AMX)"
)


def _golden_case(golden_dir: Path, name: str, case: str) -> dict[str, torch.Tensor]:
    data = load_file(str(golden_dir / name / "cfm_sample.safetensors"))
    return {key.split(".", 1)[1]: value for key, value in data.items() if key.startswith(case + ".")}


def _sample(model, case: dict[str, torch.Tensor]):
    return model.cfm.sample(
        case["cond"], case["text_ids"], case["duration"], lens=case["lens"], steps=8, method="euler",
        use_epss=False, cfg_strength=2.0, sway_sampling_coef=-1.0, noise=case["y0"], return_trajectory=True,
    )  # fmt: skip


def test_float32_always_counts_as_native() -> None:
    assert cpu_runs_natively(torch.float32)


@needs_native_bf16
@pytest.mark.parametrize("name", ["tiny_v0", "tiny_v1", "tiny_e2"])
def test_bf16_backbone_keeps_state_and_reference_in_float32(golden_dir: Path, name: str) -> None:
    model = load_model(golden_dir / name, checkpoint_file="model.pt", dtype=torch.bfloat16)
    assert next(model.cfm.transformer.parameters()).dtype == torch.bfloat16
    case = _golden_case(golden_dir, name, "euler8_b2")
    result = _sample(model, case)
    assert result.out.dtype == result.trajectory.dtype == torch.float32
    # the reference frames are the caller's fp32 mel, not a bf16 rounding of it
    for i, n_ref in enumerate(case["lens"].tolist()):
        assert torch.equal(result.out[i, :n_ref], case["out"][i, :n_ref])
    # generated frames: close to upstream's fp32 result (bf16 has 8 mantissa bits; measured max 0.019,
    # mean 0.0011 on these models) while the model moved them by ~1 on average
    spans = zip(case["lens"].tolist(), case["duration"].tolist(), strict=True)
    generated = torch.cat([(result.out - case["out"])[i, n:d] for i, (n, d) in enumerate(spans)])
    assert generated.abs().max() < 0.05
    assert generated.abs().mean() < 0.003
    assert generated.abs().max() > 0  # it really ran in bf16


@needs_native_bf16
def test_float32_state_is_closer_to_float32_than_integrating_in_bf16(
    golden_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why STATE_DTYPE exists: upstream integrates in the model dtype and loses the small Euler steps."""
    model = load_model(golden_dir / "tiny_v0", checkpoint_file="model.pt", dtype=torch.bfloat16)
    case = _golden_case(golden_dir, "tiny_v0", "euler8_b2")
    ours = (_sample(model, case).out - case["out"]).abs().mean()
    monkeypatch.setattr(cfm_module, "STATE_DTYPE", torch.bfloat16)
    upstream_style = (_sample(model, case).out.float() - case["out"]).abs().mean()
    assert ours < 0.8 * upstream_style


@needs_native_bf16
def test_synthesizer_runs_bf16_on_cpu_when_asked(tmp_path: Path) -> None:
    from engine_helpers import REFERENCE_TEXT, demo_settings, speak
    from f5vi.engine.synthesizer import Synthesizer
    from f5vi.engine.types import ReferenceVoice, SynthesisRequest

    clip = speak(tmp_path / "ref", REFERENCE_TEXT)
    voice = ReferenceVoice(audio_path=clip.path, transcript=clip.transcript)
    text = "Hôm nay trời đẹp."
    results = {}
    for dtype in ("float32", "bfloat16"):
        synth = Synthesizer.from_settings(demo_settings(tmp_path / "demo", dtype=dtype, nfe_step=4))
        assert synth.dtype == getattr(torch, dtype)
        results[dtype] = synth.synthesize(SynthesisRequest(text=text, reference=voice, seed=7))
    fp32, bf16 = results["float32"].audio, results["bfloat16"].audio
    assert bf16.dtype == np.float32 and np.isfinite(bf16).all()
    assert len(bf16) == len(fp32)
    assert np.abs(bf16).max() > 0.01
    assert not np.array_equal(bf16, fp32)


def test_half_precision_without_native_support_names_the_alternatives(golden_dir: Path) -> None:
    if cpu_runs_natively(torch.float16):
        pytest.skip("this CPU runs fp16 natively")
    with pytest.raises(ModelLoadError, match="no native support on this CPU") as info:
        load_model(golden_dir / "tiny_v0", checkpoint_file="model.pt", dtype=torch.float16)
    assert ("bfloat16" in str(info.value)) == cpu_runs_natively(torch.bfloat16)


def test_auto_dtype_is_float16_on_cuda_and_float32_on_cpu() -> None:
    from f5vi.engine.device import resolve_dtype

    assert resolve_dtype("auto", torch.device("cuda")) == torch.float16
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
