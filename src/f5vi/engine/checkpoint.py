"""Load upstream F5-TTS / E2-TTS checkpoints into our inference modules; write checkpoints in upstream layout.

Upstream layout (``.pt``):
``{"ema_model_state_dict": {"ema_model.<CFM key>": tensor, ..., "initted", "step"}}``, possibly next to
``model_state_dict`` / optimizer state (training checkpoints). A ``.safetensors`` file holds the EMA dict
itself (prefixed keys, no ``initted``/``step``).

Loading is strict (every key must match) and always goes through the CPU: the pickle is memory-mapped there,
so a multi-GB training checkpoint never lands on the GPU and its optimizer state is never read into RAM; the
model is then moved to the requested device and dtype.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from f5vi.engine.device import cpu_runs_natively
from f5vi.engine.errors import ModelLoadError
from f5vi.engine.hub import hub_download, offline_reason
from f5vi.engine.model.cfm import CFM
from f5vi.engine.model.configs import (
    ARCHS,
    MEL_SPEC_TYPE_OF_PRESET,
    ModelArch,
    arch_from_config_dict,
    infer_arch,
    mel_spec_type_from_config,
    preset_name,
)
from f5vi.engine.model.dit import DiT
from f5vi.engine.model.modules import TextEmbedding
from f5vi.engine.model.unett import UNetT

log = logging.getLogger(__name__)

DEMO_MARKER = "DEMO_MODEL"
# Architecture description next to a checkpoint: ours (written by the demo model), then upstream-style.
ARCH_CONFIG_NAMES = ("f5vi_model.json", "config.json")
DEFAULT_CHECKPOINT_NAMES = ("model_last.pt", "model_last.safetensors", "model.safetensors", "model.pt")
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt", ".bin")
TEXT_EMBED_KEY = "transformer.text_embed.text_embed.weight"

_WRAPPER_PREFIXES = ("ema_model.", "module.", "model.", "_orig_mod.")
_EMA_BOOKKEEPING = {"initted", "step"}
# Old upstream checkpoints persisted the torchaudio MelSpectrogram buffers; upstream drops them on load.
_TRAINING_ONLY_PREFIXES = ("mel_spec.",)
_HUB_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


# ------------------------------------------------------------------------------------------------------
# state dicts


def _strip_wrappers(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                changed = True
    return key


def normalize_state_dict(raw: Mapping[str, Any]) -> dict[str, Tensor]:
    """Strip ``ema_model.`` (and DDP/compile/``model.``) prefixes; drop EMA bookkeeping and training-only
    keys."""
    out: dict[str, Tensor] = {}
    for key, value in raw.items():
        k = _strip_wrappers(str(key))
        if k in _EMA_BOOKKEEPING or k.startswith(_TRAINING_ONLY_PREFIXES):
            continue
        if not isinstance(value, Tensor):
            raise ModelLoadError(f"checkpoint entry {key!r} is not a tensor ({type(value).__name__})")
        if k in out:
            raise ModelLoadError(f"checkpoint has key {k!r} twice (with different prefixes)")
        out[k] = value
    return out


def _select_state_dict(obj: Any, path: Path) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ModelLoadError(f"{path} does not contain a state dict (found {type(obj).__name__})")
    for name in ("ema_model_state_dict", "model_state_dict"):
        if name in obj:
            if not isinstance(obj[name], Mapping):
                raise ModelLoadError(f"{path}: {name} is not a mapping")
            return obj[name]
    if obj and all(isinstance(v, Tensor) for v in obj.values()):
        return obj
    keys = ", ".join(sorted(map(str, obj))[:10])
    raise ModelLoadError(
        f"{path} has neither ema_model_state_dict nor model_state_dict (top-level keys: {keys})"
    )


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        # legacy (non-zip) pickles cannot be memory-mapped; read them normally
        if "mmap" not in str(exc) and "zip" not in str(exc):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read a ``.pt``/``.safetensors`` checkpoint on the CPU; return the CFM state dict (unprefixed keys)."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"checkpoint file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            raw: Mapping[str, Any] = load_file(str(path), device="cpu")
        else:
            raw = _select_state_dict(_torch_load(path), path)
        return normalize_state_dict(raw)
    except ModelLoadError:
        raise
    except Exception as exc:  # unreadable/corrupt file, unsafe pickle, ...
        raise ModelLoadError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc


# ------------------------------------------------------------------------------------------------------
# model construction


def build_model(arch: ModelArch, text_num_embeds: int, mel_dim: int = 100) -> CFM:
    """A randomly initialised CFM with the given backbone, in eval mode, without gradients.

    Build it under ``with torch.device("meta"):`` to get shapes only (no memory, no init cost).
    """
    backbone_cls = DiT if arch.backbone == "DiT" else UNetT
    backbone = backbone_cls(**arch.backbone_kwargs(), text_num_embeds=text_num_embeds, mel_dim=mel_dim)
    cfm = CFM(backbone, num_channels=mel_dim)
    cfm.eval().requires_grad_(False)
    return cfm


def count_vocab_entries(path: str | os.PathLike[str]) -> int:
    """Number of tokens in a vocab file exactly as upstream's ``get_tokenizer`` counts them.

    Upstream maps ``line[:-1] -> line index`` for every line (text mode, UTF-8) and uses the size of that map
    as ``text_num_embeds``; the checkpoint's text embedding therefore has that many rows plus one.
    """
    try:
        with open(path, encoding="utf-8") as f:
            entries = {line[:-1] for line in f}
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"cannot read vocab file {path}: {exc}") from exc
    if not entries:
        raise ModelLoadError(f"vocab file {path} is empty")
    return len(entries)


def count_parameters(cfm: CFM) -> int:
    """Number of values in the model's checkpoint: parameters plus persistent buffers (``inv_freq``).

    This is the figure upstream's manifests quote (e.g. 337,096,836 for F5TTS_Base with 2545 tokens).
    """
    return sum(t.numel() for t in cfm.state_dict().values())


@dataclass
class LoadedModel:
    cfm: CFM
    arch_name: str
    """Preset name (``F5TTS_Base``, ...) or ``"custom"``."""
    arch: ModelArch
    vocab_path: Path
    checkpoint_path: Path
    num_params: int
    """Values in the checkpoint (see :func:`count_parameters`)."""
    text_num_embeds: int
    device: torch.device
    dtype: torch.dtype
    is_demo: bool = False
    """True when the model directory has a ``DEMO_MODEL`` marker (random weights, for demos and tests)."""
    mel_spec_type: str = "vocos"
    """The mel front end the checkpoint was trained on ("vocos" | "bigvgan"): which vocoder it needs
    and how reference audio becomes its conditioning mel (see :func:`choose_mel_spec_type`)."""


@dataclass
class _ResolvedFiles:
    checkpoint: Path
    vocab: Path
    config: dict[str, Any] | None
    model_dir: Path | None
    hint: str


def _read_json_config(path: Path) -> dict[str, Any] | None:
    """The architecture config in ``path`` if it is one; None if the file is something else (e.g. a vocab
    saved as ``config.json``, as the Vietnamese checkpoint repo does)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _pick_checkpoint_in_dir(directory: Path) -> Path:
    for name in DEFAULT_CHECKPOINT_NAMES:
        if (directory / name).is_file():
            return directory / name
    found = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)
    if len(found) == 1:
        return found[0]
    if not found:
        raise ModelLoadError(f"no checkpoint (*.pt, *.safetensors) in {directory}")
    names = ", ".join(p.name for p in found)
    raise ModelLoadError(f"several checkpoints in {directory} ({names}): choose one with checkpoint_file")


