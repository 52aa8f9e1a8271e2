"""VoiceLibrary: listing, safe name resolution, uploads, transcript caching (tiny real Whisper)."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from f5vi.engine.asr import Transcriber
from f5vi.engine.audio import load_audio, prepare_reference, resample
from f5vi.engine.errors import InvalidReferenceError
from f5vi.voices import (
    InvalidVoiceNameError,
    InvalidVoiceUploadError,
    TranscriptionUnavailableError,
    Voice,
    VoiceExistsError,
    VoiceLibrary,
    VoiceNotFoundError,
    VoiceReadOnlyError,
    VoiceUploadTooLargeError,
    parse_voice_name,
)
from server_helpers import write_voice
from tiny_whisper import tiny_whisper

SHIPPED = ("vi_central_male", "vi_north_male", "vi_south_male")
SR = 24_000


class RecordingTranscriber(Transcriber):
    """The real Transcriber, also keeping a copy of every input it was given."""

    def __init__(self, model_id: str) -> None:
        super().__init__(model_id)
        self.calls: list[tuple[np.ndarray, int]] = []

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        self.calls.append((np.array(audio, copy=True), int(sample_rate)))
        return super().transcribe(audio, sample_rate)


@pytest.fixture(scope="session")
def session_transcriber(tmp_path_factory: pytest.TempPathFactory) -> RecordingTranscriber:
    return RecordingTranscriber(str(tiny_whisper(tmp_path_factory)))


@pytest.fixture
def transcriber(session_transcriber: RecordingTranscriber) -> RecordingTranscriber:
    session_transcriber.calls.clear()
    return session_transcriber


@pytest.fixture
def shipped_dir(repo_root: Path) -> Path:
    return repo_root / "voices"


@pytest.fixture
def voices_dir(tmp_path: Path, shipped_dir: Path) -> Path:
    """A private copy of the shipped voices inside ``tmp_path/voices``."""
    target = tmp_path / "voices"
    target.mkdir()
    for voice_id in SHIPPED:
        for suffix in (".wav", ".txt", ".json"):
            shutil.copy(shipped_dir / f"{voice_id}{suffix}", target)
    return target


@pytest.fixture
def library(voices_dir: Path, transcriber: RecordingTranscriber) -> VoiceLibrary:
    return VoiceLibrary(voices_dir, transcriber, max_reference_seconds=12.0)


def _speech(shipped_dir: Path, voice_id: str = "vi_north_male") -> np.ndarray:
    wave, sr = sf.read(shipped_dir / f"{voice_id}.wav", dtype="float32")
    assert sr == SR
    return wave


def _long_speech(shipped_dir: Path) -> np.ndarray:
    """About 22 s: the three shipped sentences separated by 0.8 s pauses (longer than the 12 s limit)."""
    pause = np.zeros(int(0.8 * SR), dtype=np.float32)
    parts: list[np.ndarray] = []
    for voice_id in SHIPPED:
        parts += [_speech(shipped_dir, voice_id), pause]
    return np.concatenate(parts)


def _encode(wave: np.ndarray, sr: int, fmt: str = "WAV", subtype: str | None = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, wave, sr, format=fmt, subtype=subtype)
    return buffer.getvalue()


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------------------------------
# listing and resolving


def test_list_reports_each_voice(library: VoiceLibrary, voices_dir: Path) -> None:
    voices = library.list()
    assert [v.id for v in voices] == list(SHIPPED)
    for voice in voices:
        assert isinstance(voice, Voice)
        assert voice.audio_path == (voices_dir / f"{voice.id}.wav").resolve()
        assert voice.sample_rate == SR
        assert voice.channels == 1
        assert voice.size_bytes == voice.audio_path.stat().st_size
        assert 4.0 <= voice.duration_seconds <= 10.0
        assert voice.synthetic is True
        expected = (voices_dir / f"{voice.id}.txt").read_text(encoding="utf-8").strip()
        assert voice.transcript == expected
        ref = voice.to_reference()
        assert (ref.audio_path, ref.transcript, ref.voice_id) == (
            voice.audio_path,
            voice.transcript,
            voice.id,
        )


def test_list_of_missing_directory_is_empty(tmp_path: Path) -> None:
    assert VoiceLibrary(tmp_path / "nope", None).list() == []


@pytest.mark.parametrize(
    "ref_name",
    [
        "vi_south_male",
        "vi_south_male.wav",
        "vi_south_male.WAV",
        "sample/vi_south_male.wav",
        "voices/vi_south_male.wav",
        "voices/vi_south_male",
        "voice:vi_south_male",
        "  vi_south_male  ",
    ],
)
def test_resolve_accepts_the_seed_forms(library: VoiceLibrary, ref_name: str) -> None:
    assert library.resolve(ref_name).id == "vi_south_male"


def test_resolve_unknown_voice(library: VoiceLibrary) -> None:
    with pytest.raises(VoiceNotFoundError) as info:
        library.resolve("3_Nu")
    assert info.value.code == "voice_not_found"


TRAVERSAL = [
    "../x",
    "..%2Fx",
    "%2e%2e%2fx",
    "..",
    "../voices/vi_north_male",
    "sample/../x",
    "voices/../x.wav",
    "voice:../x",
    "/x",
    "/etc/passwd",
    str(Path("/") / "tmp" / "x.wav"),
    "~/x",
    "x/y",
    "sample/sample/x",
    "x\\..\\y",
    "..\\x",
    "C:\\x",
    "x\x00",
    "vi_north_male\x00.wav",
    "x\ny",
    ".hidden",
    "-rf",
    "",
    "   ",
    "a" * 65,
    "a" * 10_000,
    "giọng_nữ",
    "x.wav.wav",
]


@pytest.mark.parametrize("ref_name", TRAVERSAL, ids=[repr(t)[:40] for t in TRAVERSAL])
def test_resolve_rejects_malformed_and_traversal(
    library: VoiceLibrary, voices_dir: Path, ref_name: str
) -> None:
    # A valid voice right outside the voices directory: following "../x" would find it.
    shutil.copy(voices_dir / "vi_north_male.wav", voices_dir.parent / "x.wav")
    with pytest.raises(InvalidVoiceNameError) as info:
        library.resolve(ref_name)
    assert info.value.code == "invalid_voice_name"
    with pytest.raises(InvalidVoiceNameError):
        parse_voice_name(ref_name)


@pytest.mark.parametrize("bad", [None, 3, b"vi_north_male", Path("vi_north_male")])
def test_resolve_rejects_non_strings(library: VoiceLibrary, bad: object) -> None:
    with pytest.raises(InvalidVoiceNameError):
        library.resolve(bad)  # type: ignore[arg-type]


def test_symlink_pointing_outside_is_rejected(library: VoiceLibrary, voices_dir: Path) -> None:
    outside = voices_dir.parent / "secret.wav"
    shutil.copy(voices_dir / "vi_north_male.wav", outside)
    (voices_dir / "evil.wav").symlink_to(outside)
    (voices_dir / "evil.txt").write_text("không được đọc.\n", encoding="utf-8")
    with pytest.raises(InvalidVoiceNameError, match="outside"):
        library.resolve("evil")
    assert "evil" not in [v.id for v in library.list()]
    # A relative link escaping through ".." is caught the same way.
    (voices_dir / "evil2.wav").symlink_to(Path("..") / "secret.wav")
    with pytest.raises(InvalidVoiceNameError):
        library.resolve("evil2")


def test_symlink_inside_the_directory_is_followed(library: VoiceLibrary, voices_dir: Path) -> None:
    (voices_dir / "alias.wav").symlink_to("vi_north_male.wav")
    voice = library.resolve("alias")
    assert voice.id == "alias"
    assert voice.transcript is None  # the alias has no transcript of its own
    assert voice.duration_seconds == library.resolve("vi_north_male").duration_seconds


def test_transcript_symlink_outside_is_not_read(library: VoiceLibrary, voices_dir: Path) -> None:
    secret = voices_dir.parent / "secret.txt"
    secret.write_text("mật khẩu.\n", encoding="utf-8")
    shutil.copy(voices_dir / "vi_north_male.wav", voices_dir / "leak.wav")
    (voices_dir / "leak.txt").symlink_to(secret)
    assert "leak" not in [v.id for v in library.list()]
    with pytest.raises(Exception, match="outside") as info:
        library.resolve("leak")
    assert "mật khẩu" not in str(info.value)


def test_transcripts_are_read_as_nfc_utf8_and_stripped(library: VoiceLibrary, voices_dir: Path) -> None:
    nfd = unicodedata.normalize("NFD", "Xin chào Việt Nam.")
    assert nfd != "Xin chào Việt Nam."
    (voices_dir / "vi_north_male.txt").write_bytes(("\ufeff  " + nfd + "  \n\n").encode("utf-8"))
    assert library.resolve("vi_north_male").transcript == "Xin chào Việt Nam."


def test_blank_transcript_counts_as_missing(library: VoiceLibrary, voices_dir: Path) -> None:
    (voices_dir / "vi_north_male.txt").write_text(" \n", encoding="utf-8")
    assert library.resolve("vi_north_male").transcript is None


def test_invalid_utf8_transcript_is_reported(library: VoiceLibrary, voices_dir: Path) -> None:
    (voices_dir / "vi_north_male.txt").write_bytes(b"xin ch\xe0o")
    with pytest.raises(Exception, match="UTF-8") as info:
        library.resolve("vi_north_male")
    assert getattr(info.value, "code", None) == "voice_unreadable"
    assert "vi_north_male" not in [v.id for v in library.list()]


# --------------------------------------------------------------------------------------------------
# transcripts written by the transcriber


def test_ensure_transcript_writes_the_missing_txt(
    library: VoiceLibrary, voices_dir: Path, transcriber: RecordingTranscriber
) -> None:
    (voices_dir / "vi_south_male.txt").unlink()
    voice = library.resolve("vi_south_male")
    assert voice.transcript is None

    done = library.ensure_transcript(voice)

    assert done.transcript
    assert len(transcriber.calls) == 1
    txt = voices_dir / "vi_south_male.txt"
    assert txt.read_text(encoding="utf-8") == done.transcript + "\n"
    assert library.resolve("vi_south_male").transcript == done.transcript
    # The transcriber heard what synthesis uses: the prepared (trimmed, normalised) 24 kHz clip.
    audio, sr = transcriber.calls[0]
    prepared = prepare_reference(*load_audio(voice.audio_path), max_seconds=12.0, target_rms=0.1)
    assert sr == prepared.sample_rate == SR
    np.testing.assert_array_equal(audio, prepared.wave_24k)
    # Cached: neither a stale Voice nor a fresh one triggers a second transcription.
    assert library.ensure_transcript(voice).transcript == done.transcript
    assert library.ensure_transcript(done) is done
    assert len(transcriber.calls) == 1
    assert not [name for name in _files(voices_dir) if name.endswith(".tmp")]


def test_resolution_order_and_shadowing(tmp_path: Path, voices_dir: Path) -> None:
    """Read-only directories first, in order; a same-id file in the upload directory is ignored."""
    extra = tmp_path / "operator"
    uploads = tmp_path / "uploads"
    write_voice(extra, "vi_north_male", transcript="giọng khác")  # shadowed by the shipped one
    write_voice(extra, "operator_voice")
    write_voice(uploads, "operator_voice", transcript="bị che")  # shadowed by the operator's
    write_voice(uploads, "uploaded")
    library = VoiceLibrary(uploads, None, read_only_dirs=[voices_dir, extra])
    voices = {v.id: v for v in library.list()}
    assert voices["vi_north_male"].audio_path.parent == voices_dir.resolve()
    assert voices["operator_voice"].audio_path.parent == extra.resolve()
    assert voices["operator_voice"].read_only
    assert not voices["uploaded"].read_only
    assert library.resolve("voices/operator_voice.wav").transcript != "bị che"
    with pytest.raises(VoiceReadOnlyError):
        library.delete("operator_voice")  # the upload directory's copy is not reachable either
    library.delete("uploaded")
    assert not (uploads / "uploaded.wav").exists()


def test_upload_directory_may_not_be_read_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="read-only"):
        VoiceLibrary(tmp_path / "v", None, read_only_dirs=[tmp_path / "v"])


def test_read_only_voice_transcript_is_kept_in_memory(
    voices_dir: Path, tmp_path: Path, transcriber: RecordingTranscriber
) -> None:
    """A shipped voice without its .txt is transcribed once, but nothing is written anywhere."""
    (voices_dir / "vi_south_male.txt").unlink()
    before = {p.name: p.read_bytes() for p in voices_dir.iterdir()}
    library = VoiceLibrary(tmp_path / "uploads", transcriber, read_only_dirs=[voices_dir])
    done = library.ensure_transcript(library.resolve("vi_south_male"))
    assert done.transcript and done.read_only
    assert library.resolve("vi_south_male").transcript == done.transcript
    assert library.ensure_transcript(library.get("vi_south_male")).transcript == done.transcript
    assert len(transcriber.calls) == 1
    assert {p.name: p.read_bytes() for p in voices_dir.iterdir()} == before
    assert not (tmp_path / "uploads").exists()


def test_ensure_transcript_of_a_long_clip_transcribes_the_clipped_audio(
    library: VoiceLibrary, voices_dir: Path, shipped_dir: Path, transcriber: RecordingTranscriber
) -> None:
    long = _long_speech(shipped_dir)
    assert len(long) / SR > 20.0
    sf.write(voices_dir / "long_read.wav", long, SR, subtype="PCM_16")
    voice = library.resolve("long_read")
    assert voice.duration_seconds > 20.0

    library.ensure_transcript(voice)

    ((audio, sr),) = transcriber.calls
    prepared = prepare_reference(*load_audio(voice.audio_path), max_seconds=12.0, target_rms=0.1)
    assert prepared.clipped
    assert len(audio) == len(prepared.wave_24k)
    assert len(audio) / sr <= 12.0 + 0.06  # at most the limit plus prepare_reference's 50 ms tail
    assert len(audio) < len(long) / 2
    assert (voices_dir / "long_read.txt").is_file()


def test_concurrent_ensure_transcript_transcribes_once(
    library: VoiceLibrary, voices_dir: Path, transcriber: RecordingTranscriber
) -> None:
    (voices_dir / "vi_central_male.txt").unlink()
    stale = library.resolve("vi_central_male")
    start = threading.Barrier(4)
    results: list[str | None] = []

    def work() -> None:
        start.wait()
        results.append(library.ensure_transcript(stale).transcript)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 4
    assert results[0] and len(set(results)) == 1
    assert len(transcriber.calls) == 1


def test_ensure_transcript_without_transcriber(voices_dir: Path) -> None:
    (voices_dir / "vi_north_male.txt").unlink()
    library = VoiceLibrary(voices_dir, None)
    with pytest.raises(TranscriptionUnavailableError, match=r"vi_north_male\.txt"):
        library.ensure_transcript(library.resolve("vi_north_male"))
    assert not (voices_dir / "vi_north_male.txt").exists()


# --------------------------------------------------------------------------------------------------
# uploads


def test_upload_of_44k_stereo_is_stored_as_24k_mono_pcm16(
    library: VoiceLibrary, voices_dir: Path, shipped_dir: Path, transcriber: RecordingTranscriber
) -> None:
    wave = _speech(shipped_dir)
    left = resample(wave, SR, 44_100)
    stereo = np.stack([left, 0.5 * left], axis=1)
    data = _encode(stereo, 44_100, subtype="PCM_24")
    transcript = unicodedata.normalize("NFD", "  Xin chào,\n tôi là giọng đọc mẫu miền Bắc.  ")

    voice = library.upload("my_voice", data, transcript, "giọng đọc.wav")

    info = sf.info(str(voices_dir / "my_voice.wav"))
    assert (info.samplerate, info.channels, info.subtype, info.format) == (SR, 1, "PCM_16", "WAV")
    assert (voice.sample_rate, voice.channels) == (SR, 1)
    assert voice.duration_seconds == pytest.approx(len(wave) / SR, abs=0.01)
    assert voice.transcript == "Xin chào, tôi là giọng đọc mẫu miền Bắc."
    assert (voices_dir / "my_voice.txt").read_text(encoding="utf-8") == voice.transcript + "\n"
    stored, _ = sf.read(voices_dir / "my_voice.wav", dtype="float32")
    expected = 0.75 * wave  # the mono mix of (x, 0.5 x)
    n = min(len(stored), len(expected))
    assert np.corrcoef(stored[:n], expected[:n])[0, 1] > 0.99
    assert transcriber.calls == []  # a user transcript is used as is
    metadata = json.loads((voices_dir / "my_voice.json").read_text(encoding="utf-8"))
    assert metadata["transcript_source"] == "user"
    assert metadata["original_filename"] == "giọng đọc.wav"
    assert metadata["clipped"] is False
    assert voice.synthetic is False
    assert library.resolve("my_voice.wav") == voice
    assert not [name for name in _files(voices_dir) if name.startswith(".")]


@pytest.mark.parametrize(
    ("fmt", "subtype"), [("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III"), ("WAV", "FLOAT")]
)
def test_upload_accepts_common_formats(
    library: VoiceLibrary, shipped_dir: Path, fmt: str, subtype: str
) -> None:
    wave = _speech(shipped_dir)
    voice = library.upload(
        f"v_{fmt.lower()}", _encode(wave, SR, fmt, subtype), "xin chào.", f"a.{fmt.lower()}"
    )
    assert (voice.sample_rate, voice.channels) == (SR, 1)
    assert voice.duration_seconds == pytest.approx(len(wave) / SR, abs=0.1)


def test_upload_without_transcript_is_transcribed(
    library: VoiceLibrary, voices_dir: Path, shipped_dir: Path, transcriber: RecordingTranscriber
) -> None:
    voice = library.upload("auto", _encode(_speech(shipped_dir), SR), None, "auto.wav")
    assert voice.transcript
    assert len(transcriber.calls) == 1
    assert (voices_dir / "auto.txt").read_text(encoding="utf-8").strip() == voice.transcript
    metadata = json.loads((voices_dir / "auto.json").read_text(encoding="utf-8"))
    assert metadata["transcript_source"] == "asr"
    assert metadata["asr_model"] == transcriber.model_id


def test_blank_transcript_is_treated_as_omitted(
    library: VoiceLibrary, shipped_dir: Path, transcriber: RecordingTranscriber
) -> None:
    voice = library.upload("blank", _encode(_speech(shipped_dir), SR), " \n ", None)
    assert voice.transcript
    assert len(transcriber.calls) == 1


def test_long_upload_is_clipped_and_the_clip_transcribed(
    library: VoiceLibrary, voices_dir: Path, shipped_dir: Path, transcriber: RecordingTranscriber
) -> None:
    long = _long_speech(shipped_dir)
    data = _encode(np.stack([resample(long, SR, 44_100)] * 2, axis=1), 44_100)

    voice = library.upload("long_upload", data, None, "long.wav")

    assert voice.duration_seconds <= 12.0
    assert voice.duration_seconds < len(long) / SR / 2
    ((audio, sr),) = transcriber.calls
    # Exactly what synthesis will hear: the stored file, loaded and prepared by the engine's code.
    prepared = prepare_reference(*load_audio(voice.audio_path), max_seconds=12.0, target_rms=0.1)
    assert not prepared.clipped  # the stored clip is within the limit: nothing more is cut later
    assert sr == SR
    assert len(audio) == len(prepared.wave_24k)
    np.testing.assert_allclose(audio, prepared.wave_24k, atol=1e-6)
    assert len(audio) / sr <= 12.0 + 0.06
    assert (voices_dir / "long_upload.txt").read_text(encoding="utf-8").strip() == voice.transcript
    metadata = json.loads((voices_dir / "long_upload.json").read_text(encoding="utf-8"))
    assert metadata["clipped"] is True
    assert metadata["original_seconds"] == pytest.approx(len(long) / SR, abs=0.01)


def test_long_upload_with_transcript_is_refused(
    library: VoiceLibrary, voices_dir: Path, shipped_dir: Path, transcriber: RecordingTranscriber
) -> None:
    before = _files(voices_dir)
    data = _encode(_long_speech(shipped_dir), SR)
    with pytest.raises(InvalidVoiceUploadError, match="omit the transcript") as info:
        library.upload("long_text", data, "xin chào các bạn.", "long.wav")
    assert info.value.code == "transcript_for_clipped_audio"
    assert "12" in info.value.message
    assert _files(voices_dir) == before
    assert transcriber.calls == []


def test_long_upload_that_is_mostly_silence_keeps_the_transcript(
    library: VoiceLibrary, voices_dir: Path, shipped_dir: Path, transcriber: RecordingTranscriber
) -> None:
    """Only silence is dropped (no speech cut), so the user's transcript still matches."""
    speech = _speech(shipped_dir)
    padded = np.concatenate([np.zeros(3 * SR, np.float32), speech, np.zeros(6 * SR, np.float32)])
    assert len(padded) / SR > 12.0
    text = (shipped_dir / "vi_north_male.txt").read_text(encoding="utf-8").strip()

    voice = library.upload("padded", _encode(padded, SR), text, "padded.wav")

    assert voice.transcript == text
    assert transcriber.calls == []
    assert len(speech) / SR - 0.5 <= voice.duration_seconds <= 12.0
    metadata = json.loads((voices_dir / "padded.json").read_text(encoding="utf-8"))
    assert metadata["clipped"] is False
    assert not prepare_reference(*load_audio(voice.audio_path), max_seconds=12.0).clipped


