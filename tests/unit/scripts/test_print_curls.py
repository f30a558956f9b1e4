"""scripts.print_curls (what run_local.sh prints): a bad repo or spec is one line, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.print_curls import main
from serving.gateway.aliases import ALIASES
from serving.spec import CategoricalHead, ServingSpec, TextInput, dump_spec


def _version(repo: Path, name: str, spec_text: str) -> None:
    assets = repo / name / "1" / "assets.extra"
    assets.mkdir(parents=True)
    (assets / "serving_spec.json").write_text(spec_text)


def test_a_repo_without_models_config_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found as a new user: --model-repo model_repo/tickets (a model's folder) was a
    # FileNotFoundError traceback.
    assert main(["--model-repo", str(tmp_path), "--url", "http://x"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("print_curls: --model-repo") and "Traceback" not in error


def test_a_model_whose_spec_does_not_load_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = ServingSpec(
        title="t",
        inputs=[TextInput(field="text", tensor="text_ids", max_tokens=8, vocab_size=10)],
        heads=[CategoricalHead(output="probs", field="label", labels=["a", "b"])],
        example={"text": "hello"},
    )
    _version(tmp_path, "good", dump_spec(spec))
    _version(tmp_path, "bad", dump_spec(spec).replace('"max_tokens"', '"max_tokns"'))
    (tmp_path / "models.config").write_text(
        'model_config_list { config { name: "bad" base_path: "bad" }'
        ' config { name: "good" base_path: "good" } }'
    )
    assert main(["--model-repo", str(tmp_path), "--url", "http://x"]) == 0
    captured = capsys.readouterr()
    assert "/v1/models/good:predict" in captured.out and "bad" not in captured.out
    assert captured.err.startswith("print_curls: bad: no curl, its spec does not load")


def test_alias_curls_only_for_the_served_aliased_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found as a new user: run_local.sh on a repo of one's own model printed /v1/qa,
    # /v1/profile and /v1/similarity curls first, and each answered 404 "unknown model 'qa'".
    (tmp_path / "models.config").write_text(
        'model_config_list { config { name: "articles" base_path: "articles" }'
        ' config { name: "profile" base_path: "profile" } }'
    )
    assert main(["--aliases", "--model-repo", str(tmp_path), "--url", "http://x"]) == 0
    printed = capsys.readouterr().out
    assert "http://x/v1/profile " in printed
    assert "/v1/qa" not in printed and "/v1/similarity" not in printed
    assert "articles" not in printed  # its :predict curl comes from the call without --aliases


def test_no_alias_curls_for_a_model_of_your_own_under_an_alias_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found by newuser10: a model of one's own named "qa" (other inputs) or "similarity"
    # (the qa alias's fields, no score head) got the alias curls, answered 422 or 502; the
    # gateway neither documents nor runs such an alias (serving.gateway.alias_heads).
    def spec(fields: list[str]) -> str:
        return dump_spec(
            ServingSpec(
                title="t",
                inputs=[
                    TextInput(field=name, tensor=f"{name}_ids", max_tokens=8, vocab_size=10)
                    for name in fields
                ],
                heads=[CategoricalHead(output="probs", field="label", labels=["a", "b"])],
                example=dict.fromkeys(fields, "hello"),
            )
        )

    _version(tmp_path, "qa", spec(["title", "body"]))
    _version(tmp_path, "similarity", spec(["text_a", "text_b"]))
    _version(tmp_path, "profile", spec(["posts"]))
    (tmp_path / "models.config").write_text(
        "model_config_list { "
        + " ".join(f'config {{ name: "{name}" base_path: "{name}" }}' for name in ALIASES)
        + " }"
    )
    assert main(["--aliases", "--model-repo", str(tmp_path), "--url", "http://x"]) == 0
    assert capsys.readouterr().out == ""