def _find_vocab_and_config(
    dirs: list[Path], vocab_file: str | None, base: Path
) -> tuple[Path, dict[str, Any] | None]:
    """Vocab and optional architecture config (:data:`ARCH_CONFIG_NAMES`), searched in ``dirs`` in order.

    ``config.json`` is an architecture config when it parses as a JSON object; otherwise it is taken as the
    vocab (the Vietnamese repo stores its vocab under that name).
    """
    config = None
    for d in dirs:
        for name in ARCH_CONFIG_NAMES:
            if (d / name).is_file() and (config := _read_json_config(d / name)) is not None:
                break
        if config is not None:
            break
    if vocab_file is not None:
        vocab = Path(vocab_file)
        vocab = vocab if vocab.is_absolute() else base / vocab
        if not vocab.is_file():
            raise ModelLoadError(f"vocab file not found: {vocab}")
        return vocab, config
    for d in dirs:
        if (d / "vocab.txt").is_file():
            return d / "vocab.txt", config
    for d in dirs:
        if (d / "config.json").is_file() and _read_json_config(d / "config.json") is None:
            return d / "config.json", config
    where = ", ".join(str(d) for d in dirs)
    raise ModelLoadError(f"no vocab.txt (or vocab saved as config.json) in {where}; pass vocab_file")