NOT_AUDIO = {
    "text": "xin chào, đây không phải âm thanh".encode(),
    "random": np.random.default_rng(0).bytes(4096),
    "png": b"\x89PNG\r\n\x1a\n" + bytes(200),
    "riff-header-only": b"RIFF\x24\x00\x00\x00WAVEfmt ",
    "empty": b"",
}


@pytest.mark.parametrize("name", list(NOT_AUDIO))
def test_upload_of_non_audio_is_refused(
    library: VoiceLibrary, voices_dir: Path, transcriber: RecordingTranscriber, name: str
) -> None:
    before = _files(voices_dir)
    with pytest.raises(InvalidVoiceUploadError) as info:
        library.upload("junk", NOT_AUDIO[name], "xin chào.", f"{name}.wav")
    assert info.value.code == "invalid_voice_upload"
    assert _files(voices_dir) == before
    assert transcriber.calls == []


def test_upload_of_unsupported_container_is_refused(library: VoiceLibrary, shipped_dir: Path) -> None:
    data = _encode(_speech(shipped_dir), SR, "AIFF", "PCM_16")
    with pytest.raises(InvalidVoiceUploadError, match="AIFF"):
        library.upload("aiff", data, "xin chào.", "a.aiff")


@pytest.mark.parametrize(
    ("wave", "message"),
    [
        (np.zeros(3 * SR, dtype=np.float32), "silent"),
        (0.3 * np.sin(np.arange(int(0.4 * SR)) / SR * 2 * np.pi * 220).astype(np.float32), "at least"),
    ],
    ids=["silence", "too-short"],
)
def test_upload_of_unusable_reference_is_refused(
    library: VoiceLibrary, voices_dir: Path, wave: np.ndarray, message: str
) -> None:
    with pytest.raises(InvalidVoiceUploadError, match=message):
        library.upload("unusable", _encode(wave, SR), "xin chào.", None)
    assert not (voices_dir / "unusable.wav").exists()


