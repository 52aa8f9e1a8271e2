"""Parity of our DiT / UNetT / CFM with upstream F5-TTS (golden data from upstream commit 2ae2c9b, fp32 CPU).

Tolerances are the golden README's: backbone forward atol 1e-5 (rtol 1e-5), sampling atol 1e-4.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from f5vi.engine.checkpoint import LoadedModel, load_model
from f5vi.engine.errors import SynthesisCancelled
from f5vi.engine.model.cfm import time_grid
from f5vi.engine.model.configs import ARCHS, infer_arch

MODELS = ("tiny_v0", "tiny_v1", "tiny_e2")
FORMATS = ("model.pt", "model.safetensors")
# the cases the golden README lists; test_all_golden_cases_are_covered fails if the file has others
CASES = tuple(f"{c}_{b}" for c in ("euler8", "epss7", "midpoint4") for b in ("b1", "b2"))

_cache: dict[tuple[str, str], LoadedModel] = {}


def _model(golden_dir: Path, name: str, checkpoint: str = "model.pt") -> LoadedModel:
    key = (name, checkpoint)
    if key not in _cache:
        _cache[key] = load_model(golden_dir / name, checkpoint_file=checkpoint)
    return _cache[key]


def _forward_outputs(model: LoadedModel, d: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    tr = model.cfm.transformer
    common = dict(x=d["x"], cond=d["cond"], text=d["text"], time=d["time"], mask=d["mask"])
    with torch.inference_mode():
        return {
            "out_cond": tr(**common),
            "out_uncond": tr(**common, drop_audio_cond=True, drop_text=True),
            "out_cfg_packed": tr(**common, cfg_infer=True),
            "out_single_nomask": tr(
                x=d["x"][:1], cond=d["cond"][:1], text=d["text"][:1], time=d["time"][:1], mask=None
            ),
        }


@pytest.mark.parametrize("checkpoint", FORMATS)
@pytest.mark.parametrize("name", MODELS)
def test_backbone_forward_matches_upstream(golden_dir: Path, name: str, checkpoint: str) -> None:
    model = _model(golden_dir, name, checkpoint)
    golden = load_file(str(golden_dir / name / "dit_forward.safetensors"))
    outputs = _forward_outputs(model, golden)
    for key, out in outputs.items():
        expected = golden[key]
        assert out.shape == expected.shape, key
        torch.testing.assert_close(
            out, expected, atol=1e-5, rtol=1e-5, msg=lambda m, k=key: f"{name} {k}: {m}"
        )


def test_golden_batches_exercise_padding(golden_dir: Path) -> None:
    """Guard: the golden forward batch really has a padded item and a non-trivial model output."""
    golden = load_file(str(golden_dir / "tiny_v0" / "dit_forward.safetensors"))
    assert golden["mask"].sum(dim=1).tolist() == [40, 31]
    assert golden["out_cond"].abs().max() > 0.5


@pytest.mark.parametrize("name", MODELS)
def test_cfg_packed_equals_separate_passes(golden_dir: Path, name: str) -> None:
    golden = load_file(str(golden_dir / name / "dit_forward.safetensors"))
    outputs = _forward_outputs(_model(golden_dir, name), golden)
    packed = outputs["out_cfg_packed"]
    torch.testing.assert_close(packed[:2], outputs["out_cond"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(packed[2:], outputs["out_uncond"], atol=1e-5, rtol=1e-5)


def _sample_case(golden_dir: Path, name: str, case: str, **overrides):
    spec = json.loads((golden_dir / "cfm_cases.json").read_text(encoding="utf-8"))[name][case]
    g = load_file(str(golden_dir / name / "cfm_sample.safetensors"))
    c = {k.split(".", 1)[1]: v for k, v in g.items() if k.startswith(case + ".")}
    kwargs = dict(
        lens=c["lens"],
        steps=spec["steps"],
        cfg_strength=spec["cfg_strength"],
        sway_sampling_coef=spec["sway"],
        method=spec["method"],
        use_epss=spec["use_epss"],
        seed=spec["seed"],
        return_trajectory=True,
    )
    kwargs.update(overrides)
    result = _model(golden_dir, name).cfm.sample(c["cond"], c["text_ids"], c["duration"], **kwargs)
    return result, c, spec


def test_all_golden_cases_are_covered(golden_dir: Path) -> None:
    cases = json.loads((golden_dir / "cfm_cases.json").read_text(encoding="utf-8"))
    assert set(cases) == set(MODELS)
    for name in MODELS:
        assert set(cases[name]) == set(CASES)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", MODELS)
def test_sample_matches_upstream(golden_dir: Path, name: str, case: str) -> None:
    result, c, spec = _sample_case(golden_dir, name, case)
    assert result.seed == spec["seed"]
    assert result.out.shape == tuple(spec["out_shape"])
    torch.testing.assert_close(result.duration, c["duration"], atol=0, rtol=0)
    torch.testing.assert_close(result.trajectory[0], c["y0"], atol=0, rtol=0)  # same noise, bit for bit
    torch.testing.assert_close(result.trajectory, c["trajectory"], atol=1e-4, rtol=0)
    torch.testing.assert_close(result.out, c["out"], atol=1e-4, rtol=0)
    # the model moved the state far from the noise, so a wrong velocity field would not pass
    generated = ~torch.nn.functional.pad(
        torch.arange(c["lens"].max())[None] < c["lens"][:, None],
        (0, result.out.shape[1] - int(c["lens"].max())),
    )
    assert (result.out - c["y0"])[generated].abs().mean() > 0.02


@pytest.mark.parametrize("name", MODELS)
def test_explicit_noise_reproduces_seeded_sample(golden_dir: Path, name: str) -> None:
    g = load_file(str(golden_dir / name / "cfm_sample.safetensors"))
    result, c, _ = _sample_case(golden_dir, name, "euler8_b2", seed=None, noise=g["euler8_b2.y0"])
    assert result.seed is None
    torch.testing.assert_close(result.out, c["out"], atol=1e-4, rtol=0)


def test_unseeded_sample_reports_a_seed_that_reproduces_it(golden_dir: Path) -> None:
    first, c, _ = _sample_case(golden_dir, "tiny_v0", "epss7_b1", seed=None, return_trajectory=False)
    assert isinstance(first.seed, int) and 0 <= first.seed < 2**31
    assert first.trajectory is None
    again, _, _ = _sample_case(golden_dir, "tiny_v0", "epss7_b1", seed=first.seed, return_trajectory=False)
    torch.testing.assert_close(again.out, first.out, atol=0, rtol=0)
    assert not torch.equal(first.out, c["out"]) or first.seed == 1234


def test_sampling_leaves_global_rng_untouched(golden_dir: Path) -> None:
    state = torch.get_rng_state()
    _sample_case(golden_dir, "tiny_v0", "euler8_b1", return_trajectory=False)
    assert torch.equal(torch.get_rng_state(), state)


def test_sample_unpacks_like_upstream(golden_dir: Path) -> None:
    result, _, _ = _sample_case(golden_dir, "tiny_e2", "midpoint4_b1")
    out, trajectory = result
    assert out is result.out and trajectory is result.trajectory


@pytest.mark.parametrize(("case", "evaluations"), [("euler8_b2", 8), ("midpoint4_b2", 8), ("epss7_b1", 7)])
def test_on_step_is_called_after_every_step(golden_dir: Path, case: str, evaluations: int) -> None:
    model = _model(golden_dir, "tiny_v0")
    calls: list[tuple[int, int]] = []
    forward_calls: list[int] = []
    hook = model.cfm.transformer.register_forward_hook(lambda *_: forward_calls.append(len(calls)))
    try:
        _sample_case(golden_dir, "tiny_v0", case, on_step=lambda k, n: calls.append((k, n)))
    finally:
        hook.remove()
    steps = calls[0][1]
    assert calls == [(k, steps) for k in range(1, steps + 1)]
    assert len(forward_calls) == evaluations
    # between two callbacks there is exactly one ODE step's worth of transformer calls
    per_step = evaluations // steps
    assert forward_calls == [i // per_step for i in range(evaluations)]


def test_exception_from_on_step_stops_sampling_and_clears_cache(golden_dir: Path) -> None:
    model = _model(golden_dir, "tiny_v1")
    calls: list[int] = []
    forward_calls: list[int] = []

    def cancel_at_three(k: int, n: int) -> None:
        calls.append(k)
        if k == 3:
            raise SynthesisCancelled("cancelled by test")

    hook = model.cfm.transformer.register_forward_hook(lambda *_: forward_calls.append(1))
    try:
        with pytest.raises(SynthesisCancelled):
            _sample_case(golden_dir, "tiny_v1", "euler8_b2", on_step=cancel_at_three)
    finally:
        hook.remove()
    assert calls == [1, 2, 3]
    assert len(forward_calls) == 3
    cache = model.cfm.transformer._text_cache
    assert cache.get(False) is None and cache.get(True) is None
    # and the model still samples correctly afterwards (no stale text cache)
    result, c, _ = _sample_case(golden_dir, "tiny_v1", "euler8_b1")
    torch.testing.assert_close(result.out, c["out"], atol=1e-4, rtol=0)


def test_text_cache_is_reused_until_cleared(golden_dir: Path) -> None:
    model = _model(golden_dir, "tiny_v0")
    tr = model.cfm.transformer
    d = load_file(str(golden_dir / "tiny_v0" / "dit_forward.safetensors"))
    common = dict(x=d["x"], cond=d["cond"], time=d["time"], mask=d["mask"])
    other_text = torch.flip(d["text"], dims=[0])
    with torch.inference_mode():
        try:
            first = tr(**common, text=d["text"], cache=True)
            stale = tr(**common, text=other_text, cache=True)  # cached embedding of d["text"] is reused
            tr.clear_cache()
            fresh = tr(**common, text=other_text, cache=True)
            uncached = tr(**common, text=other_text, cache=False)
        finally:
            tr.clear_cache()
    torch.testing.assert_close(first, d["out_cond"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stale, first, atol=0, rtol=0)
    torch.testing.assert_close(fresh, uncached, atol=0, rtol=0)
    assert not torch.allclose(fresh, first)


def test_epss_grid_and_sway() -> None:
    t = time_grid(7, sway_sampling_coef=None, use_epss=True)
    assert t.tolist() == [v / 32 for v in (0, 2, 4, 6, 8, 16, 24, 32)]
    uniform = time_grid(7, sway_sampling_coef=None, use_epss=False)
    torch.testing.assert_close(uniform, torch.linspace(0, 1, 8))
    assert (
        time_grid(32, sway_sampling_coef=None).tolist() == torch.linspace(0, 1, 33).tolist()
    )  # no EPSS grid
    swayed = time_grid(16, sway_sampling_coef=-1.0)
    assert swayed[0] == 0 and swayed[-1] == 1 and bool((swayed.diff() > 0).all())
    base = time_grid(16, sway_sampling_coef=None)
    torch.testing.assert_close(swayed, base - (torch.cos(torch.pi / 2 * base) - 1 + base))


def test_invalid_sampling_arguments_raise(golden_dir: Path) -> None:
    cfm = _model(golden_dir, "tiny_v0").cfm
    cond = torch.zeros(1, 10, 100)
    text = torch.zeros(1, 5, dtype=torch.long)
    with pytest.raises(ValueError, match="ODE method"):
        cfm.sample(cond, text, 20, method="rk4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="steps"):
        cfm.sample(cond, text, 20, steps=0)
    with pytest.raises(ValueError, match="cond"):
        cfm.sample(torch.zeros(1, 10, 80), text, 20)
    with pytest.raises(ValueError, match="noise"):
        cfm.sample(cond, text, 20, noise=torch.zeros(1, 19, 100))


def test_infer_arch_v0_default_and_v1_by_hint(golden_dir: Path) -> None:
    sd = load_file(str(golden_dir / "tiny_v1" / "model.safetensors"))
    v0, n = infer_arch(sd)
    assert n == 89
    assert (v0.text_mask_padding, v0.pe_attn_head) == (False, 1)
    v1, _ = infer_arch(sd, hint="SWivid/F5-TTS/F5TTS_v1_Base/model_1250000.safetensors")
    assert (v1.text_mask_padding, v1.pe_attn_head) == (True, None)
    assert infer_arch(sd, hint="hynt/F5-TTS-Vietnamese-ViVoice/model_last.pt")[0] == v0
    assert infer_arch(sd, hint="runs/model_v10")[0] == v0  # "v10" is not "v1"
    e2, _ = infer_arch(load_file(str(golden_dir / "tiny_e2" / "model.safetensors")), hint="F5TTS_v1_Base")
    assert e2.backbone == "UNetT" and e2.skip_connect_type == "concat" and e2.text_dim is None
    assert e2.pe_attn_head == 1 and not e2.text_mask_padding  # v1 flags are DiT-only


def test_arch_recognised_without_config_drives_parity(golden_dir: Path, tmp_path: Path) -> None:
    """A checkpoint dir without config.json: shapes + the 'v1' in its name must give the right model."""
    target = tmp_path / "tiny_v1"
    target.mkdir()
    shutil.copy(golden_dir / "tiny_v1" / "model.pt", target / "model_last.pt")
    shutil.copy(golden_dir / "tiny_v1" / "vocab.txt", target / "vocab.txt")
    model = load_model(target)
    assert (model.arch.text_mask_padding, model.arch.pe_attn_head) == (True, None)
    golden = load_file(str(golden_dir / "tiny_v1" / "dit_forward.safetensors"))
    out = _forward_outputs(model, golden)["out_cond"]
    torch.testing.assert_close(out, golden["out_cond"], atol=1e-5, rtol=1e-5)


def test_presets_match_upstream_yaml_flags() -> None:
    assert (ARCHS["F5TTS_Base"].text_mask_padding, ARCHS["F5TTS_Base"].pe_attn_head) == (False, 1)
    assert (ARCHS["F5TTS_v1_Base"].text_mask_padding, ARCHS["F5TTS_v1_Base"].pe_attn_head) == (True, None)
    assert ARCHS["E2TTS_Base"].backbone == "UNetT" and ARCHS["E2TTS_Base"].ff_mult == 4