def _resolve_local(source: Path, checkpoint_file: str | None, vocab_file: str | None) -> _ResolvedFiles:
    if source.is_dir():
        if checkpoint_file is not None:
            checkpoint = source / checkpoint_file
            if not checkpoint.is_file():
                raise ModelLoadError(f"checkpoint file not found: {checkpoint}")
        else:
            checkpoint = _pick_checkpoint_in_dir(source)
        dirs = list(dict.fromkeys([checkpoint.parent, source]))
        vocab, config = _find_vocab_and_config(dirs, vocab_file, source)
        hint = f"{source.name}/{checkpoint.relative_to(source).as_posix()}"
        return _ResolvedFiles(checkpoint, vocab, config, source, hint)
    if source.is_file():
        vocab, config = _find_vocab_and_config([source.parent], vocab_file, source.parent)
        return _ResolvedFiles(source, vocab, config, source.parent, f"{source.parent.name}/{source.name}")
    raise ModelLoadError(f"model source not found: {source}")


_HubFetch = Callable[[tuple[str, ...], str], tuple[str, Path]]


def _hub_fetcher(repo_id: str) -> _HubFetch:
    """``fetch(candidates, what)``: the first of ``candidates`` in the repo (or, offline, in the cache)."""
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, HFValidationError

    offline = offline_reason()

    def first_available(candidates: tuple[str, ...], what: str) -> tuple[str, Path]:
        missing: list[str] = []
        for name in candidates:
            try:
                return name, hub_download(repo_id, name, local_only=offline is not None)
            except EntryNotFoundError:  # not in the repo, or (offline) not in the local cache
                missing.append(name)
            except (HfHubHTTPError, HFValidationError, OSError, ValueError) as exc:
                raise ModelLoadError(
                    f"cannot download {name} from Hugging Face repo {repo_id!r}: {type(exc).__name__}: {exc}"
                ) from exc
        names = ", ".join(missing)
        if offline:
            raise ModelLoadError(
                f"cannot load the {what} of Hugging Face repo {repo_id!r}: {offline} and none of {names} is "
                "in the local cache (download it first, or point F5VI_MODEL at a local directory)"
            )
        raise ModelLoadError(f"Hugging Face repo {repo_id!r} has no {what} (tried {names})")

    return first_available


def _hub_vocab(fetch: _HubFetch, repo_id: str, vocab_file: str | None) -> Path:
    if vocab_file is not None:
        return fetch((vocab_file,), "vocab file")[1]
    try:
        return fetch(("vocab.txt",), "vocab file")[1]
    except ModelLoadError:
        vocab = fetch(("config.json",), "vocab file")[1]
        if _read_json_config(vocab) is not None:
            raise ModelLoadError(
                f"{repo_id}: config.json is an architecture config and no vocab.txt exists"
            ) from None
        return vocab


def _resolve_hub(repo_id: str, checkpoint_file: str | None, vocab_file: str | None) -> _ResolvedFiles:
    fetch = _hub_fetcher(repo_id)
    checkpoint_name, checkpoint = fetch(
        (checkpoint_file,) if checkpoint_file else DEFAULT_CHECKPOINT_NAMES, "checkpoint"
    )
    vocab = _hub_vocab(fetch, repo_id, vocab_file)
    # the requested name keeps upstream's sub-folder (e.g. F5TTS_v1_Base/...) in the v0/v1 hint
    return _ResolvedFiles(checkpoint, vocab, None, None, f"{repo_id}/{checkpoint_name}")


def _is_hub_id(source: str | os.PathLike[str]) -> bool:
    text = str(source)
    return bool(_HUB_REPO_ID.match(text)) and not text.startswith((".", "/", "~"))


