"""Checkpoint layout, architecture presets against upstream's manifests, and loading errors."""

from __future__ import annotations

import gc
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine_helpers import NetworkWaits
from f5vi.engine.checkpoint import (
    build_model,
    count_parameters,
    count_vocab_entries,
    load_model,
    load_state_dict_file,
    save_upstream_checkpoint,
)
from f5vi.engine.device import cpu_runs_natively
from f5vi.engine.errors import ModelLoadError
from f5vi.engine.model.configs import ARCHS, arch_from_config_dict, infer_arch, preset_name

PRESETS = ("F5TTS_Base", "F5TTS_v1_Base", "F5TTS_Small", "E2TTS_Base")


def _manifest(golden_dir: Path, name: str) -> dict:
    return json.loads((golden_dir / f"manifest_{name}.json").read_text(encoding="utf-8"))


def _meta_model(name: str, text_num_embeds: int = 2545):
    with torch.device("meta"):
        return build_model(ARCHS[name], text_num_embeds)


def _write_vocab(path: Path, size: int) -> Path:
    # unique one-character tokens, a space first as upstream's vocabs have
    path.write_text("".join(f"{chr(0x4E00 + i) if i else ' '}\n" for i in range(size)), encoding="utf-8")
    return path


def _tiny_dir(golden_dir: Path, tmp_path: Path, name: str = "tiny_v0") -> Path:
    target = tmp_path / name
    shutil.copytree(golden_dir / name, target)
    for p in target.iterdir():
        p.chmod(0o644)
    return target


def _fill_random(tensors) -> None:
    """Cheap pseudo-random weights: slices of one random pool at random offsets (drawing 337M fresh
    numbers costs seconds on the shared 2-core machine; the layout tests only need distinct values)."""
    gen = torch.Generator().manual_seed(0)
    pool = torch.empty(1 << 20, dtype=torch.float16).uniform_(-0.05, 0.05, generator=gen)
    with torch.no_grad():
        for tensor in tensors:
            flat = tensor.view(-1)
            start = int(torch.randint(0, pool.numel(), (1,), generator=gen))
            source = torch.cat((pool[start:], pool[:start]))
            for offset in range(0, flat.numel(), source.numel()):
                chunk = flat[offset : offset + source.numel()]
                chunk.copy_(source[: chunk.numel()])


# ------------------------------------------------------------------------------------------- presets


@pytest.mark.parametrize("name", PRESETS)
def test_preset_matches_manifest_keys_shapes_and_size(golden_dir: Path, name: str) -> None:
    manifest = _manifest(golden_dir, name)
    assert manifest["text_num_embeds"] == 2545 and manifest["mel_dim"] == 100
    assert arch_from_config_dict(manifest) == ARCHS[name]
    assert ARCHS[name].backbone == manifest["backbone"]

    cfm = _meta_model(name, manifest["text_num_embeds"])
    ours = {f"ema_model.{k}": list(v.shape) for k, v in cfm.state_dict().items()}
    ours.update(initted=[], step=[])
    assert ours == manifest["checkpoint_keys"]
    assert count_parameters(cfm) == manifest["num_params"]


def test_readme_parameter_counts() -> None:
    assert count_parameters(_meta_model("F5TTS_Base")) == 337_096_836
    assert count_parameters(_meta_model("E2TTS_Base")) == 333_470_476
    assert count_parameters(_meta_model("F5TTS_Small")) == 159_228_804


@pytest.mark.parametrize("name", PRESETS)
def test_infer_arch_recognises_manifest(golden_dir: Path, name: str) -> None:
    manifest = _manifest(golden_dir, name)
    state = {k: torch.empty(shape, device="meta") for k, shape in manifest["checkpoint_keys"].items()}
    hint = "SWivid/F5-TTS/F5TTS_v1_Base/model_1250000.safetensors" if "v1" in name else "model_last.pt"
    arch, text_num_embeds = infer_arch(state, hint=hint)
    assert arch == ARCHS[name]
    assert preset_name(arch) == name
    assert text_num_embeds == 2545


def test_infer_arch_rejects_foreign_state_dict() -> None:
    with pytest.raises(ValueError, match="not an F5-TTS"):
        infer_arch({"encoder.weight": torch.zeros(2, 2)})


# ------------------------------------------------------------------------------------- full-size layout


