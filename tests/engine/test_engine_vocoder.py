"""Our Vocos against the reference ``vocos`` package, plus loading from directories and the hub."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from engine_helpers import NetworkWaits
from f5vi.engine.errors import ModelLoadError
from f5vi.engine.vocoder import Vocoder, VocosConfig, load_vocoder, save_random_vocos

vocos = pytest.importorskip("vocos", reason="the reference vocos package is in the dev extras")

# The published charactr/vocos-mel-24khz config.yaml, written out independently of our own writer.
PUBLISHED_CONFIG = """\
feature_extractor:
  class_path: vocos.feature_extractors.MelSpectrogramFeatures
  init_args:
    sample_rate: 24000
    n_fft: 1024
    hop_length: 256
    n_mels: 100
    padding: center

backbone:
  class_path: vocos.models.VocosBackbone
  init_args:
    input_channels: 100
    dim: 512
    intermediate_dim: 1536
    num_layers: 8

head:
  class_path: vocos.heads.ISTFTHead
  init_args:
    dim: 512
    n_fft: 1024
    hop_length: 256
    padding: same
"""


def _random_state(reference: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Every learned tensor drawn at random (biases, norms and layer scales too, so none is trivial)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in reference.state_dict().items():
        if key.endswith("window") or key.endswith(".fb"):
            state[key] = value.clone()
        elif key.endswith("norm.weight"):
            state[key] = 1.0 + 0.1 * torch.randn(value.shape, generator=gen)
        else:
            state[key] = 0.05 * torch.randn(value.shape, generator=gen)
    return state


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory) -> Path:
    """A directory in the published layout holding a random state dict, plus the loaded reference model."""
    directory = tmp_path_factory.mktemp("vocos_ref")
    (directory / "config.yaml").write_text(PUBLISHED_CONFIG, encoding="utf-8")
    reference = vocos.Vocos.from_hparams(str(directory / "config.yaml"))
    torch.save(_random_state(reference, seed=7), directory / "pytorch_model.bin")
    return directory


@pytest.fixture(scope="module")
def reference_model(reference_dir):
    model = vocos.Vocos.from_hparams(str(reference_dir / "config.yaml"))
    model.load_state_dict(torch.load(reference_dir / "pytorch_model.bin", map_location="cpu"))
    return model.eval()


def test_state_dict_keys_and_shapes_match_reference():
    ref = vocos.Vocos(
        feature_extractor=vocos.feature_extractors.MelSpectrogramFeatures(),
        backbone=vocos.models.VocosBackbone(input_channels=100, dim=512, intermediate_dim=1536, num_layers=8),
        head=vocos.heads.ISTFTHead(dim=512, n_fft=1024, hop_length=256, padding="same"),
    )
    ours = {k: tuple(v.shape) for k, v in Vocoder().state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert ours == theirs
    assert len(ours) == 83
    assert "feature_extractor.mel_spec.mel_scale.fb" in ours
    assert sum(p.numel() for p in Vocoder().parameters()) == 13_531_650


def test_decode_matches_reference(reference_dir, reference_model):
    ours = load_vocoder(reference_dir)
    gen = torch.Generator().manual_seed(3)
    mel = torch.randn(3, 100, 75, generator=gen) * 2.0 - 4.0
    expected = reference_model.decode(mel)
    got = ours.decode(mel)
    assert got.shape == expected.shape == (3, 75 * 256)
    assert got.dtype == torch.float32
    max_diff = (got - expected).abs().max().item()
    assert expected.abs().max().item() > 0.05  # the comparison is not between two near-zero signals
    assert max_diff <= 1e-5, max_diff


def test_copy_synthesis_features_match_reference(reference_dir, reference_model):
    ours = load_vocoder(reference_dir)
    wave = 0.3 * torch.sin(torch.arange(12_000) * 2 * torch.pi * 330 / 24_000).unsqueeze(0)
    wave[:, 6000:] = 0.0  # silent half exercises Vocos' 1e-7 log floor (F5's mel uses 1e-5)
    expected = reference_model.feature_extractor(wave)
    assert (ours.features(wave) - expected).abs().max().item() <= 1e-5
    assert (ours.decode(ours.features(wave)) - reference_model(wave)).abs().max().item() <= 1e-5


def test_decode_many_equals_individual_decodes(reference_dir):
    ours = load_vocoder(reference_dir)
    gen = torch.Generator().manual_seed(5)
    mels = [torch.randn(100, n, generator=gen) - 3.0 for n in (40, 64, 40, 17)]
    waves = ours.decode_many(mels)
    assert [w.shape[0] for w in waves] == [40 * 256, 64 * 256, 40 * 256, 17 * 256]
    for mel, wave in zip(mels, waves, strict=True):
        assert torch.allclose(wave, ours.decode(mel.unsqueeze(0))[0], atol=1e-6)
    with pytest.raises(ValueError):
        ours.decode(torch.zeros(1, 80, 10))


def test_bfloat16_backbone_stays_close_to_float32(reference_dir):
    fp32 = load_vocoder(reference_dir)
    bf16 = load_vocoder(reference_dir, dtype=torch.bfloat16)
    assert bf16.backbone.embed.weight.dtype == torch.bfloat16
    assert bf16.head.istft.window.dtype == torch.float32
    mel = torch.randn(1, 100, 30, generator=torch.Generator().manual_seed(9)) - 3.0
    a, b = fp32.decode(mel), bf16.decode(mel)
    assert b.dtype == torch.float32
    corr = torch.corrcoef(torch.stack([a[0], b[0]]))[0, 1].item()
    assert corr > 0.999, corr


def test_save_random_vocos_is_published_layout(tmp_path):
    directory = save_random_vocos(tmp_path / "v", seed=1)
    assert sorted(p.name for p in directory.iterdir()) == ["config.yaml", "pytorch_model.bin"]
    # The reference package reads our files strictly.
    reference = vocos.Vocos.from_hparams(str(directory / "config.yaml"))
    reference.load_state_dict(torch.load(directory / "pytorch_model.bin", map_location="cpu"))
    reference.eval()
    ours = load_vocoder(directory)
    mel = torch.randn(1, 100, 20, generator=torch.Generator().manual_seed(2)) - 3.0
    assert (ours.decode(mel) - reference.decode(mel)).abs().max().item() <= 1e-5
    assert yaml.safe_load((directory / "config.yaml").read_text()) == yaml.safe_load(PUBLISHED_CONFIG)


def test_save_random_vocos_is_seeded(tmp_path):
    small = VocosConfig(dim=64, intermediate_dim=96)  # same layout, fast to write
    a = torch.load(save_random_vocos(tmp_path / "a", seed=1, config=small) / "pytorch_model.bin")
    b = torch.load(save_random_vocos(tmp_path / "b", seed=1, config=small) / "pytorch_model.bin")
    c = torch.load(save_random_vocos(tmp_path / "c", seed=2, config=small) / "pytorch_model.bin")
    key = "backbone.convnext.3.pwconv1.weight"
    assert torch.equal(a[key], b[key])
    assert not torch.equal(a[key], c[key])
    assert torch.all(a["backbone.convnext.0.gamma"] == 1 / 8)


def test_checkpoint_without_feature_buffers_loads(tmp_path, reference_dir):
    state = torch.load(reference_dir / "pytorch_model.bin")
    stripped = {k: v for k, v in state.items() if not k.startswith("feature_extractor.")}
    directory = tmp_path / "stripped"
    directory.mkdir()
    (directory / "config.yaml").write_text(PUBLISHED_CONFIG)
    torch.save(stripped, directory / "pytorch_model.bin")
    model = load_vocoder(directory)
    assert torch.equal(model.backbone.embed.weight, state["backbone.embed.weight"])
    assert torch.equal(
        model.feature_extractor.mel_spec.mel_scale.fb, state["feature_extractor.mel_spec.mel_scale.fb"]
    )


def test_hub_id_offline_fails_fast_with_model_load_error(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    waits = NetworkWaits(monkeypatch)  # "fast": no retry back-off, no connection attempt
    with pytest.raises(ModelLoadError) as info:
        load_vocoder("f5vi-tests/vocos-not-cached-anywhere")
    waits.assert_none()
    assert "f5vi-tests/vocos-not-cached-anywhere" in str(info.value)
    assert "HF_HUB_OFFLINE" in str(info.value)
    assert info.value.code == "model_load_failed"


def _write_dir(directory: Path, config: str | dict, state: dict | bytes | None) -> Path:
    directory.mkdir(parents=True)
    text = config if isinstance(config, str) else yaml.safe_dump(config)
    (directory / "config.yaml").write_text(text)
    if isinstance(state, bytes):
        (directory / "pytorch_model.bin").write_bytes(state)
    elif state is not None:
        torch.save(state, directory / "pytorch_model.bin")
    return directory


def test_bad_local_sources_raise_model_load_error(tmp_path, reference_dir):
    good_state = torch.load(reference_dir / "pytorch_model.bin")
    published = yaml.safe_load(PUBLISHED_CONFIG)

    def variant(section: str, **changes):
        cfg = yaml.safe_load(PUBLISHED_CONFIG)
        cfg[section]["init_args"].update(changes)
        return cfg

    resnet = yaml.safe_load(PUBLISHED_CONFIG)
    resnet["backbone"]["class_path"] = "vocos.models.VocosResNetBackbone"
    narrow_state = Vocoder(VocosConfig(dim=64, intermediate_dim=96)).state_dict()  # same keys, other shapes
    cases = {
        "missing weights": _write_dir(tmp_path / "a", published, None),
        "corrupt weights": _write_dir(tmp_path / "b", published, b"not a torch file"),
        "other backbone": _write_dir(tmp_path / "c", resnet, good_state),
        "44.1 kHz vocoder": _write_dir(
            tmp_path / "d", variant("feature_extractor", sample_rate=44100), good_state
        ),
        "shape mismatch": _write_dir(tmp_path / "e", published, narrow_state),
        "broken yaml": _write_dir(tmp_path / "f", "backbone: [unclosed", good_state),
        "not a directory": reference_dir / "pytorch_model.bin",
        "missing path": tmp_path / "does" / "not" / "exist",
    }
    for name, source in cases.items():
        with pytest.raises(ModelLoadError) as info:
            load_vocoder(source)
        print(f"{name}: {info.value}")
    extra = dict(good_state, **{"backbone.extra.weight": torch.zeros(1)})
    with pytest.raises(ModelLoadError, match="unexpected"):
        load_vocoder(_write_dir(tmp_path / "g", published, extra))


def test_hub_id_served_from_local_cache_offline(tmp_path, monkeypatch, reference_dir):
    """An already-downloaded repo loads without the network (the production offline set-up)."""
    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--f5vi-tests--cached-vocos"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    (snapshot / "config.yaml").write_text(PUBLISHED_CONFIG)
    (snapshot / "pytorch_model.bin").write_bytes((reference_dir / "pytorch_model.bin").read_bytes())
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    model = load_vocoder("f5vi-tests/cached-vocos")
    expected = torch.load(reference_dir / "pytorch_model.bin")["head.out.weight"]
    assert torch.equal(model.head.out.weight, expected)
