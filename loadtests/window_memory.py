"""Peak memory and CPU of encoding one long request text, for a source tree (benchmarks only).

Runs a fresh Python per measurement with ``PYTHONPATH=TREE`` (so two trees compare:
``--root /path/to/main`` against this one) that loads a version's tokenizer, makes the
request's instance (a list input of ``--chars`` characters of posts, joined without
``max_joined_chars``: the hostile case), and encodes it with ``serving.encoding.encode_batch``
as the gateway does. Prints the peak resident memory the encoding added (``VmHWM`` reset
through ``/proc/self/clear_refs`` first, Linux only) and its CPU time::

    PYTHONPATH=. python -m loadtests.window_memory --model-repo model_repo --model profile \\
        --chars 1000000 [--root OTHER_TREE] [--word "a"]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _status(field: str) -> int:
    """A ``/proc/self/status`` size in kB (``VmRSS``, ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child(repo: Path, model: str, chars: int, word: str) -> dict[str, float]:
    """Encode the instance in this process; peak added kB and CPU seconds."""
    from serving.encoding import encode_batch
    from serving.spec import load_spec
    from serving.tokenization import load_tokenizer

    version = max((repo / model).iterdir(), key=lambda path: int(path.name))
    spec = load_spec(version / "assets.extra" / "serving_spec.json")
    item = spec.inputs[0]
    data = item.model_dump()
    data["max_joined_chars"] = None  # the hostile case: a spec without the char cut
    spec = spec.model_copy(update={"inputs": [type(item).model_validate(data)]})
    tokenizer = load_tokenizer(version / "assets.extra" / item.tokenizer)
    post = " ".join([word] * (20_000 // (len(word) + 1)))[:19_000]
    instance = {item.field: [post] * (chars // len(post) + 1)}
    tokenizers = {item.tokenizer: tokenizer}
    encode_batch(spec, tokenizers, [{item.field: ["warm up"]}])
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _status("VmRSS")
    started = time.process_time()
    encoded = encode_batch(spec, tokenizers, [instance])
    seconds = time.process_time() - started
    peak = _status("VmHWM") - before
    return {"peak_kb": peak, "cpu_s": seconds, "ids": int(encoded.tensors[item.tensor].size)}


def main(argv: list[str] | None = None) -> int:
    """Measure in a fresh process for ``--root`` (default: this tree) and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-repo", type=Path, default=Path("model_repo"))
    parser.add_argument("--model", default="profile")
    parser.add_argument("--chars", type=int, default=1_000_000)
    parser.add_argument("--word", default="a", help="the posts' one word (a: one-letter words)")
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT, help="the source tree to run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        result = child(options.model_repo, options.model, options.chars, options.word)
        print(json.dumps(result))
        return 0
    command = [sys.executable, __file__, "--child", "--model-repo", str(options.model_repo)]
    command += ["--model", options.model, "--chars", str(options.chars), "--word", options.word]
    environment = {"PYTHONPATH": str(options.root.resolve()), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"{options.root}: {options.chars} chars of {options.word!r} posts -> {result['ids']} ids: "
        f"peak +{result['peak_kb'] / 1024:.1f} MB, {result['cpu_s'] * 1000:.1f} ms CPU"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