@pytest.mark.parametrize("name", ["F5TTS_Base", "E2TTS_Base"])
def test_full_size_upstream_layout_roundtrip(golden_dir: Path, tmp_path: Path, name: str) -> None:
    """Random fp16 weights of the real size, saved as upstream does, load strictly (fp32 on CPU)."""
    cfm = _meta_model(name).half().to_empty(device="cpu")
    _fill_random(cfm.state_dict().values())
    probes = {
        k: cfm.state_dict()[k].float().clone()
        for k in ("transformer.text_embed.text_embed.weight", "transformer.proj_out.bias")
    }
    save_upstream_checkpoint(cfm, tmp_path / "model_last.pt", step=7)
    del cfm
    gc.collect()
    _write_vocab(tmp_path / "vocab.txt", 2545)

    raw = torch.load(tmp_path / "model_last.pt", map_location="cpu", weights_only=True, mmap=True)
    assert list(raw) == ["ema_model_state_dict"]
    layout = {k: list(v.shape) for k, v in raw["ema_model_state_dict"].items()}
    assert layout == _manifest(golden_dir, name)["checkpoint_keys"]
    assert raw["ema_model_state_dict"]["step"].item() == 7 and raw["ema_model_state_dict"]["initted"].item()
    del raw

    loaded = load_model(tmp_path)
    assert loaded.arch_name == name
    assert loaded.num_params == _manifest(golden_dir, name)["num_params"]
    assert loaded.checkpoint_path == tmp_path / "model_last.pt"
    assert loaded.dtype == torch.float32 and not loaded.is_demo
    state = loaded.cfm.state_dict()
    for key, value in probes.items():
        assert state[key].dtype == torch.float32
        torch.testing.assert_close(state[key], value, atol=0, rtol=0)
    assert all(not p.requires_grad for p in loaded.cfm.parameters())
    del loaded, state
    gc.collect()


# ----------------------------------------------------------------------------------------- tiny layout


def test_save_safetensors_layout_matches_golden(golden_dir: Path, tmp_path: Path) -> None:
    model = load_model(golden_dir / "tiny_v0", checkpoint_file="model.pt")
    save_upstream_checkpoint(model.cfm, tmp_path / "out.safetensors")
    ours = load_file(str(tmp_path / "out.safetensors"))
    golden = load_file(str(golden_dir / "tiny_v0" / "model.safetensors"))
    assert set(ours) == set(golden)
    for key in golden:
        torch.testing.assert_close(ours[key], golden[key], atol=0, rtol=0)


def test_save_pt_layout_matches_golden(golden_dir: Path, tmp_path: Path) -> None:
    model = load_model(golden_dir / "tiny_e2", checkpoint_file="model.safetensors")
    save_upstream_checkpoint(model.cfm, tmp_path / "model_last.pt")
    ours = torch.load(tmp_path / "model_last.pt", weights_only=True)["ema_model_state_dict"]
    golden = torch.load(golden_dir / "tiny_e2" / "model.pt", weights_only=True)["ema_model_state_dict"]
    assert set(ours) == set(golden)
    assert ours["initted"].dtype == golden["initted"].dtype and ours["step"].dtype == golden["step"].dtype


def test_both_golden_formats_give_identical_weights(golden_dir: Path) -> None:
    a = load_state_dict_file(golden_dir / "tiny_v1" / "model.pt")
    b = load_state_dict_file(golden_dir / "tiny_v1" / "model.safetensors")
    assert set(a) == set(b)
    assert "initted" not in a and "step" not in a
    assert all(k.startswith("transformer.") for k in a)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=0, rtol=0)


def test_state_dict_selection_and_cleanup(golden_dir: Path, tmp_path: Path) -> None:
    ema = torch.load(golden_dir / "tiny_v0" / "model.pt", weights_only=True)["ema_model_state_dict"]
    plain = {k.removeprefix("ema_model."): v for k, v in ema.items() if k not in ("initted", "step")}
    expected = load_state_dict_file(golden_dir / "tiny_v0" / "model.pt")

    # a training checkpoint: EMA weights win over the raw model weights
    training = {
        "model_state_dict": {k: torch.zeros_like(v) for k, v in plain.items()},
        "ema_model_state_dict": ema,
        "optimizer_state_dict": {"state": {}, "param_groups": []},
        "update": 5,
    }
    torch.save(training, tmp_path / "training.pt")
    got = load_state_dict_file(tmp_path / "training.pt")
    assert set(got) == set(expected)
    torch.testing.assert_close(got[next(iter(got))], expected[next(iter(got))], atol=0, rtol=0)

    # model_state_dict only, raw state dict, old mel_spec buffers (dropped as upstream does)
    torch.save({"model_state_dict": plain}, tmp_path / "model_only.pt")
    assert set(load_state_dict_file(tmp_path / "model_only.pt")) == set(expected)
    with_mel = {**plain, "mel_spec.mel_stft.mel_scale.fb": torch.zeros(513, 100)}
    torch.save(with_mel, tmp_path / "raw.pt")
    assert set(load_state_dict_file(tmp_path / "raw.pt")) == set(expected)
    save_file(
        {f"model.{k}": v.contiguous() for k, v in plain.items()}, str(tmp_path / "prefixed.safetensors")
    )
    assert set(load_state_dict_file(tmp_path / "prefixed.safetensors")) == set(expected)


