"""A tiny random-weight Whisper in the real layout: the demo speech recogniser, and the tests' one.

Real PhoWhisper cannot be downloaded everywhere (offline machines, CI). With the demo fallback
(``--demo-fallback``, ``F5VI_DEMO_FALLBACK``) verification and ``f5vi eval`` use this model instead, flagged
as a demo: the real :class:`~f5vi.engine.asr.Transcriber` code path (AutoProcessor +
AutoModelForSpeechSeq2Seq + generate with language/task forcing) on a 0.3 M parameter Whisper with a
hand-written byte-level tokenizer (no Whisper tokenizer ships in any installed package; transformers 5's
``WhisperTokenizer`` takes ``vocab=`` and ``merges=`` directly). Its output is garbage, so generation is
constrained with ``suppress_tokens``: only the byte tokens of ``allowed_text`` and end-of-text may be
generated, and end-of-text not first. With letters allowed the transcript is a non-empty string of those
letters; with only a space allowed it decodes to whitespace (the "nothing recognised" case).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEMO_ASR_MARKER = "F5VI_DEMO_ASR"
"""A file in a demo ASR directory: loading it says it is a demo."""

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (what byte-level BPE vocabularies use)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {byte: chr(char) for byte, char in zip(printable, chars, strict=True)}


def build_tiny_whisper(
    out_dir: Path, *, allowed_text: str = LETTERS, legacy_generation_config: bool = False
) -> Path:
    """Save processor + model to ``out_dir``. ``legacy_generation_config`` drops ``lang_to_id``,
    ``task_to_id`` and ``is_multilingual`` as old fine-tunes' configs do."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    byte_symbols = _bytes_to_unicode()
    vocab = {byte_symbols[b]: b for b in range(256)}
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he")]
    for left, right in merges:
        vocab[left + right] = len(vocab)
    specials = [
        "<|startoftranscript|>",
        *(f"<|{code}|>" for code in LANGUAGES),
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nocaptions|>",
        "<|notimestamps|>",
    ]
    tokenizer = WhisperTokenizer(vocab=vocab, merges=merges, additional_special_tokens=specials)
    eot = _token_id(tokenizer, "<|endoftext|>")
    sot = _token_id(tokenizer, "<|startoftranscript|>")
    allowed = {vocab[byte_symbols[b]] for b in allowed_text.encode("utf-8")} | {eot}
    suppress = [i for i in range(len(tokenizer)) if i not in allowed]

    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=len(tokenizer),
        num_mel_bins=80,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=1500,  # the feature extractor always pads to 30 s = 3000 frames
        max_target_positions=64,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
    )
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=24,
        is_multilingual=True,
        lang_to_id={f"<|{c}|>": tokenizer.convert_tokens_to_ids(f"<|{c}|>") for c in LANGUAGES},
        task_to_id={
            "transcribe": tokenizer.convert_tokens_to_ids("<|transcribe|>"),
            "translate": tokenizer.convert_tokens_to_ids("<|translate|>"),
        },
        no_timestamps_token_id=tokenizer.convert_tokens_to_ids("<|notimestamps|>"),
        begin_suppress_tokens=[eot],
        suppress_tokens=suppress,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    extractor = WhisperFeatureExtractor(feature_size=80, sampling_rate=16_000)
    WhisperProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(out_dir)
    if legacy_generation_config:
        path = out_dir / "generation_config.json"
        data = json.loads(path.read_text())
        for key in ("lang_to_id", "task_to_id", "is_multilingual"):
            data.pop(key, None)
        path.write_text(json.dumps(data, indent=2))
    return out_dir


def ensure_demo_asr(out_dir: Path) -> Path:
    """Build the demo recogniser in ``out_dir`` unless it is already there; returns the directory."""
    if not (out_dir / DEMO_ASR_MARKER).is_file():
        build_tiny_whisper(out_dir)
        (out_dir / DEMO_ASR_MARKER).write_text("random weights: transcripts are garbage\n")
    return out_dir


def _token_id(tokenizer: Any, token: str) -> int:
    """The id of one special token (``convert_tokens_to_ids`` is typed for lists too)."""
    found = tokenizer.convert_tokens_to_ids(token)
    assert isinstance(found, int), token
    return found
