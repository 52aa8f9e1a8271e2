"""Make the BigVGAN golden data (``tests/golden/bigvgan/``) with upstream code. Runs INSIDE the upstream venv.

Imports nothing from f5vi: NVIDIA's ``bigvgan`` package (PyPI ``bigvgan==2.4.1``, installed ``--no-deps``
into the upstream venv) and upstream F5-TTS (``f5-tts==1.1.22``, see ``bench/upstream_env.py``).
Upstream's ``load_vocoder("bigvgan", ...)`` imports ``third_party.BigVGAN.bigvgan`` (a git submodule
that the PyPI wheel does not ship); this script registers NVIDIA's package under that name, which is
the same code.

    python -m bench.upstream_env                       # once: the upstream venv
    bench/out/upstream-venv/bin/python -m pip install --no-deps bigvgan==2.4.1
    bench/out/upstream-venv/bin/python bench/bigvgan_golden.py tests/golden/bigvgan

What it writes (every file is read by ``tests/engine/test_bigvgan_golden.py``):

* ``config.json``: NVIDIA's 24 kHz / 100-band / 256x config with ``upsample_initial_channel`` 64
  instead of 1536 (same structure: 6 upsamplers, 3 AMP blocks each, SnakeBeta, log-scale parameters).
* ``generator.safetensors.xz``: the generator's parameters in NVIDIA's exact state-dict layout
  (``weight_g``/``weight_v``), drawn on a coarse grid so they compress: each tensor is stored as int8
  ``q`` with the value ``q * SCALES[suffix]``; the anti-aliasing filter buffers (identical in every
  ``Activation1d``) once as ``filter.up`` / ``filter.down``; the header's ``layout`` holds ``keys``
  (NVIDIA's keys in order) and ``scales`` (one metadata entry: safetensors writes several in any order,
  which would make the file's bytes differ from run to run).
  ``bigvgan_generator.pt`` = ``{"generator": state_dict}`` is rebuilt from this by the tests.
* ``data.safetensors`` (xz):
  ``ref_pcm16`` the first 1.25 s of ``voices/vi_north_male.wav`` (raised to RMS >= 0.12, int16 samples;
  ``wave = ref_pcm16 / 32768``); ``ref_mel`` upstream ``get_bigvgan_mel_spectrogram(wave)``;
  ``voc_mel`` = ``ref_mel[..., :40]``, ``voc_wave`` NVIDIA's generator (weight norm removed, as
  upstream's ``load_vocoder`` does) on it; ``e2e_*``: upstream ``infer_batch_process`` exactly as
  ``infer_process`` calls it (one chunk) with the golden ``tiny_v0`` DiT built with
  ``mel_spec_type="bigvgan"``, this vocoder, NFE 8, cfg 2, sway -1, speed 1, ``torch.manual_seed(1234)``:
  ``e2e_text_ids``, ``e2e_duration``, ``e2e_ref_frames`` (``samples // hop``), ``e2e_mel`` (generated
  frames, fp32), ``e2e_wave`` (the final audio).
* ``provenance.json``: versions, settings and the SHA-256 of every file written.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bigvgan as nvidia_bigvgan_pkg
import numpy as np
import soundfile as sf
import torch
from bigvgan import bigvgan as nvidia_bigvgan
from safetensors.torch import save

from bench.upstream_runner import STUBBED

# huggingface_hub >= 1.0 no longer passes ``proxies``/``resume_download`` to ``_from_pretrained``, which
# bigvgan 2.4.1 requires as keyword arguments: supply the old defaults (compatibility only).
_nvidia_from_pretrained = nvidia_bigvgan.BigVGAN._from_pretrained.__func__  # type: ignore[attr-defined]


def _from_pretrained_compat(cls, **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("proxies", None)
    kwargs.setdefault("resume_download", False)
    return _nvidia_from_pretrained(cls, **kwargs)


nvidia_bigvgan.BigVGAN._from_pretrained = classmethod(_from_pretrained_compat)  # type: ignore[method-assign]

third_party = types.ModuleType("third_party")
third_party_bigvgan = types.ModuleType("third_party.BigVGAN")
third_party_bigvgan.bigvgan = nvidia_bigvgan  # type: ignore[attr-defined]
third_party.BigVGAN = third_party_bigvgan  # type: ignore[attr-defined]
sys.modules.update({"third_party": third_party, "third_party.BigVGAN": third_party_bigvgan})

from f5_tts.infer.utils_infer import chunk_text, infer_batch_process, load_model, load_vocoder  # noqa: E402
from f5_tts.model import DiT  # noqa: E402
from f5_tts.model.modules import get_bigvgan_mel_spectrogram  # noqa: E402
from f5_tts.model.utils import get_tokenizer, list_str_to_idx  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TINY_DIT = REPO / "tests" / "golden" / "tiny_v0"
VOICE = REPO / "voices" / "vi_north_male.wav"
SCALES = {"weight_v": 1 / 8, "weight_g": 1 / 64, "bias": 1 / 64, "alpha": 1 / 64, "beta": 1 / 64}
REF_TEXT = "xin chào, tôi là giọng đọc mẫu miền bắc. "
GEN_TEXT = "hôm nay trời se lạnh."
SEED = 1234
NFE = 8

CONFIG = {
    "resblock": "1",
    "num_gpus": 0,
    "batch_size": 32,
    "learning_rate": 0.0001,
    "adam_b1": 0.8,
    "adam_b2": 0.99,
    "lr_decay": 0.9999996,
    "seed": 1234,
    "upsample_rates": [4, 4, 2, 2, 2, 2],
    "upsample_kernel_sizes": [8, 8, 4, 4, 4, 4],
    "upsample_initial_channel": 64,
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "use_tanh_at_final": False,
    "use_bias_at_final": False,
    "activation": "snakebeta",
    "snake_logscale": True,
    "use_cqtd_instead_of_mrd": True,
    "segment_size": 65536,
    "num_mels": 100,
    "num_freq": 1025,
    "n_fft": 1024,
    "hop_size": 256,
    "win_size": 1024,
    "sampling_rate": 24000,
    "fmin": 0,
    "fmax": None,
    "fmax_for_loss": None,
    "num_workers": 4,
}


def _suffix(key: str) -> str:
    return key.rsplit(".", 1)[1]


def random_generator(directory: Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """NVIDIA's generator with coarse random parameters, saved in its layout; returns (q tensors, keys)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(CONFIG, indent=4), encoding="utf-8")
    h = nvidia_bigvgan.load_hparams_from_json(directory / "config.json")
    model = nvidia_bigvgan.BigVGAN(h, use_cuda_kernel=False)
    state = model.state_dict()
    generator = torch.Generator().manual_seed(0)
    ranges = {
        "weight_v": (-8, 9),
        "weight_g": (8, 49),
        "bias": (-8, 9),
        "alpha": (-24, 25),
        "beta": (-24, 25),
    }
    stored: dict[str, torch.Tensor] = {}
    up = down = None
    for key, value in state.items():
        suffix = _suffix(key)
        if key.endswith("upsample.filter"):
            up = value if up is None else up
            assert torch.equal(up, value)
            continue
        if key.endswith("lowpass.filter"):
            down = value if down is None else down
            assert torch.equal(down, value)
            continue
        low, high = ranges[suffix]
        q = torch.randint(low, high, value.shape, generator=generator, dtype=torch.int8)
        stored[key] = q
        state[key] = q.float() * SCALES[suffix]
    model.load_state_dict(state, strict=True)
    assert up is not None and down is not None
    stored["filter.up"], stored["filter.down"] = up.contiguous(), down.contiguous()
    torch.save({"generator": model.state_dict()}, directory / "bigvgan_generator.pt")
    return stored, list(state)


def reference_pcm() -> torch.Tensor:
    wave, sr = sf.read(VOICE, dtype="float32")
    assert sr == 24000
    wave = wave[: int(1.25 * sr)]
    rms = float(np.sqrt(np.mean(wave**2)))
    wave = wave * max(1.0, 0.12 / rms)
    return torch.from_numpy(np.clip(np.round(wave * 32768), -32768, 32767).astype(np.int16))


def main(out: Path) -> None:
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    work = REPO / "bench" / "out" / "bigvgan_golden_work"
    q, keys = random_generator(work)
    (out / "config.json").write_bytes((work / "config.json").read_bytes())
    (out / "generator.safetensors.xz").write_bytes(
        lzma.compress(save(q, metadata={"layout": json.dumps({"keys": keys, "scales": SCALES})}), preset=9)
    )

    pcm = reference_pcm()
    wave = pcm.float().unsqueeze(0) / 32768
    ref_mel = get_bigvgan_mel_spectrogram(wave)  # [1, 100, T]

    vocoder = load_vocoder("bigvgan", is_local=True, local_path=str(work), device="cpu")
    voc_mel = ref_mel[..., :40].contiguous()
    with torch.inference_mode():
        voc_wave = vocoder(voc_mel)

    config = json.loads((TINY_DIT / "config.json").read_text(encoding="utf-8"))
    model = load_model(
        DiT,
        config["arch"],
        str(TINY_DIT / "model.pt"),
        mel_spec_type="bigvgan",
        vocab_file=str(TINY_DIT / "vocab.txt"),
        device="cpu",
    )
    vocab_map, _ = get_tokenizer(str(TINY_DIT / "vocab.txt"), "custom")
    seconds = wave.shape[-1] / 24000
    max_chars = int(len(REF_TEXT.encode("utf-8")) / seconds * (22 - seconds) * 1.0)
    batches = chunk_text(GEN_TEXT, max_chars=max_chars)
    assert batches == [GEN_TEXT], batches
    recorded: dict[str, torch.Tensor] = {}
    original_sample = model.sample

    def recording_sample(*args, **kwargs):  # the inputs and outputs of the one ODE call
        result = original_sample(*args, **kwargs)
        recorded["duration"] = torch.tensor([int(kwargs["duration"])])
        recorded["text_ids"] = list_str_to_idx(kwargs["text"], vocab_map)
        recorded["full_mel"] = result[0].float()
        return result

    model.sample = recording_sample
    torch.manual_seed(SEED)
    e2e_wave, sr, _ = next(
        infer_batch_process(
            (wave, 24000),
            REF_TEXT,
            batches,
            model,
            vocoder,
            mel_spec_type="bigvgan",
            progress=None,
            target_rms=0.1,
            cross_fade_duration=0.15,
            nfe_step=NFE,
            cfg_strength=2.0,
            sway_sampling_coef=-1.0,
            speed=1.0,
            device="cpu",
        )
    )
    ref_frames = wave.shape[-1] // 256
    data = {
        "ref_pcm16": pcm,
        "ref_mel": ref_mel.contiguous(),
        "voc_mel": voc_mel,
        "voc_wave": voc_wave.contiguous(),
        "e2e_text_ids": recorded["text_ids"].contiguous(),
        "e2e_duration": recorded["duration"],
        "e2e_ref_frames": torch.tensor([ref_frames]),
        "e2e_mel": recorded["full_mel"][0, ref_frames:].contiguous(),
        "e2e_wave": torch.from_numpy(np.asarray(e2e_wave, dtype=np.float32)),
    }
    (out / "data.safetensors.xz").write_bytes(lzma.compress(save(data), preset=9))
    provenance = {
        "made_by": "bench/bigvgan_golden.py",
        "bigvgan": getattr(nvidia_bigvgan_pkg, "__version__", "2.4.1 (PyPI)"),
        "f5_tts": "1.1.22 (PyPI)",
        "torch": torch.__version__,
        "stubbed_training_modules": STUBBED,
        "ref_text": REF_TEXT,
        "gen_text": GEN_TEXT,
        "seed": SEED,
        "nfe": NFE,
        "voc_wave_absmax": float(voc_wave.abs().max()),
        "e2e_seconds": len(e2e_wave) / sr,
        "sha256": {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.iterdir())
            if p.name != "provenance.json"
        },
    }
    (out / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in provenance.items() if k != "sha256"}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "tests" / "golden" / "bigvgan")
