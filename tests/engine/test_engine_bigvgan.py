"""BigVGAN through the real engine: loading (directory, hub cache), the checkpoint/vocoder pairing, the
BigVGAN mel for references, and synthesis / streaming with a BigVGAN demo model (random weights)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from engine_helpers import REFERENCE_TEXT, SpokenClip, demo_settings, speak
from f5vi.engine.bigvgan_io import fold_weight_norm, load_bigvgan, save_random_bigvgan, tiny_bigvgan_config
from f5vi.engine.checkpoint import choose_mel_spec_type
from f5vi.engine.errors import ModelLoadError
from f5vi.engine.synthesizer import Synthesizer, dtype_for_checkpoint
from f5vi.engine.types import ReferenceVoice, SynthesisRequest
from f5vi.engine.vocoders import load_mel_vocoder, vocoder_kind

STREAM_ATOL = 2e-4
"""The Vocos path's bound between two ways of producing the same chunks (test_synthesizer.py)."""


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> SpokenClip:
    return speak(tmp_path_factory.mktemp("ref"), REFERENCE_TEXT)


@pytest.fixture(scope="module")
def bigvgan_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bigvgan-demo")
    demo_settings(root, vocoder="bigvgan")  # writes the model
    return root


@pytest.fixture(scope="module")
def vocos_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vocos-demo")
    demo_settings(root)
    return root


@pytest.fixture(scope="module")
def synthesizer(bigvgan_demo: Path) -> Synthesizer:
    return Synthesizer.from_settings(demo_settings(bigvgan_demo, vocoder="bigvgan", nfe_step=4))


def _request(reference: SpokenClip, text: str) -> SynthesisRequest:
    voice = ReferenceVoice(audio_path=reference.path, transcript=reference.transcript)
    return SynthesisRequest(text=text, reference=voice, nfe_step=4, seed=3)


def test_engine_reports_bigvgan_and_uses_its_mel(synthesizer: Synthesizer, reference: SpokenClip) -> None:
    assert synthesizer.info.vocoder_type == "bigvgan" and synthesizer.model.mel_spec_type == "bigvgan"
    prepared = synthesizer.references.get(reference.path)
    # BigVGAN's mel frames a wave of N samples as N // hop (the vocos mel gives N // hop + 1)
    assert prepared.num_frames == prepared.num_samples // 256 == prepared.audio_frames


def test_synthesis_and_stream_with_bigvgan(synthesizer: Synthesizer, reference: SpokenClip) -> None:
    text = (
        "Hà Nội là thủ đô của Việt Nam. Thành phố có nhiều hồ nước đẹp và những con phố cổ kính. "
        "Mùa thu ở đây trời trong xanh, gió nhẹ và lá vàng rơi khắp nơi. "
        "Người dân thường dậy sớm để tập thể dục quanh hồ, rồi ăn một bát phở nóng trước khi đi làm."
    )
    whole = synthesizer.synthesize(_request(reference, text))
    assert len(whole.chunks) >= 2  # the stream really joins several vocoded pieces
    assert whole.sample_rate == 24_000 and np.isfinite(whole.audio).all()
    assert float(np.abs(whole.audio).max()) > 0.001  # the random BigVGAN is not silent
    assert float(np.mean(np.abs(whole.audio) >= 0.999)) < 0.01  # nor clipped
    streamed = np.concatenate(list(synthesizer.stream(_request(reference, text))))
    assert streamed.shape == whole.audio.shape
    np.testing.assert_allclose(streamed, whole.audio, atol=STREAM_ATOL)


def test_vocos_checkpoint_with_bigvgan_vocoder_is_refused(vocos_demo: Path, bigvgan_demo: Path) -> None:
    settings = demo_settings(vocos_demo, vocoder="vocos").model_copy(
        update={"vocoder": str(bigvgan_demo / "bigvgan")}
    )
    with pytest.raises(ModelLoadError, match="needs the vocos vocoder") as info:
        Synthesizer.from_settings(settings)
    assert "F5VI_VOCODER" in str(info.value) and "charactr/vocos-mel-24khz" in str(info.value)


def test_bigvgan_checkpoint_with_vocos_vocoder_is_refused(vocos_demo: Path, bigvgan_demo: Path) -> None:
    settings = demo_settings(bigvgan_demo, vocoder="bigvgan").model_copy(
        update={"vocoder": str(vocos_demo / "vocos")}
    )
    with pytest.raises(ModelLoadError, match="needs the bigvgan vocoder") as info:
        Synthesizer.from_settings(settings)
    assert "nvidia/bigvgan_v2_24khz_100band_256x" in str(info.value)