def resolve_vocab_path(
    source: str | os.PathLike[str], *, checkpoint_file: str | None = None, vocab_file: str | None = None
) -> Path:
    """The vocab :func:`load_model` would use for ``source``, without reading (or downloading) weights.

    Text planning (the normalisation preview) needs only the vocab; a hub model's checkpoint is
    not fetched for it.
    """
    path = Path(source).expanduser()
    if not path.exists() and _is_hub_id(source):
        return _hub_vocab(_hub_fetcher(str(source)), str(source), vocab_file)
    return _resolve(source, checkpoint_file, vocab_file).vocab


def _resolve(
    source: str | os.PathLike[str], checkpoint_file: str | None, vocab_file: str | None
) -> _ResolvedFiles:
    path = Path(source).expanduser()
    if path.exists():
        return _resolve_local(path, checkpoint_file, vocab_file)
    text = str(source)
    if _is_hub_id(text):
        return _resolve_hub(text, checkpoint_file, vocab_file)
    raise ModelLoadError(f"model source not found: {text} (not a local path, not a Hugging Face repo id)")


def _choose_arch(
    arch: str | ModelArch | None, config: dict[str, Any] | None, state_dict: Mapping[str, Tensor], hint: str
) -> ModelArch:
    if isinstance(arch, ModelArch):
        return arch
    if isinstance(arch, str):
        if arch not in ARCHS:
            raise ModelLoadError(f"unknown model architecture {arch!r}; choose one of {', '.join(ARCHS)}")
        return ARCHS[arch]
    if config is not None:
        try:
            return arch_from_config_dict(config)
        except ValueError as exc:
            raise ModelLoadError(f"invalid model config: {exc}") from exc
    try:
        inferred, _ = infer_arch(state_dict, hint=hint)
    except ValueError as exc:
        raise ModelLoadError(f"cannot recognise the checkpoint's architecture: {exc}") from exc
    return inferred


MEL_SPEC_TYPES = ("vocos", "bigvgan")


def choose_mel_spec_type(arch: str | ModelArch | None, config: dict[str, Any] | None, hint: str) -> str:
    """The checkpoint's mel front end: from the preset name (``F5TTS_Base_bigvgan``), else its config
    (``mel_spec.mel_spec_type``), else the file name or repo path (upstream stores the BigVGAN
    checkpoint as ``F5TTS_Base_bigvgan/model_1250000.pt``), else "vocos" (every other checkpoint)."""
    if isinstance(arch, str) and arch in MEL_SPEC_TYPE_OF_PRESET:
        return MEL_SPEC_TYPE_OF_PRESET[arch]
    found = mel_spec_type_from_config(config) if config is not None else None
    if found is not None:
        if found not in MEL_SPEC_TYPES:
            raise ModelLoadError(
                f"unknown mel_spec_type {found!r} in the model config; expected vocos|bigvgan"
            )
        return found
    return "bigvgan" if "bigvgan" in hint.lower() else "vocos"


def _default_dtype(device: torch.device) -> torch.dtype:
    # upstream: fp16 on CUDA, fp32 elsewhere
    return torch.float16 if device.type == "cuda" else torch.float32


