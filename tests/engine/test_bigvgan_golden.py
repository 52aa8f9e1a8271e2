"""Parity of f5vi's BigVGAN pieces with upstream code (data: ``tests/golden/bigvgan``, made by
``bench/bigvgan_golden.py`` from NVIDIA's ``bigvgan`` 2.4.1 and upstream ``f5-tts`` 1.1.22)."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load

from f5vi.engine.bigvgan import BigVGAN, kaiser_sinc_filter1d
from f5vi.engine.bigvgan_io import CONFIG_FILE, WEIGHTS_FILE, load_bigvgan
from f5vi.engine.checkpoint import load_model
from f5vi.engine.mel import BigVGANMelSpectrogram, to_cfm_layout
from f5vi.engine.ode_batch import make_item
from f5vi.engine.shared_sampler import SharedSampler
from f5vi.engine.text.vocab import Vocab
from golden_data import GOLDEN_SOURCE

BIGVGAN_GOLDEN = GOLDEN_SOURCE / "bigvgan"
GENERATOR_ATOL = 1e-4
MEL_ATOL = 1e-5
E2E_MEL_ATOL = 1e-4  # the Vocos path's bound on upstream's ODE output (tests/golden/README.md: cfm_sample)
E2E_WAVE_ATOL = 1e-5  # the random tiny vocoder's audio peaks at 0.017: a tighter bound than the generator's


def rebuild_nvidia_checkpoint(target: Path) -> Path:
    """``config.json`` + ``bigvgan_generator.pt`` exactly as NVIDIA's code saved them (see the README)."""
    stored = load(lzma.decompress((BIGVGAN_GOLDEN / "generator.safetensors.xz").read_bytes()))
    tmp = target / "generator.safetensors"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(lzma.decompress((BIGVGAN_GOLDEN / "generator.safetensors.xz").read_bytes()))
    with safe_open(str(tmp), framework="pt") as handle:
        metadata = handle.metadata()
    tmp.unlink()
    layout = json.loads(metadata["layout"])
    keys, scales = layout["keys"], layout["scales"]
    state: dict[str, torch.Tensor] = {}
    for key in keys:
        if key.endswith("upsample.filter"):
            state[key] = stored["filter.up"].clone()
        elif key.endswith("lowpass.filter"):
            state[key] = stored["filter.down"].clone()
        else:
            state[key] = stored[key].float() * scales[key.rsplit(".", 1)[1]]
    (target / CONFIG_FILE).write_bytes((BIGVGAN_GOLDEN / CONFIG_FILE).read_bytes())
    torch.save({"generator": state}, target / WEIGHTS_FILE)
    return target


@pytest.fixture(scope="module")
def data() -> dict[str, torch.Tensor]:
    return load(lzma.decompress((BIGVGAN_GOLDEN / "data.safetensors.xz").read_bytes()))


@pytest.fixture(scope="module")
def vocoder(tmp_path_factory: pytest.TempPathFactory) -> BigVGAN:
    return load_bigvgan(rebuild_nvidia_checkpoint(tmp_path_factory.mktemp("nvidia_bigvgan")))


def test_generator_matches_nvidia(vocoder: BigVGAN, data: dict[str, torch.Tensor]) -> None:
    wave = vocoder.decode(data["voc_mel"])
    expected = data["voc_wave"][:, 0]
    assert wave.shape == expected.shape == (1, data["voc_mel"].shape[-1] * 256)
    assert float(expected.abs().max()) > 0.01  # a real signal, not a clamp or zeros
    assert float((wave - expected).abs().max()) < GENERATOR_ATOL


def test_checkpoint_layout_is_nvidias(tmp_path: Path) -> None:
    """Every key of NVIDIA's state dict is read; weight norm folded (no weight_g/weight_v left)."""
    directory = rebuild_nvidia_checkpoint(tmp_path)
    checkpoint = torch.load(directory / WEIGHTS_FILE, weights_only=True)["generator"]
    assert any(k.endswith(".weight_g") for k in checkpoint)
    model = load_bigvgan(directory)
    own = set(model.state_dict())
    assert not any(k.endswith((".weight_g", ".weight_v")) for k in own)
    folded = {k.removesuffix("_v") for k in checkpoint if k.endswith(".weight_v")}
    plain = {k for k in checkpoint if not k.endswith((".weight_g", ".weight_v"))}
    assert own == folded | plain