def test_upload_size_limit(voices_dir: Path, shipped_dir: Path, transcriber: RecordingTranscriber) -> None:
    library = VoiceLibrary(voices_dir, transcriber, max_upload_bytes=100_000)
    data = _encode(_speech(shipped_dir), SR)
    assert len(data) > 100_000
    with pytest.raises(VoiceUploadTooLargeError) as info:
        library.upload("big", data, "xin chào.", None)
    assert info.value.code == "voice_upload_too_large"
    assert not (voices_dir / "big.wav").exists()


@pytest.mark.parametrize("voice_id", ["../x", "/tmp/x", "x/y", "", ".x", "x.wav", "x.txt", "a" * 65, "x\x00"])
def test_upload_rejects_bad_ids(
    library: VoiceLibrary, voices_dir: Path, shipped_dir: Path, voice_id: str
) -> None:
    before = _files(voices_dir)
    with pytest.raises(InvalidVoiceNameError):
        library.upload(voice_id, _encode(_speech(shipped_dir), SR), "xin chào.", None)
    assert _files(voices_dir) == before
    assert _files(voices_dir.parent) == ["voices"]


def test_upload_to_an_existing_id_needs_overwrite(
    library: VoiceLibrary, voices_dir: Path, shipped_dir: Path
) -> None:
    original = (voices_dir / "vi_north_male.wav").read_bytes()
    data = _encode(_speech(shipped_dir, "vi_south_male"), SR)
    with pytest.raises(VoiceExistsError) as info:
        library.upload("vi_north_male", data, "xin chào.", None)
    assert info.value.code == "voice_exists"
    assert (voices_dir / "vi_north_male.wav").read_bytes() == original

    voice = library.upload("vi_north_male", data, "Chào miền Nam.", None, overwrite=True)
    assert voice.transcript == "Chào miền Nam."
    assert voice.synthetic is False  # the new metadata replaced the shipped one
    assert voice.duration_seconds == pytest.approx(len(_speech(shipped_dir, "vi_south_male")) / SR, abs=0.01)


