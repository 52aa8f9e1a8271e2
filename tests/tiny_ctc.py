"""A tiny random-weight Vietnamese wav2vec2 CTC model in the real transformers layout (save_pretrained)."""

from __future__ import annotations

import json
from pathlib import Path

LETTERS = "aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵfjwz'"


def make_tiny_ctc(directory: Path, seed: int = 0) -> Path:
    """``Wav2Vec2ForCTC`` (2 layers, 32 wide) + ``Wav2Vec2Processor`` with a letter vocabulary, as a
    Vietnamese fine-tune ships them (``<pad>`` is the CTC blank, ``|`` the word delimiter)."""
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}
    for letter in LETTERS:
        vocab.setdefault(letter, len(vocab))
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tokenizer = Wav2Vec2CTCTokenizer(str(directory / "vocab.json"), word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(sampling_rate=16_000, do_normalize=True, return_attention_mask=False)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(directory)
    torch.manual_seed(seed)
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        pad_token_id=0,
        ctc_loss_reduction="mean",
    )
    Wav2Vec2ForCTC(config).eval().save_pretrained(directory)
    return directory
