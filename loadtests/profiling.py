"""Sample a running process with py-spy and summarise where its time goes (benchmarks only).

py-spy record --format raw --nonblocking --rate 250 -o qa.txt --pid <worker pid>
PYTHONPATH=. python -m loadtests.profiling qa.txt --top 25
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path


def record(pid: int, seconds: int, output: Path) -> subprocess.Popen[bytes] | None:
    """Start ``py-spy record`` on ``pid`` for ``seconds`` (raw collapsed stacks to ``output``);
    None when py-spy is not installed."""
    executable = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
        "py-spy"
    )
    if executable is None:
        return None
    command = [executable, "record", "--format", "raw", "--nonblocking", "--rate", "250"]
    command += ["--duration", str(seconds), "--pid", str(pid), "-o", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarise(path: Path, top: int = 20, idle: tuple[str, ...] = ("wait", "select")) -> str:
    """Top frames by own samples and by inclusive samples (idle frames left out: a gevent
    worker's hub waiting in ``select``/``wait`` is not CPU)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        leaf = frames[-1]
        if any(leaf.startswith(name + " ") for name in idle):
            continue
        count = int(count_text)
        total += count
        own[leaf] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} busy samples", "own %  frame"]
    lines += [f"{100 * n / total:5.1f}  {frame}" for frame, n in own.most_common(top)]
    lines += ["incl % frame"]
    lines += [f"{100 * n / total:5.1f}  {frame}" for frame, n in inclusive.most_common(top * 2)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the summary of a raw py-spy file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("raw", type=Path)
    parser.add_argument("--top", type=int, default=20)
    arguments = parser.parse_args(argv)
    print(summarise(arguments.raw, arguments.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
