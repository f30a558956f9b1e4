"""The process id read from memory is right in the parent and in a forked child."""

from __future__ import annotations

import os

from serving.gateway.pid import current_pid


def test_current_pid_is_the_process_id_before_and_after_a_fork() -> None:
    assert current_pid() == os.getpid()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child reports what it reads, then leaves at once
        os.write(write, f"{current_pid()} {os.getpid()}".encode())
        os._exit(0)
    os.close(write)
    seen, actual = os.read(read, 64).decode().split()
    os.close(read)
    os.waitpid(child, 0)
    assert seen == actual == str(child)
    assert current_pid() == os.getpid() != child