def test_upload_replaces_a_symlink_not_its_target(
    library: VoiceLibrary, voices_dir: Path, shipped_dir: Path
) -> None:
    (voices_dir / "linked.wav").symlink_to("vi_north_male.wav")
    library.upload(
        "linked", _encode(_speech(shipped_dir, "vi_south_male"), SR), "xin chào.", None, overwrite=True
    )
    assert not (voices_dir / "linked.wav").is_symlink()
    assert (voices_dir / "vi_north_male.wav").read_bytes() == (shipped_dir / "vi_north_male.wav").read_bytes()


def test_upload_without_transcriber_needs_a_transcript(voices_dir: Path, shipped_dir: Path) -> None:
    library = VoiceLibrary(voices_dir, None)
    data = _encode(_speech(shipped_dir), SR)
    with pytest.raises(TranscriptionUnavailableError):
        library.upload("no_asr", data, None, None)
    assert library.upload("no_asr", data, "xin chào.", None).transcript == "xin chào."


def test_upload_whose_transcription_is_empty_is_refused(
    voices_dir: Path, shipped_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    blank = Transcriber(str(tiny_whisper(tmp_path_factory, allowed_text=" ")))
    library = VoiceLibrary(voices_dir, blank)
    with pytest.raises(InvalidVoiceUploadError, match="no speech was recognised"):
        library.upload("mute", _encode(_speech(shipped_dir), SR), None, "mute.wav")
    assert not (voices_dir / "mute.wav").exists()
    (voices_dir / "vi_north_male.txt").unlink()
    with pytest.raises(InvalidReferenceError):
        library.ensure_transcript(library.resolve("vi_north_male"))
    assert not (voices_dir / "vi_north_male.txt").exists()
    blank.unload()


def test_delete(library: VoiceLibrary, voices_dir: Path) -> None:
    library.delete("vi_central_male")
    assert not any(p.name.startswith("vi_central_male") for p in voices_dir.iterdir())
    assert [v.id for v in library.list()] == ["vi_north_male", "vi_south_male"]
    with pytest.raises(VoiceNotFoundError):
        library.delete("vi_central_male")
    with pytest.raises(VoiceNotFoundError):
        library.resolve("vi_central_male")
    with pytest.raises(InvalidVoiceNameError):
        library.delete("../voices/vi_north_male")


def test_delete_of_a_symlink_keeps_its_target(library: VoiceLibrary, voices_dir: Path) -> None:
    (voices_dir / "alias.wav").symlink_to("vi_north_male.wav")
    library.delete("alias")
    assert (voices_dir / "vi_north_male.wav").is_file()
    assert not os.path.lexists(voices_dir / "alias.wav")