def _check_keys(expected: Mapping[str, Tensor], state_dict: Mapping[str, Tensor], checkpoint: Path) -> None:
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {', '.join(missing[:20])}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:20])}")
    mismatched = [
        f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if mismatched:
        problems.append(f"shape mismatches ({len(mismatched)}): {'; '.join(mismatched[:20])}")
    if problems:
        raise ModelLoadError(f"checkpoint {checkpoint} does not fit the model: " + " | ".join(problems))


def load_model(
    source: str | os.PathLike[str],
    *,
    arch: str | ModelArch | None = None,
    checkpoint_file: str | None = None,
    vocab_file: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> LoadedModel:
    """Load a CFM model from a local directory, a checkpoint file or a Hugging Face repo id.

    Args:
        source: directory (``model_last.pt`` / the only ``*.pt``/``*.safetensors``, plus ``vocab.txt`` or a
            vocab saved as ``config.json``), checkpoint file, or hub repo id such as
            ``hynt/F5-TTS-Vietnamese-ViVoice``.
        arch: preset name or :class:`ModelArch`; default: a ``config.json`` architecture next to the
            checkpoint, else recognised from the weights (see :mod:`f5vi.engine.model.configs`).
        checkpoint_file, vocab_file: file names inside the directory / repo (vocab may be an absolute path).
        device: target device; weights are always read on the CPU first.
        dtype: None = float32 on CPU/MPS, float16 on CUDA (as upstream). On a CPU, half precision only
            where it runs natively (:func:`~f5vi.engine.device.cpu_runs_natively`).

    Raises:
        ModelLoadError: anything missing, unreadable, offline, or not matching (keys, shapes, vocab size).
    """
    device = torch.device(device)
    dtype = dtype if dtype is not None else _default_dtype(device)
    if device.type == "cpu" and not cpu_runs_natively(dtype):
        raise ModelLoadError(
            f"dtype {dtype} has no native support on this CPU (it would run slower than float32); "
            "use float32" + (" or bfloat16" if cpu_runs_natively(torch.bfloat16) else "")
        )

    files = _resolve(source, checkpoint_file, vocab_file)
    state_dict = load_state_dict_file(files.checkpoint)
    chosen = _choose_arch(arch, files.config, state_dict, files.hint)
    mel_spec_type = choose_mel_spec_type(arch, files.config, files.hint)

    vocab_size = count_vocab_entries(files.vocab)
    if TEXT_EMBED_KEY not in state_dict:
        raise ModelLoadError(f"checkpoint {files.checkpoint} has no {TEXT_EMBED_KEY}")
    rows = int(state_dict[TEXT_EMBED_KEY].shape[0])
    if rows != vocab_size + 1:
        raise ModelLoadError(
            f"vocab {files.vocab} has {vocab_size} entries but the checkpoint's text embedding has "
            f"{rows} rows (expected {vocab_size + 1}): the vocab does not belong to this checkpoint"
        )
    mel_dim = (
        int(state_dict["transformer.proj_out.weight"].shape[0])
        if "transformer.proj_out.weight" in state_dict
        else 100
    )

    with torch.device("meta"):
        cfm = build_model(chosen, vocab_size, mel_dim=mel_dim)
    _check_keys(cfm.state_dict(), state_dict, files.checkpoint)
    cfm.load_state_dict(state_dict, strict=True, assign=True)
    del state_dict
    for module in cfm.modules():
        if isinstance(module, TextEmbedding):
            module.reset_buffers()
    try:
        cfm.to(device=device, dtype=dtype)
    except (RuntimeError, AssertionError) as exc:  # no such device, out of memory, ...
        raise ModelLoadError(f"cannot move the model to {device} ({dtype}): {exc}") from exc
    cfm.eval().requires_grad_(False)

    dirs = {files.checkpoint.parent} | ({files.model_dir} if files.model_dir else set())
    is_demo = any((d / DEMO_MARKER).is_file() for d in dirs)
    name = preset_name(chosen) or "custom"
    if isinstance(arch, str):
        name = arch  # F5TTS_Base_bigvgan has F5TTS_Base's network: report the name that was asked for
    num_params = count_parameters(cfm)
    log.info(
        "loaded %s (%s, %d params, vocab %d) from %s on %s/%s%s",
        name,
        chosen.backbone,
        num_params,
        vocab_size,
        files.checkpoint,
        device,
        dtype,
        " [demo]" if is_demo else "",
    )
    return LoadedModel(
        cfm=cfm,
        arch_name=name,
        arch=chosen,
        vocab_path=files.vocab,
        checkpoint_path=files.checkpoint,
        num_params=num_params,
        text_num_embeds=vocab_size,
        device=device,
        dtype=dtype,
        is_demo=is_demo,
        mel_spec_type=mel_spec_type,
    )


# ------------------------------------------------------------------------------------------------------
# writing


def save_upstream_checkpoint(cfm: CFM, path: str | os.PathLike[str], *, step: int = 0) -> Path:
    """Write ``cfm``'s weights in upstream's EMA layout (``.pt`` or ``.safetensors`` by suffix)."""
    path = Path(path)
    tensors = {f"ema_model.{k}": v.detach().contiguous() for k, v in cfm.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.cpu() for k, v in tensors.items()}, str(path))
    elif path.suffix in CHECKPOINT_SUFFIXES:
        ema = {k: v.cpu() for k, v in tensors.items()}
        ema["initted"] = torch.tensor(True)
        ema["step"] = torch.tensor(step)
        torch.save({"ema_model_state_dict": ema}, path)
    else:
        raise ValueError(f"unsupported checkpoint suffix {path.suffix!r} (use .pt or .safetensors)")
    return path