def test_anti_aliasing_filters_match_nvidia(tmp_path: Path) -> None:
    raw = load(lzma.decompress((BIGVGAN_GOLDEN / "generator.safetensors.xz").read_bytes()))
    assert torch.allclose(kaiser_sinc_filter1d(0.25, 0.3, 12), raw["filter.up"], atol=1e-7)
    assert torch.allclose(kaiser_sinc_filter1d(0.25, 0.3, 12), raw["filter.down"], atol=1e-7)


def test_bigvgan_mel_matches_upstream(data: dict[str, torch.Tensor]) -> None:
    wave = data["ref_pcm16"].float().unsqueeze(0) / 32768
    mel = BigVGANMelSpectrogram()(wave)
    assert mel.shape == data["ref_mel"].shape == (1, 100, wave.shape[-1] // 256)
    assert float((mel - data["ref_mel"]).abs().max()) < MEL_ATOL


def test_end_to_end_matches_upstream_infer_process(vocoder: BigVGAN, data: dict[str, torch.Tensor]) -> None:
    """tiny_v0 DiT + BigVGAN mel + this vocoder through f5vi's engine path (reference mel -> ODE item
    -> shared sampler -> slice the reference -> vocoder) against upstream's ``infer_batch_process``."""
    model = load_model(GOLDEN_SOURCE / "tiny_v0", arch=None, checkpoint_file="model.pt")
    wave = data["ref_pcm16"].float().unsqueeze(0) / 32768
    ref_mel = to_cfm_layout(BigVGANMelSpectrogram()(wave))[0]
    text_ids = data["e2e_text_ids"][0]
    vocab = Vocab.from_file(GOLDEN_SOURCE / "tiny_v0" / "vocab.txt")
    provenance = json.loads((BIGVGAN_GOLDEN / "provenance.json").read_text(encoding="utf-8"))
    # upstream appends a space to a reference text ending in a 1-byte character (as f5vi's planner does)
    ours = vocab.encode([provenance["ref_text"] + " " + provenance["gen_text"]])[0]
    assert torch.equal(ours, text_ids)
    item = make_item(
        model.cfm,
        ref_mel,
        text_ids,
        int(data["e2e_duration"][0]),
        steps=int(provenance["nfe"]),
        cfg_strength=2.0,
        sway_sampling_coef=-1.0,
        method="euler",
        seed=int(provenance["seed"]),
    )
    ((_, out),) = list(SharedSampler(model.cfm, 1).run([item]))
    generated = out[int(data["e2e_ref_frames"][0]) :].float()
    assert generated.shape == data["e2e_mel"].shape
    assert float((generated - data["e2e_mel"]).abs().max()) < E2E_MEL_ATOL
    (audio,) = vocoder.decode_many([generated.transpose(0, 1)])
    expected = data["e2e_wave"]
    assert audio.shape == expected.shape and float(expected.abs().max()) > 0.005
    assert float((audio - expected).abs().max()) < E2E_WAVE_ATOL


def test_files_are_the_ones_the_script_wrote() -> None:
    """Every committed file is what ``bench/bigvgan_golden.py`` wrote (its digests); the set stays small."""
    import hashlib

    provenance = json.loads((BIGVGAN_GOLDEN / "provenance.json").read_text(encoding="utf-8"))
    files = {p.name for p in BIGVGAN_GOLDEN.iterdir() if p.is_file()} - {"provenance.json"}
    assert files == set(provenance["sha256"])
    for name, digest in provenance["sha256"].items():
        assert hashlib.sha256((BIGVGAN_GOLDEN / name).read_bytes()).hexdigest() == digest, name
    assert sum((BIGVGAN_GOLDEN / name).stat().st_size for name in files) < 400_000
