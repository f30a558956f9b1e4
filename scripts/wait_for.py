"""Wait, with a deadline, until URLs answer 200 and models are AVAILABLE on a model server.

``python -m scripts.wait_for [--url URL ...] [--model-server http://127.0.0.1:8501
--models qa,profile,similarity] [--pid PID] [--timeout 120]`` exits 0 when everything is
ready, 1 on timeout or when the watched process ``--pid`` has died (no point waiting then).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import requests

from serving.modelserver.launcher import model_available
from serving.redaction import redact_url
from serving.url_paths import model_url_path

POLL_SECONDS = 0.5
REQUEST_TIMEOUT_SECONDS = 2.0


def url_ready(url: str) -> bool:
    """True when GET url answers 200."""
    try:
        return requests.get(url, timeout=REQUEST_TIMEOUT_SECONDS).status_code == 200
    except requests.RequestException:
        return False


def process_alive(pid: int) -> bool:
    """True when a process with this id exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A dead child of the calling shell stays a zombie until the shell reaps it (Linux).
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rpartition(")")[2].split()[0] != "Z"


def pending(args: argparse.Namespace) -> list[str]:
    """What is not ready yet."""
    waiting = [url for url in args.url if not url_ready(url)]
    if args.model_server:
        models = [name for name in args.models.split(",") if name]
        server, timeout = args.model_server, REQUEST_TIMEOUT_SECONDS
        ready = [name for name in models if model_available(server, name, timeout)]
        waiting += [f"model {name}" for name in models if name not in ready]
    return waiting


def model_detail(rest_url: str, name: str) -> str:
    """What the model server says of a model: its error, or each version's state and error.

    Printed on a timeout, so ``make run`` says why it waited (``Could not find any versions
    of model tickets``, ``version 2 END: ...``): it had printed only ``not ready after 300 s:
    ['model tickets']``, the reason in the model server's log among its other lines.
    """
    try:
        body = requests.get(rest_url + model_url_path(name), timeout=REQUEST_TIMEOUT_SECONDS).json()
    except (requests.RequestException, ValueError) as error:
        return f"no status from the model server ({type(error).__name__})"
    if not isinstance(body, dict):
        return "an unreadable status"
    if "error" in body:
        return str(body["error"])
    parts = []
    for status in body.get("model_version_status") or []:
        message = (status.get("status") or {}).get("error_message", "")
        parts.append(f"version {status.get('version')} {status.get('state')}")
        parts[-1] += f": {message}" if message else ""
    return "; ".join(parts) or "no version"


def url_detail(url: str) -> str:
    """What a URL that is not ready answers, its status and the start of its body.

    The gateway's ``/readyz`` names each model it cannot route and why (``no loaded version
    fits its spec: ...``): ``make run`` with an unfit model of one's own had printed only
    ``not ready after 300 s: ['http://127.0.0.1:8000/readyz']``.
    """
    try:
        response = requests.get(url, timeout=REQUEST_TIMEOUT_SECONDS)
    except requests.RequestException as error:
        return f"no answer ({type(error).__name__})"
    return f"HTTP {response.status_code}: {response.text.strip()[:1000]}"


def _seconds(text: str) -> float:
    # nan never passed the deadline check: a wait without end (0: look once, then report).
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Poll until ready (0) or until the deadline or the watched process dies (1)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", action="append", default=[], help="must answer 200")
    parser.add_argument("--model-server", default="", help="TF Serving REST base URL")
    parser.add_argument("--models", default="qa,profile,similarity")
    parser.add_argument("--pid", type=int, default=0, help="give up if this process exits")
    parser.add_argument("--timeout", type=_seconds, default=120.0, help="seconds (>= 0)")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.timeout
    waiting = pending(args)
    while waiting:
        if args.pid and not process_alive(args.pid):
            shown = [redact_url(item) for item in waiting]
            print(f"process {args.pid} exited while waiting for {shown}", file=sys.stderr)
            return 1
        if time.monotonic() > deadline:
            # A URL's password is never printed (user:***@): this goes to make run's output.
            shown = [redact_url(item) for item in waiting]
            print(f"not ready after {args.timeout:.0f} s: {shown}", file=sys.stderr)
            for item in waiting:
                if item.startswith("model "):
                    name = item.removeprefix("model ")
                    print(f"  {item}: {model_detail(args.model_server, name)}", file=sys.stderr)
                else:
                    print(f"  {redact_url(item)}: {url_detail(item)}", file=sys.stderr)
            return 1
        time.sleep(POLL_SECONDS)
        waiting = pending(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
