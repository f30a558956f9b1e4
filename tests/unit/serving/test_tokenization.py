"""encode_texts: padding, truncation sides, special tokens kept after truncation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from serving.contract import PAD_ID
from serving.tokenization import encode_texts, load_tokenizer
from training.tokenization import train_tokenizer


def _tokenizer():
    return train_tokenizer(["one two three four five six", "seven eight"], vocab_size=50)


def test_pads_to_longest_with_pad_id() -> None:
    ids = encode_texts(_tokenizer(), ["one two three", "seven"], max_length=10)
    assert ids.dtype == np.int32
    assert ids.shape == (2, 3)
    assert ids[1, 1] == PAD_ID and ids[1, 2] == PAD_ID


def test_truncation_sides() -> None:
    tokenizer = _tokenizer()
    full = encode_texts(tokenizer, ["one two three four five six"], max_length=10)[0]
    left = encode_texts(tokenizer, ["one two three four five six"], 2, truncation="left")[0]
    right = encode_texts(tokenizer, ["one two three four five six"], 2, truncation="right")[0]
    assert list(left) == list(full[-2:])
    assert list(right) == list(full[:2])


def test_unknown_words_and_case() -> None:
    tokenizer = _tokenizer()
    ids = encode_texts(tokenizer, ["ONE zebra"], max_length=5)[0]
    assert ids[0] == tokenizer.token_to_id("one")
    assert ids[1] == tokenizer.token_to_id("[UNK]")


def test_special_tokens_survive_truncation() -> None:
    from tokenizers import processors

    tokenizer = _tokenizer()
    sep = tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A [SEP]", special_tokens=[("[SEP]", sep)]
    )
    ids = encode_texts(tokenizer, ["one two three four"], max_length=3)[0]
    assert len(ids) == 3 and ids[-1] == sep


def test_join_posts_separates_and_cuts() -> None:
    from serving.tokenization import join_posts

    assert join_posts(["a b", "c"], "[SEP]") == "a b [SEP] c"
    assert join_posts(["a b", "c"], "[SEP]", max_chars=5) == "a b ["


def test_encodings_without_offsets_have_the_same_ids_and_cut() -> None:
    from serving.tokenization import id_matrix, plain_encodings

    tokenizer = train_tokenizer(
        ["Café crème, naïve résumé!", "one two [SEP] three", "seven eight"], vocab_size=80
    )
    texts = ["Café crème, NAÏVE résumé! one two", "  seven\teight [SEP] zebra ", "", "one " * 40]
    slow = plain_encodings(tokenizer, texts)
    fast = plain_encodings(tokenizer, texts, offsets=False)
    assert [e.ids for e in fast] == [e.ids for e in slow]
    assert [len(e) for e in fast] == [len(e) for e in slow]
    for truncation in ("left", "right"):
        a = id_matrix(tokenizer, plain_encodings(tokenizer, texts), 7, truncation)
        b = id_matrix(tokenizer, plain_encodings(tokenizer, texts, offsets=False), 7, truncation)
        assert a.tolist() == b.tolist()


def test_a_bpe_tokenizer_saved_with_dropout_encodes_one_way(tmp_path: Path) -> None:
    # Found by the anymodel3 pass: a BPE tokenizer trained with dropout (subword
    # regularisation) keeps it in tokenizer.json, and `tokenizers` applies it on every encode:
    # the gateway gave the same text a different id row on each request (20 rows in 20), so
    # the served answers were random. Serving encodes as without dropout, like the file's
    # padding and truncation, which load_tokenizer also turns off.
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]", dropout=0.5))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=["[PAD]", "[UNK]"])
    tokenizer.train_from_iterator(["concatenation of categories", "the cat sat"] * 10, trainer)
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    loaded = load_tokenizer(tmp_path / "tokenizer.json")
    texts = ["the cat concatenation categories"] * 20
    rows = {tuple(row) for row in encode_texts(loaded, texts, max_length=64)}
    assert len(rows) == 1
    assert rows == {tuple(loaded.encode(texts[0]).ids)}
    # whole merges, as BPE without dropout makes them
    assert len(next(iter(rows))) == len(texts[0].split())
