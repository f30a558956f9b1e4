"""scripts.wait_for never prints a waiting URL's password (make run's output)."""

from __future__ import annotations

import socket

import pytest

from scripts.wait_for import main


def test_a_waiting_url_is_printed_with_its_password_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The URLs not ready were printed as given, user:password@ included.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens: refused at once
    url = f"http://user:s3cret@127.0.0.1:{port}/readyz"
    assert main(["--url", url, "--timeout", "0"]) == 1
    error = capsys.readouterr().err
    assert f"['http://user:***@127.0.0.1:{port}/readyz']" in error
    assert "s3cret" not in error