def test_mel_spec_type_from_arch_name_config_or_path() -> None:
    assert choose_mel_spec_type("F5TTS_Base_bigvgan", None, "x/model.pt") == "bigvgan"
    assert choose_mel_spec_type("F5TTS_Base", None, "x/model.pt") == "vocos"
    assert choose_mel_spec_type(None, {"mel_spec": {"mel_spec_type": "bigvgan"}}, "x") == "bigvgan"
    assert choose_mel_spec_type(None, {"model": {"mel_spec": {"mel_spec_type": "vocos"}}}, "x") == "vocos"
    assert choose_mel_spec_type(None, None, "SWivid/F5-TTS/F5TTS_Base_bigvgan/model_1250000.pt") == "bigvgan"
    assert choose_mel_spec_type(None, None, "hynt/F5-TTS-Vietnamese-ViVoice/model_last.pt") == "vocos"
    with pytest.raises(ModelLoadError, match="mel_spec_type"):
        choose_mel_spec_type(None, {"mel_spec": {"mel_spec_type": "hifigan"}}, "x")


def test_vocoder_kind_by_files_or_name(vocos_demo: Path, bigvgan_demo: Path) -> None:
    assert vocoder_kind(bigvgan_demo / "bigvgan") == "bigvgan"
    assert vocoder_kind(vocos_demo / "vocos") == "vocos"
    assert vocoder_kind("nvidia/bigvgan_v2_24khz_100band_256x") == "bigvgan"
    assert vocoder_kind("charactr/vocos-mel-24khz") == "vocos"


def test_bigvgan_loads_from_the_hub_cache_offline(
    bigvgan_demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub id goes through the same hub helper as Vocos: cached files load with HF_HUB_OFFLINE=1."""
    import huggingface_hub.constants as constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    repo = cache / "models--nvidia--bigvgan_v2_24khz_100band_256x"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name in ("config.json", "bigvgan_generator.pt"):
        shutil.copy(bigvgan_demo / "bigvgan" / name, repo / "snapshots" / commit / name)
    vocoder = load_mel_vocoder("nvidia/bigvgan_v2_24khz_100band_256x")
    assert vocoder.kind == "bigvgan"
    shutil.rmtree(repo)
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        load_mel_vocoder("nvidia/bigvgan_v2_24khz_100band_256x")


@pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")
def test_weight_norm_is_folded_as_torch_removes_it(tmp_path: Path) -> None:
    conv = torch.nn.utils.weight_norm(torch.nn.Conv1d(4, 3, 5))
    with torch.no_grad():
        conv.weight_g.mul_(1.7)
    state = {k: v.detach().clone() for k, v in conv.state_dict().items()}
    torch.nn.utils.remove_weight_norm(conv)
    folded = fold_weight_norm({f"c.{k}": v for k, v in state.items()})
    assert torch.equal(folded["c.weight"], conv.weight.detach())
    with pytest.raises(ModelLoadError, match="weight_v"):
        fold_weight_norm({"c.weight_g": state["weight_g"]})


def test_bad_bigvgan_files_are_load_errors(tmp_path: Path) -> None:
    directory = save_random_bigvgan(tmp_path / "v", config=tiny_bigvgan_config())
    checkpoint = torch.load(directory / "bigvgan_generator.pt", weights_only=True)
    del checkpoint["generator"]["conv_pre.bias"]
    torch.save(checkpoint, directory / "bigvgan_generator.pt")
    with pytest.raises(ModelLoadError, match=r"conv_pre\.bias"):
        load_bigvgan(directory)
    (directory / "bigvgan_generator.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="cannot read BigVGAN weights"):
        load_bigvgan(directory)
    (directory / "config.json").write_text('{"upsample_rates": [2]}')
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        load_bigvgan(directory)
    sf.write(tmp_path / "x.wav", np.zeros(10), 24_000)
    with pytest.raises(ModelLoadError, match="neither a directory nor a repo id"):
        load_bigvgan(tmp_path / "x.wav")


def test_cli_make_demo_model_with_bigvgan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from f5vi.cli.app import main

    assert main(["make-demo-model", str(tmp_path / "demo"), "--vocoder", "bigvgan"]) == 0
    out = capsys.readouterr().out
    assert "DEMO" in out and f"F5VI_VOCODER={tmp_path / 'demo' / 'bigvgan'}" in out
    assert (
        vocoder_kind(tmp_path / "demo" / "bigvgan") == "bigvgan"
        and not (tmp_path / "demo" / "vocos").exists()
    )
    assert load_mel_vocoder(tmp_path / "demo" / "bigvgan").kind == "bigvgan"


def test_a_bigvgan_checkpoint_runs_in_fp32_unless_a_dtype_is_asked_for() -> None:
    """As upstream: its ``load_model`` keeps a BigVGAN-mel checkpoint in fp32 (fp16 on GPUs otherwise)."""
    assert dtype_for_checkpoint("auto", torch.float16, "bigvgan") == torch.float32
    assert dtype_for_checkpoint("auto", torch.float16, "vocos") == torch.float16
    assert dtype_for_checkpoint("bfloat16", torch.bfloat16, "bigvgan") == torch.bfloat16