def test_unreadable_checkpoint_raises_model_load_error(tmp_path: Path) -> None:
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="cannot read checkpoint"):
        load_state_dict_file(tmp_path / "broken.pt")
    torch.save({"something": "else"}, tmp_path / "odd.pt")
    with pytest.raises(ModelLoadError, match="ema_model_state_dict"):
        load_state_dict_file(tmp_path / "odd.pt")
    with pytest.raises(ModelLoadError, match="not found"):
        load_state_dict_file(tmp_path / "missing.pt")


# --------------------------------------------------------------------------------------- load_model


def test_hub_id_offline_fails_fast_with_model_load_error(tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))  # empty cache
    monkeypatch.chdir(tmp_path)
    waits = NetworkWaits(monkeypatch)  # "fast": no retry back-off, no connection attempt
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE") as info:
        load_model("hynt/F5-TTS-Vietnamese-ViVoice")
    assert "hynt/F5-TTS-Vietnamese-ViVoice" in str(info.value)
    waits.assert_none()


def test_missing_local_source_is_a_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match="not found"):
        load_model("./relative/nope")


def test_vocab_not_matching_the_embedding_is_rejected(golden_dir: Path, tmp_path: Path) -> None:
    target = _tiny_dir(golden_dir, tmp_path)
    _write_vocab(target / "vocab.txt", 88)
    with pytest.raises(ModelLoadError, match=r"88 entries .* 90 rows \(expected 89\)"):
        load_model(target, checkpoint_file="model.pt")


