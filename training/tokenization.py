"""Train word-level or WordPiece tokenizers with the ``tokenizers`` library."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
SEP_TOKEN = "[SEP]"
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, SEP_TOKEN)  # PAD first: its id is contract.PAD_ID == 0


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    kind: Literal["word", "wordpiece"] = "word",
    min_frequency: int = 1,
) -> Tokenizer:
    """Train a lower-casing tokenizer on texts; unknown words map to ``[UNK]``."""
    if kind == "word":
        tokenizer = Tokenizer(models.WordLevel(unk_token=UNK_TOKEN))
        trainer: trainers.Trainer = trainers.WordLevelTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS)
        )
    else:
        tokenizer = Tokenizer(models.WordPiece(unk_token=UNK_TOKEN, max_input_chars_per_word=50))
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS)
        )
        tokenizer.decoder = decoders.WordPiece()
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer
