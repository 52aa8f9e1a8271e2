"""Transcriber: the real load/generate path on a tiny offline Whisper (random weights)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from f5vi.engine.asr import ASR_SAMPLE_RATE, Transcriber
from f5vi.engine.audio import resample
from f5vi.engine.errors import InvalidReferenceError, ModelLoadError
from tiny_whisper import LETTERS, tiny_whisper


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_whisper(tmp_path_factory)


@pytest.fixture(scope="session")
def transcriber(tiny_whisper_dir: Path) -> Transcriber:
    return Transcriber(str(tiny_whisper_dir))


@pytest.fixture(scope="session")
def speech(repo_root: Path) -> tuple[np.ndarray, int]:
    wave, sr = sf.read(repo_root / "voices" / "vi_north_male.wav", dtype="float32")
    return wave, sr


class _Capture:
    """Forward pre-hooks on the encoder and decoder recording what the model was fed."""

    def __init__(self, transcriber: Transcriber) -> None:
        transcriber.load()
        model = transcriber._model
        self.features: list[torch.Tensor] = []
        self.decoder_prompts: list[list[int]] = []
        self._handles = [
            model.get_encoder().register_forward_pre_hook(self._on_encoder, with_kwargs=True),
            model.get_decoder().register_forward_pre_hook(self._on_decoder, with_kwargs=True),
        ]

    def _on_encoder(self, _module, args, kwargs):
        feats = kwargs.get("input_features", args[0] if args else None)
        self.features.append(feats.detach().clone())

    def _on_decoder(self, _module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and ids.shape[-1] > 1:  # the prompt step (later steps feed one token)
            self.decoder_prompts.append(ids[0].tolist())

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def _special_ids(transcriber: Transcriber, *tokens: str) -> list[int]:
    transcriber.load()
    return [transcriber._processor.tokenizer.convert_tokens_to_ids(t) for t in tokens]


def test_transcribes_with_the_real_model(transcriber: Transcriber, speech: tuple[np.ndarray, int]) -> None:
    wave, sr = speech
    text = transcriber.transcribe(wave, sr)
    assert isinstance(text, str)
    assert text
    assert text == text.strip()
    assert set(text) <= set(LETTERS)  # the tiny model may only emit these bytes
    assert transcriber.transcribe(wave, sr) == text  # greedy decoding is deterministic


def test_lazy_load_and_unload(tiny_whisper_dir: Path, speech: tuple[np.ndarray, int]) -> None:
    asr = Transcriber(str(tiny_whisper_dir))
    assert not asr.loaded
    first = asr.transcribe(*speech)
    assert asr.loaded
    asr.unload()
    assert not asr.loaded
    assert asr._model is None and asr._processor is None
    asr.unload()  # idempotent
    assert asr.transcribe(*speech) == first  # loads again on demand
    assert asr.loaded
    asr.unload()


@pytest.mark.parametrize("legacy", [False, True], ids=["generation-config", "legacy-generation-config"])
def test_language_and_task_are_forced(
    tmp_path_factory: pytest.TempPathFactory, speech: tuple[np.ndarray, int], legacy: bool
) -> None:
    """The decoder prompt is <|startoftranscript|><|vi|><|transcribe|><|notimestamps|>, also for old
    fine-tunes whose generation config has no lang_to_id/task_to_id (repaired at load time)."""
    asr = Transcriber(str(tiny_whisper(tmp_path_factory, legacy_generation_config=legacy)))
    capture = _Capture(asr)
    try:
        asr.transcribe(*speech)
    finally:
        capture.close()
    expected = _special_ids(asr, "<|startoftranscript|>", "<|vi|>", "<|transcribe|>", "<|notimestamps|>")
    assert capture.decoder_prompts == [expected]
    asr.unload()


def test_input_is_mixed_down_and_resampled_to_16k(
    transcriber: Transcriber, speech: tuple[np.ndarray, int]
) -> None:
    wave, sr = speech
    assert sr == 24_000
    transcriber.load()
    expected = transcriber._processor.feature_extractor(
        resample(wave, sr, ASR_SAMPLE_RATE), sampling_rate=ASR_SAMPLE_RATE, return_tensors="pt"
    ).input_features
    stereo_44k = np.stack([resample(wave, sr, 44_100)] * 2, axis=1)  # (frames, channels), soundfile layout
    capture = _Capture(transcriber)
    try:
        transcriber.transcribe(wave, sr)
        transcriber.transcribe(stereo_44k, 44_100)
    finally:
        capture.close()
    assert len(capture.features) == 2
    same_rate, other_rate = capture.features
    assert same_rate.shape == (1, 80, 3000)
    torch.testing.assert_close(same_rate, expected, atol=1e-5, rtol=0)
    # 24k -> 44.1k -> 16k differs from 24k -> 16k only by resampling error, tiny on the log-mel scale.
    assert float((other_rate - expected).abs().mean()) < 0.01


def test_empty_transcript_is_an_invalid_reference(
    tmp_path_factory: pytest.TempPathFactory, speech: tuple[np.ndarray, int]
) -> None:
    asr = Transcriber(str(tiny_whisper(tmp_path_factory, allowed_text=" ")))  # decodes to whitespace only
    with pytest.raises(InvalidReferenceError, match="no speech was recognised") as info:
        asr.transcribe(*speech)
    assert info.value.code == "invalid_reference"
    assert asr.loaded  # the model ran; the result was empty
    asr.unload()


@pytest.mark.parametrize(
    ("audio", "sr", "message"),
    [
        (np.zeros(0, dtype=np.float32), 24_000, "too short"),
        (np.full(24_000, np.nan, dtype=np.float32), 24_000, "NaN"),
        (np.zeros((2, 3, 4), dtype=np.float32), 24_000, "shape"),
        (np.zeros(16_000 * 31, dtype=np.float32), 16_000, "at most 30"),
        (np.zeros(24_000, dtype=np.float32), 0, "sample rate"),
        (np.zeros((24_000, 0), dtype=np.float32), 24_000, "no channels"),
    ],
    ids=["empty", "nan", "3d", "over-30s", "bad-rate", "no-channels"],
)
def test_unusable_audio_is_rejected_before_loading(
    tiny_whisper_dir: Path, audio: np.ndarray, sr: int, message: str
) -> None:
    asr = Transcriber(str(tiny_whisper_dir))
    with pytest.raises(InvalidReferenceError, match=message):
        asr.transcribe(audio, sr)
    assert not asr.loaded


def test_int16_audio_is_scaled(transcriber: Transcriber, speech: tuple[np.ndarray, int]) -> None:
    wave, sr = speech
    as_int16 = np.round(wave * 32768).clip(-32768, 32767).astype(np.int16)
    capture = _Capture(transcriber)
    try:
        transcriber.transcribe(wave, sr)
        transcriber.transcribe(as_int16, sr)
    finally:
        capture.close()
    float_feats, int_feats = capture.features
    assert float((float_feats - int_feats).abs().max()) < 0.01


@pytest.mark.parametrize(
    "model_id",
    ["f5vi-tests/no-such-whisper-model", "/nonexistent/dir/for/f5vi/asr"],
    ids=["hub-id-offline", "missing-dir"],
)
def test_unavailable_model_raises_model_load_error(model_id: str, speech: tuple[np.ndarray, int]) -> None:
    asr = Transcriber(model_id)
    with pytest.raises(ModelLoadError) as info:
        asr.transcribe(*speech)
    assert info.value.code == "model_load_failed"
    assert model_id in info.value.message
    assert "F5VI_ASR_MODEL" in info.value.message
    assert not asr.loaded


def test_non_whisper_model_dir_raises_model_load_error(
    tmp_path: Path, speech: tuple[np.ndarray, int]
) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ModelLoadError):
        Transcriber(str(tmp_path)).transcribe(*speech)


def test_concurrent_transcription_and_unload(tiny_whisper_dir: Path, speech: tuple[np.ndarray, int]) -> None:
    asr = Transcriber(str(tiny_whisper_dir))
    expected = asr.transcribe(*speech)
    results: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(5)

    def work(unload: bool) -> None:
        try:
            start.wait()
            for _ in range(3):
                if unload:
                    asr.unload()
                else:
                    results.append(asr.transcribe(*speech))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i == 0,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert results == [expected] * 12
    asr.unload()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runs_on_cuda_in_half_precision_and_unload_frees_memory(
    tiny_whisper_dir: Path, speech: tuple[np.ndarray, int]
) -> None:
    torch.cuda.synchronize()
    baseline = torch.cuda.memory_allocated()
    asr = Transcriber(str(tiny_whisper_dir), device="cuda")
    text = asr.transcribe(*speech)
    assert text
    assert next(asr._model.parameters()).dtype == torch.float16
    assert next(asr._model.parameters()).device.type == "cuda"
    assert torch.cuda.memory_allocated() > baseline
    asr.unload()
    assert torch.cuda.memory_allocated() == baseline