def test_vocab_is_counted_as_upstream_does(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text(" \na\nb\na\n", encoding="utf-8")  # duplicate lines collapse in upstream's dict
    assert count_vocab_entries(path) == 3
    path.write_text("", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="empty"):
        count_vocab_entries(path)


def test_unexpected_and_missing_keys_are_listed(golden_dir: Path, tmp_path: Path) -> None:
    target = _tiny_dir(golden_dir, tmp_path)
    sd = load_file(str(target / "model.safetensors"))
    sd["ema_model.transformer.extra.weight"] = torch.zeros(3)
    del sd["ema_model.transformer.proj_out.bias"]
    save_file(sd, str(target / "model.safetensors"))
    with pytest.raises(ModelLoadError) as info:
        load_model(target, checkpoint_file="model.safetensors")
    message = str(info.value)
    assert "missing keys (1): transformer.proj_out.bias" in message
    assert "unexpected keys (1): transformer.extra.weight" in message


def test_wrong_architecture_is_rejected_with_shapes(golden_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not fit the model"):
        load_model(golden_dir / "tiny_v0", checkpoint_file="model.pt", arch="F5TTS_Small")
    with pytest.raises(ModelLoadError, match="unknown model architecture"):
        load_model(golden_dir / "tiny_v0", checkpoint_file="model.pt", arch="F5TTS_Huge")


def test_vietnamese_repo_layout_vocab_as_config_json(golden_dir: Path, tmp_path: Path) -> None:
    """hynt/F5-TTS-Vietnamese-ViVoice ships model_last.pt and its vocab under the name config.json."""
    target = tmp_path / "vivoice"
    target.mkdir()
    shutil.copy(golden_dir / "tiny_v0" / "model.pt", target / "model_last.pt")
    shutil.copy(golden_dir / "tiny_v0" / "vocab.txt", target / "config.json")
    loaded = load_model(target)
    assert loaded.vocab_path == target / "config.json"
    assert loaded.checkpoint_path == target / "model_last.pt"
    assert (loaded.arch.text_mask_padding, loaded.arch.pe_attn_head) == (False, 1)  # v0
    reference = load_model(golden_dir / "tiny_v0", checkpoint_file="model.pt")
    for key, value in reference.cfm.state_dict().items():
        torch.testing.assert_close(loaded.cfm.state_dict()[key], value, atol=0, rtol=0)


def test_checkpoint_file_source_and_demo_marker(golden_dir: Path, tmp_path: Path) -> None:
    target = _tiny_dir(golden_dir, tmp_path, "tiny_e2")
    assert not load_model(target / "model.pt").is_demo
    (target / "DEMO_MODEL").write_text("random weights\n", encoding="utf-8")
    loaded = load_model(target / "model.pt")
    assert loaded.is_demo
    assert loaded.arch.backbone == "UNetT" and loaded.arch_name == "custom"
    assert loaded.vocab_path == target / "vocab.txt"


def test_several_checkpoints_need_a_choice(golden_dir: Path, tmp_path: Path) -> None:
    target = _tiny_dir(golden_dir, tmp_path)
    (target / "model.safetensors").rename(target / "a.safetensors")
    (target / "model.pt").rename(target / "b.pt")
    with pytest.raises(ModelLoadError, match="several checkpoints"):
        load_model(target)
    assert load_model(target, checkpoint_file="b.pt").checkpoint_path == target / "b.pt"


def test_half_precision_on_cpu_only_where_the_cpu_runs_it(golden_dir: Path) -> None:
    """fp16 on a CPU without AVX512-FP16/AMX-FP16 is emulated (slower than fp32): refused there, loaded
    where the CPU has the instructions (a Sapphire Rapids CI machine has them, an older one not)."""
    if cpu_runs_natively(torch.float16):
        loaded = load_model(golden_dir / "tiny_v0", checkpoint_file="model.pt", dtype=torch.float16)
        assert {p.dtype for p in loaded.cfm.parameters()} == {torch.float16}
        return
    with pytest.raises(ModelLoadError, match="float32"):
        load_model(golden_dir / "tiny_v0", checkpoint_file="model.pt", dtype=torch.float16)


def test_meta_build_then_load_recomputes_text_positions(golden_dir: Path) -> None:
    loaded = load_model(golden_dir / "tiny_v0", checkpoint_file="model.pt")
    table = loaded.cfm.transformer.text_embed.freqs_cis
    assert table.device.type == "cpu" and table.dtype == torch.float32 and table.shape == (4096, 32)
    fresh = build_model(loaded.arch, 89).transformer.text_embed.freqs_cis
    torch.testing.assert_close(table, fresh, atol=0, rtol=0)


def _fake_hub(monkeypatch, repos: dict[str, dict[str, Path]]) -> list[tuple[str, str]]:
    """Replace the hub download with a lookup table; a missing file raises as the hub does."""
    from huggingface_hub.errors import EntryNotFoundError

    import f5vi.engine.checkpoint as checkpoint_module

    requests: list[tuple[str, str]] = []

    def download(repo_id: str, filename: str, *, local_only: bool = False) -> Path:
        requests.append((repo_id, filename))
        if repo_id not in repos:
            raise OSError(f"repository {repo_id} not found")
        if filename not in repos[repo_id]:
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        return repos[repo_id][filename]

    def offline_reason() -> str | None:  # the fake hub is "reachable" unless offline mode is on
        import huggingface_hub.constants

        return "HF_HUB_OFFLINE is set" if huggingface_hub.constants.HF_HUB_OFFLINE else None

    monkeypatch.setattr(checkpoint_module, "hub_download", download)
    monkeypatch.setattr(checkpoint_module, "offline_reason", offline_reason)
    return requests


def test_hub_repo_like_the_vietnamese_one(golden_dir: Path, monkeypatch) -> None:
    tiny = golden_dir / "tiny_v0"
    requests = _fake_hub(
        monkeypatch,
        {
            "hynt/F5-TTS-Vietnamese-ViVoice": {
                "model_last.pt": tiny / "model.pt",
                "config.json": tiny / "vocab.txt",
            }
        },
    )
    loaded = load_model("hynt/F5-TTS-Vietnamese-ViVoice")
    assert loaded.checkpoint_path == tiny / "model.pt" and loaded.vocab_path == tiny / "vocab.txt"
    assert (loaded.arch.text_mask_padding, loaded.arch.pe_attn_head) == (False, 1)
    assert requests == [
        ("hynt/F5-TTS-Vietnamese-ViVoice", "model_last.pt"),
        ("hynt/F5-TTS-Vietnamese-ViVoice", "vocab.txt"),
        ("hynt/F5-TTS-Vietnamese-ViVoice", "config.json"),
    ]


def test_hub_subfolder_checkpoint_named_v1_gets_v1_flags(golden_dir: Path, monkeypatch) -> None:
    tiny = golden_dir / "tiny_v1"
    _fake_hub(
        monkeypatch,
        {
            "SWivid/F5-TTS": {
                "F5TTS_v1_Base/model_1250000.safetensors": tiny / "model.safetensors",
                "F5TTS_v1_Base/vocab.txt": tiny / "vocab.txt",
            }
        },
    )
    loaded = load_model(
        "SWivid/F5-TTS",
        checkpoint_file="F5TTS_v1_Base/model_1250000.safetensors",
        vocab_file="F5TTS_v1_Base/vocab.txt",
    )
    assert (loaded.arch.text_mask_padding, loaded.arch.pe_attn_head) == (True, None)


def test_hub_errors_become_model_load_errors(golden_dir: Path, monkeypatch) -> None:
    _fake_hub(monkeypatch, {"someone/empty": {}})
    with pytest.raises(ModelLoadError, match=r"cannot download model_last\.pt"):
        load_model("someone/missing-repo")
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE is set and none of model_last"):
        load_model("someone/empty")  # conftest runs the suite offline

    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(ModelLoadError, match="has no checkpoint"):
        load_model("someone/empty")
