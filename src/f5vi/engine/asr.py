"""Reference transcription with PhoWhisper (a Vietnamese fine-tune of Whisper).

Used when a reference voice comes without a transcript. F5-TTS needs the exact words of the reference
clip, so the caller must pass the audio that synthesis actually uses (clipped to <= 12 s), never the
original upload; see :mod:`f5vi.voices.library`.

Why ``WhisperProcessor`` + ``generate`` and not ``pipeline("automatic-speech-recognition")``:

- the pipeline reads file paths through ffmpeg (not installed here); we take numpy arrays only;
- resampling, down-mixing and the input dtype are done here, explicitly, instead of by pipeline defaults;
- language "vi" and task "transcribe" are forced on every call (the seed forced neither, so Whisper's
  language detection could pick another language); older fine-tunes whose ``generation_config`` lacks
  ``lang_to_id``/``task_to_id`` are repaired from the tokenizer at load time instead of failing per call.

One Whisper window is 30 s. References are at most 12 s, so audio longer than one window is refused
rather than silently truncated by the feature extractor.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from f5vi.engine.audio import resample
from f5vi.engine.errors import InvalidParameterError, InvalidReferenceError, ModelLoadError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

ASR_SAMPLE_RATE = 16_000
MAX_ASR_SECONDS = 30.0
"""One Whisper window; longer input would be cut by the feature extractor without notice."""
MIN_ASR_SECONDS = 0.1
LANGUAGE = "vi"
TASK = "transcribe"

_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


def _resolve_dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype:
    import torch

    if dtype is None or dtype == "auto":
        # fp16 halves memory and time on GPUs; CPUs are slow (or wrong) in half precision.
        return torch.float16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    name = _DTYPES.get(str(dtype).lower())
    if name is None:
        raise ValueError(f"unsupported dtype {dtype!r}; use one of {sorted(set(_DTYPES.values()))}")
    return getattr(torch, name)


def to_mono_float32(audio: np.ndarray) -> np.ndarray:
    """Return a 1-D float32 copy of ``audio`` (``(frames,)`` or soundfile's ``(frames, channels)``)."""
    array = np.asarray(audio)
    if array.ndim == 2:
        if array.shape[1] == 0:
            raise InvalidReferenceError("reference audio has no channels")
        array = array.mean(axis=1)
    elif array.ndim != 1:
        raise InvalidReferenceError(f"audio must be 1-D or (frames, channels), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        if np.issubdtype(array.dtype, np.integer):
            array = array.astype(np.float64) / float(-np.iinfo(array.dtype).min)
        else:
            raise InvalidReferenceError(f"reference audio has unsupported dtype {array.dtype}")
    array = array.astype(np.float32, copy=True)
    if not np.all(np.isfinite(array)):
        raise InvalidReferenceError("reference audio contains NaN or infinite samples")
    return array


class Transcriber:
    """Lazily loaded, thread-safe Vietnamese speech recogniser.

    The model loads on the first :meth:`transcribe` (or an explicit :meth:`load`) and stays resident
    until :meth:`unload`. One lock serialises loading, inference and unloading, so a concurrent unload
    never pulls the model out from under a running transcription.
    """

    def __init__(
        self,
        model_id: str = "vinai/PhoWhisper-small",
        device: str = "cpu",
        dtype: str | torch.dtype | None = None,
        *,
        max_new_tokens: int | None = None,
        num_beams: int = 1,
        demo_dir: Path | None = None,
    ) -> None:
        self.model_id = model_id
        self.demo_dir = demo_dir
        """With a directory: if ``model_id`` cannot be loaded, the demo recogniser made there (flagged)."""
        self.is_demo = False
        self.device_name = device
        self.dtype_name = dtype
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams
        self._lock = threading.RLock()
        self._processor: Any = None
        self._model: Any = None
        self._device: str | None = None
        self._dtype: torch.dtype | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load processor and model now (idempotent). Raises :class:`ModelLoadError`."""
        with self._lock:
            if self._model is not None:
                return
            started = time.perf_counter()
            from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

            from f5vi.engine.device import resolve_device

            try:
                device = str(resolve_device(self.device_name))
                dtype = _resolve_dtype(self.dtype_name, device)
            except (ValueError, RuntimeError, InvalidParameterError) as exc:
                raise ModelLoadError(f"speech recognition cannot run on {self.device_name!r}: {exc}") from exc
            try:
                processor = AutoProcessor.from_pretrained(self.model_id)
                model = AutoModelForSpeechSeq2Seq.from_pretrained(self.model_id, dtype=dtype)
            except Exception as exc:
                if self.demo_dir is not None:
                    processor, model = self._load_demo(exc, dtype)
                else:
                    self._raise_load_error(exc)
            if not hasattr(processor, "feature_extractor") or not hasattr(processor, "tokenizer"):
                raise ModelLoadError(f"{self.model_id!r} has no Whisper-style processor (feature extractor)")
            _force_language_support(model, processor.tokenizer, self.model_id)
            try:
                model = model.to(device)
            except (RuntimeError, AssertionError) as exc:
                raise ModelLoadError(f"could not move {self.model_id!r} to device {device!r}: {exc}") from exc
            model.eval()
            self._processor, self._model = processor, model
            self._device, self._dtype = device, dtype
            logger.info(
                "loaded ASR model %s on %s (%s) in %.2f s",
                self.model_id,
                device,
                str(dtype).removeprefix("torch."),
                time.perf_counter() - started,
            )

    def _raise_load_error(self, exc: Exception) -> NoReturn:
        # Not found, offline and not cached, gated, corrupt files, unknown architecture: all
        # mean the same to the caller; the message says which.
        reason = str(exc).strip().rstrip(".")
        raise ModelLoadError(
            f"could not load speech recognition model {self.model_id!r}: {reason}. "
            "Point F5VI_ASR_MODEL at a local directory, pre-download the model into the Hugging Face "
            "cache, or allow hub access (HF_HUB_OFFLINE unset); or provide reference transcripts "
            "(<voice>.txt) so no transcription is needed."
        ) from exc

    def _load_demo(self, exc: Exception, dtype: torch.dtype) -> tuple[Any, Any]:
        """The demo recogniser (random weights, garbage transcripts), said loudly."""
        from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

        from f5vi.engine.demo_asr import ensure_demo_asr

        assert self.demo_dir is not None
        logger.error(
            "could not load speech recognition model %r (%s); falling back to the DEMO recogniser in %s: "
            "random weights, its transcripts are GARBAGE (every verification fails)",
            self.model_id,
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
            self.demo_dir,
        )
        path = ensure_demo_asr(self.demo_dir)
        self.is_demo = True
        model = AutoModelForSpeechSeq2Seq.from_pretrained(path, dtype=dtype)
        return AutoProcessor.from_pretrained(path), model

    def unload(self) -> None:
        """Drop the model and free its memory (CPU and GPU). Safe to call when not loaded."""
        with self._lock:
            if self._model is None:
                return
            device = self._device or "cpu"
            self._model = None
            self._processor = None
            self._device = None
            self._dtype = None
            gc.collect()
            if device.startswith("cuda"):
                import torch

                torch.cuda.empty_cache()
            logger.info("unloaded ASR model %s", self.model_id)

    # -- inference ---------------------------------------------------------------------------------
    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        """Transcribe Vietnamese speech in ``audio`` (float mono, or ``(frames, channels)``).

        Returns the NFC-normalised, stripped transcript. Raises :class:`InvalidReferenceError` for
        unusable audio or when nothing was recognised, :class:`ModelLoadError` when the model is
        unavailable.
        """
        if not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
            raise InvalidReferenceError(f"invalid sample rate {sample_rate!r}")
        wav = to_mono_float32(audio)
        duration = len(wav) / float(sample_rate)
        if duration < MIN_ASR_SECONDS:
            raise InvalidReferenceError(f"reference audio is too short to transcribe ({duration:.2f} s)")
        if duration > MAX_ASR_SECONDS:
            raise InvalidReferenceError(
                f"reference audio is {duration:.1f} s; transcription handles at most {MAX_ASR_SECONDS:.0f} s "
                "(clip the reference first)"
            )
        wav16 = resample(wav, int(sample_rate), ASR_SAMPLE_RATE)
        with self._lock:
            self.load()
            started = time.perf_counter()
            token_ids = self._generate(wav16)
            text = self._processor.batch_decode(token_ids, skip_special_tokens=True)[0]
            elapsed = time.perf_counter() - started
        text = unicodedata.normalize("NFC", text).strip()
        logger.info("transcribed %.2f s of reference audio in %.2f s", duration, elapsed)
        if not text:
            raise InvalidReferenceError(
                "no speech was recognised in the reference audio; "
                "upload clean speech or provide the transcript yourself"
            )
        return text

    def transcribe_many(self, waves: list[np.ndarray], sample_rate: int, *, batch_size: int = 8) -> list[str]:
        """Transcribe several clips (float mono) in batches; an unintelligible clip gives ``""``.

        For checking synthesised audio (:mod:`f5vi.engine.verify`, ``f5vi eval``): nothing is refused, a
        clip longer than one Whisper window is cut into windows whose transcripts are joined, a clip
        shorter than :data:`MIN_ASR_SECONDS` is padded with silence. Returns NFC, stripped texts.
        """
        windows: list[np.ndarray] = []
        owners: list[int] = []
        window = int(MAX_ASR_SECONDS * ASR_SAMPLE_RATE)
        for owner, wave in enumerate(waves):
            wav16 = resample(to_mono_float32(wave), int(sample_rate), ASR_SAMPLE_RATE)
            if len(wav16) < MIN_ASR_SECONDS * ASR_SAMPLE_RATE:
                wav16 = np.pad(wav16, (0, int(MIN_ASR_SECONDS * ASR_SAMPLE_RATE) - len(wav16)))
            for start in range(0, len(wav16), window):
                windows.append(wav16[start : start + window])
                owners.append(owner)
        texts: list[list[str]] = [[] for _ in waves]
        with self._lock:
            self.load()
            started = time.perf_counter()
            for first in range(0, len(windows), max(1, batch_size)):
                batch = windows[first : first + max(1, batch_size)]
                decoded = self._processor.batch_decode(self._generate(batch), skip_special_tokens=True)
                for owner, text in zip(owners[first : first + len(batch)], decoded, strict=True):
                    texts[owner].append(text)
            elapsed = time.perf_counter() - started
        seconds = sum(len(w) for w in windows) / ASR_SAMPLE_RATE
        logger.debug("transcribed %d clip(s), %.2f s of audio, in %.2f s", len(waves), seconds, elapsed)
        return [unicodedata.normalize("NFC", " ".join(parts)).strip() for parts in texts]

    def _generate(self, wav16: np.ndarray | list[np.ndarray]) -> torch.Tensor:
        """Run Whisper on 16 kHz mono audio (one clip or a batch); returns token ids ``(batch, n)``.

        Caller holds the lock."""
        import torch

        features = self._processor.feature_extractor(
            wav16, sampling_rate=ASR_SAMPLE_RATE, return_tensors="pt"
        ).input_features
        features = features.to(device=self._device, dtype=self._dtype)
        kwargs: dict[str, Any] = {"language": LANGUAGE, "task": TASK, "num_beams": self.num_beams}
        if self.max_new_tokens is not None:
            kwargs["max_new_tokens"] = self.max_new_tokens
        with torch.inference_mode():
            return self._model.generate(features, **kwargs)


def _force_language_support(model: Any, tokenizer: Any, model_id: str) -> None:
    """Make sure ``generate(language="vi", task="transcribe")`` works for this checkpoint.

    Fine-tunes saved with old transformers versions may lack ``lang_to_id``/``task_to_id`` in their
    generation config (generate then raises on every call); fill them in from the tokenizer.
    """
    config = model.generation_config
    vocab_ids = {
        token: tokenizer.convert_tokens_to_ids(token)
        for token in ("<|vi|>", "<|transcribe|>", "<|translate|>", "<|notimestamps|>")
    }
    unk = getattr(tokenizer, "unk_token_id", None)
    missing = [t for t in ("<|vi|>", "<|transcribe|>") if vocab_ids[t] is None or vocab_ids[t] == unk]
    if missing:
        raise ModelLoadError(f"{model_id!r} is not a multilingual Whisper model (tokenizer lacks {missing})")
    lang_to_id = dict(getattr(config, "lang_to_id", None) or {})
    if "<|vi|>" not in lang_to_id:
        lang_to_id["<|vi|>"] = vocab_ids["<|vi|>"]
        config.lang_to_id = lang_to_id
    task_to_id = dict(getattr(config, "task_to_id", None) or {})
    if "transcribe" not in task_to_id:
        task_to_id["transcribe"] = vocab_ids["<|transcribe|>"]
        if vocab_ids["<|translate|>"] not in (None, unk):
            task_to_id.setdefault("translate", vocab_ids["<|translate|>"])
        config.task_to_id = task_to_id
    if getattr(config, "no_timestamps_token_id", None) is None and vocab_ids["<|notimestamps|>"] not in (
        None,
        unk,
    ):
        config.no_timestamps_token_id = vocab_ids["<|notimestamps|>"]
    if not getattr(config, "is_multilingual", False):
        config.is_multilingual = True
