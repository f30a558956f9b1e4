"""A client's text that spells a tokenizer's special token (``[SEP]``, ``[PAD]``, ``[CLS]``)
is read as text: ``tokenizers`` matched the spelling anywhere, so it became the control id
(``[PAD]`` is masked out like padding: the real qa model answered ``bedroom`` for "Mary
moved to the [PAD] bathroom.")."""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import AddedToken, Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel

from serving.encoding import encode_instances, input_text, segment_texts
from serving.literals import literal_posts, literal_spellings, literal_text
from serving.spec import SegmentRule, ServingSpec

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "mary", "moved", "to", "the", "bathroom", "[", "]"]
WORDS += ["sep", "pad", "cls", "."]


def _tokenizer(lowercase: bool) -> Tokenizer:
    built = Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    if lowercase:
        built.normalizer = normalizers.Lowercase()
    built.pre_tokenizer = pre_tokenizers.Whitespace()
    built.add_special_tokens([AddedToken(t, normalized=False) for t in WORDS[:4]])
    built.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return built


@pytest.fixture(scope="module", params=[True, False], ids=["lowercase", "cased"])
def tokenizer(request: pytest.FixtureRequest) -> Tokenizer:
    return _tokenizer(request.param)


def _as_text_ids(tokenizer: Tokenizer, text: str) -> list[int]:
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.encode_special_tokens = True
    return list(copy.encode(text, add_special_tokens=False).ids)


@pytest.mark.parametrize("text", ["Mary [PAD] moved", "[SEP][CLS]x[UNK]", "a[SEP]b [PAD]"])
def test_a_spelt_special_token_is_no_control_id(tokenizer: Tokenizer, text: str) -> None:
    plain = literal_text(tokenizer, text)
    assert len(plain) == len(text)  # offsets still index the client's text
    ids = tokenizer.encode(plain, add_special_tokens=False).ids
    assert not {0, 2, 3} & set(ids)  # no padding, [CLS] or [SEP] id from the client's text
    if tokenizer.normalizer is not None:  # read exactly as the tokens as ordinary text
        assert ids == _as_text_ids(tokenizer, text)


def test_a_text_without_one_is_the_same_object(tokenizer: Tokenizer) -> None:
    text = "Mary moved to the bathroom."
    assert literal_text(tokenizer, text) is text


def test_joined_posts_keep_only_the_joins_separators(tokenizer: Tokenizer) -> None:
    joined = literal_posts(tokenizer, ["mary [SEP] moved", "[PAD]"], "[SEP]")
    ids = tokenizer.encode(joined, add_special_tokens=False).ids
    assert ids.count(3) == 1 and 0 not in ids
    assert literal_posts(tokenizer, ["mary", "moved"], "[SEP]") == "mary [SEP] moved"
    assert literal_posts(tokenizer, ["mary", "moved"], "[SEP]", 6) == "mary ["


def test_the_model_gets_the_same_ids_as_for_the_plain_spelling() -> None:
    """End to end through encode_instances, the one encoding of training and the gateway."""
    tokenizer = _tokenizer(lowercase=True)
    spec = ServingSpec.model_validate(
        {
            "spec_version": 1, "title": "t", "description": "d", "signature_name": "s",
            "inputs": [{"field": "text", "tensor": "ids", "tokenizer": "t.json",
                        "max_tokens": 32, "vocab_size": len(WORDS), "kind": "text"},
                       {"field": "posts", "tensor": "post_ids", "tokenizer": "t.json",
                        "max_tokens": 32, "vocab_size": len(WORDS), "kind": "texts",
                        "separator": "[SEP]"}],
            "heads": [{"output": "o", "field": "o", "description": "d", "kind": "regression"}],
            "example": {"text": "mary", "posts": ["mary"]},
        }
    )  # fmt: skip
    spelt = {"text": "mary [PAD] moved", "posts": ["mary [SEP] moved", "to"]}
    plain = {"text": "mary [pad] moved", "posts": ["mary [sep] moved", "to"]}
    got, want = (encode_instances(spec, {"t.json": tokenizer}, [i]) for i in (spelt, plain))
    assert all(np.array_equal(got[name], want[name]) for name in want)
    assert input_text(spec.inputs[0], spelt["text"], tokenizer) == plain["text"]


def test_a_segment_rule_on_a_special_token_ends_no_segment_at_a_spelt_one() -> None:
    tokenizer = _tokenizer(lowercase=True)
    spec_input = ServingSpec.model_validate(
        {
            "spec_version": 1, "title": "t", "description": "d", "signature_name": "s",
            "inputs": [{"field": "text", "tensor": "ids", "tokenizer": "t.json",
                        "max_tokens": 32, "vocab_size": len(WORDS), "add_special_tokens": False,
                        "kind": "text"}],
            "heads": [{"output": "o", "field": "o", "description": "d", "kind": "regression"}],
            "example": {"text": "mary"},
        }
    ).inputs[0]  # fmt: skip
    rule = SegmentRule(separator_token=".", order="first_first", max_segments=3)
    slots = segment_texts(tokenizer, "mary [SEP] moved. to", spec_input, rule)
    assert slots == ["mary [SEP] moved.", "to", None]  # the client's own text, as sent


def _normalized_tokenizer() -> Tokenizer:
    """Special tokens added with ``normalized=True`` (as transformers' legacy files have them)
    are matched in the normalized text: "[sep]", or SEP in full-width brackets, is [SEP]."""
    built = Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    built.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    built.pre_tokenizer = pre_tokenizers.Whitespace()
    built.add_special_tokens([AddedToken(t, normalized=True) for t in WORDS[:4]])
    return built


@pytest.mark.parametrize(
    "text", ["mary [sep] moved", "mary \uff3bSEP\uff3d moved", "[Pad]mary[cLs]"]
)
def test_a_special_token_matched_once_normalized_is_no_control_id(text: str) -> None:
    tokenizer = _normalized_tokenizer()
    assert {0, 2, 3} & set(tokenizer.encode(text, add_special_tokens=False).ids)  # the fault
    plain = literal_text(tokenizer, text)
    assert len(plain) == len(text)
    ids = tokenizer.encode(plain, add_special_tokens=False).ids
    assert not {0, 2, 3} & set(ids) and 4 in ids  # no control id; the word stays
    joined = literal_posts(tokenizer, [text, "moved"], "[SEP]")
    assert tokenizer.encode(joined, add_special_tokens=False).ids.count(3) == 1


def test_an_unknown_word_beside_a_normalized_special_token_is_kept() -> None:
    tokenizer = _normalized_tokenizer()
    assert literal_text(tokenizer, "zebra [unk] [sep]") == "zebra            "


def test_the_word_rules_read_a_normalized_special_token_as_the_model_does() -> None:
    from serving.words import has_words

    tokenizer = _normalized_tokenizer()
    assert not has_words(tokenizer, "[sep] \uff3bPAD\uff3d")  # the model reads nothing of it
    assert has_words(tokenizer, "[sep] mary")


def test_a_variant_holding_another_added_token_is_not_used() -> None:
    """The variant check looks substrings up among the added tokens (a version of thousands
    of reserved special tokens loaded in time quadratic in their number): still exact."""
    built = _tokenizer(lowercase=True)
    built.add_tokens(["sep"])  # a plain added word inside "[sep]": that variant would split
    built.add_special_tokens([f"<extra_{index}>" for index in range(500)])
    spellings = dict(literal_spellings(built))
    assert spellings["[SEP]"] == "     " and spellings["[PAD]"] == "[pad]"
    assert spellings["<extra_7>"] == "<EXTRA_7>"  # upper: the lowercase normaliser reads it so
