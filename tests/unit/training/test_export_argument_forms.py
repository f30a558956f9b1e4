"""export_for_serving takes its arguments in the forms a user has them: each tokenizer as a
file or as a ``tokenizers.Tokenizer`` in memory (found by newuser7: a Tokenizer was a
TypeError "expected str, bytes or os.PathLike object, not Tokenizer", naming no argument),
paths as ``str`` too."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer

from serving.contract import ASSETS_DIR
from serving.spec import CategoricalHead, ServingSpec, TextInput
from training.export import export_for_serving
from training.tiny_models import spec_model


def _spec(vocab: int) -> ServingSpec:
    return ServingSpec(
        title="t",
        inputs=[TextInput(field="text", tensor="text_ids", max_tokens=8, vocab_size=vocab)],
        heads=[CategoricalHead(output="probs", field="label", labels=["a", "b"])],
        example={"text": "the cat sat on the mat."},
    )


def test_a_tokenizer_in_memory_is_saved_with_the_version(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    spec = _spec(vocab)
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    version = export_for_serving(
        spec_model(spec), spec, {"tokenizer.json": tokenizer}, name="m", repo=tmp_path
    )
    saved = Tokenizer.from_file(str(version / ASSETS_DIR / "tokenizer.json"))
    assert saved.to_str() == tokenizer.to_str()


def test_a_tokenizers_implementation_is_saved_too(tmp_path: Path) -> None:
    from tokenizers.implementations.bert_wordpiece import BertWordPieceTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "on", "mat", "."]
    bert = BertWordPieceTokenizer({word: index for index, word in enumerate(words)})
    spec = _spec(len(words))
    version = export_for_serving(
        spec_model(spec), spec, {"tokenizer.json": bert}, name="m", repo=tmp_path
    )
    saved = Tokenizer.from_file(str(version / ASSETS_DIR / "tokenizer.json"))
    assert saved.encode("the cat").ids == [2, 4, 5, 3]


class FastTokenizer:
    """What a transformers fast tokenizer looks like to the export."""

    def __init__(self, inner: Tokenizer) -> None:
        self.backend_tokenizer = inner


def test_another_object_is_a_type_error_naming_the_entry(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    spec = _spec(vocab)
    wrapped = FastTokenizer(Tokenizer.from_file(str(tokenizer_path)))
    with pytest.raises(
        TypeError,
        match=r"tokenizers\['tokenizer.json'\] must be the path of a tokenizer.json or a "
        r"tokenizers.Tokenizer, not FastTokenizer \(its .backend_tokenizer is one\)",
    ):
        export_for_serving(
            spec_model(spec),
            spec,
            {"tokenizer.json": wrapped},  # type: ignore[dict-item]
            name="m",
            repo=tmp_path,
        )
    assert not (tmp_path / "m").exists()


def test_paths_given_as_strings_are_folders_and_files(
    tmp_path: Path, tokenizer_path: Path, vocab: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by newuser7: repo="model_repo" was AttributeError "'str' object has no attribute
    # 'parents'".
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("trained for 3 steps")
    spec = _spec(vocab)
    version = export_for_serving(
        spec_model(spec),
        spec,
        {"tokenizer.json": str(tokenizer_path)},
        name="m",
        repo="model_repo",
        extra_assets={"notes.txt": "notes.txt"},
    )
    assert version == Path("model_repo/m/1")
    assert (version / ASSETS_DIR / "notes.txt").read_text() == "trained for 3 steps"
    assert Path("model_repo/models.config").is_file()


# Found by the new-user trial (newuser9): version=-3, True or 2**63 was exported as a folder
# no server reads as a version, with success reported; a warmup instance without an input
# field was a bare KeyError('text') from the encoder, a string of instances a TypeError about
# string indices; a spec given as a dict an AttributeError. Each is refused before the model
# is looked at (None here) and nothing is written.
@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"version": -3}, ValueError, "version must be a whole number from 0 to"),
        ({"version": 2**63}, ValueError, "got 9223372036854775808"),
        ({"version": True}, ValueError, "got True"),
        ({"version": "5"}, ValueError, "got '5'"),
        ({"warmup_instances": [{"txt": "a cat"}]}, ValueError, "warmup_instances[0] must give"),
        ({"warmup_instances": [{"text": ""}]}, ValueError, "warmup_instances[0].text: every"),
        ({"warmup_instances": [{"text": "a"}, "a"]}, ValueError, "warmup_instances[1] must be"),
        ({"warmup_instances": "a cat"}, TypeError, "warmup_instances must be a list"),
        ({"spec": {"title": "t"}}, TypeError, "spec must be a serving.spec.ServingSpec"),
    ],
    ids=str,
)
def test_a_wrong_argument_is_refused_before_anything_is_written(
    tmp_path: Path, tokenizer_path: Path, vocab: int, arguments, error, message
) -> None:
    given = {"spec": _spec(vocab), **arguments}
    with pytest.raises(error) as caught:
        export_for_serving(
            None,
            given.pop("spec"),
            {"tokenizer.json": tokenizer_path},
            name="m",
            repo=tmp_path / "repo",
            **given,
        )
    assert message in str(caught.value)
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize("where", ["a-file", "/proc/self/no-such-folder", "model-is-a-file"])
def test_a_repo_where_no_folder_can_be_made_is_refused_first(
    tmp_path: Path, tokenizer_path: Path, vocab: int, where: str
) -> None:
    # Found by the new-user trial (newuser9): an OSError from mkdir, after the model and the
    # tokenizers were checked (the CLI's --model-repo there trained the whole run first).
    (tmp_path / "a-file").write_text("x")
    repo = tmp_path / where / "repo" if where == "a-file" else Path(where) / "repo"
    if where == "model-is-a-file":  # a file where the model's folder goes: FileExistsError
        repo = tmp_path / "repo"
        repo.mkdir()
        (repo / "m").write_text("x")
    with pytest.raises(ValueError, match=r"^repo: ") as caught:
        export_for_serving(
            None, _spec(vocab), {"tokenizer.json": tokenizer_path}, name="m", repo=repo
        )
    assert "is not a directory" in str(caught.value) or "cannot make a folder" in str(caught.value)
