"""``tune --chief`` / ``--worker``: options, keras-tuner's environment, clear errors."""

import os
import socket

import pytest

from training.cli import build_parser, main
from training.tuning_distribution import (
    ORACLE_IP,
    ORACLE_PORT,
    TUNER_ID,
    Distribution,
    distributed,
    distribution_from_args,
    distribution_from_environment,
)


def parse(*options: str):
    return build_parser().parse_args(["tune", "qa", *options])


def test_chief_and_worker_options_give_keras_tuners_roles(monkeypatch):
    for name in (TUNER_ID, ORACLE_IP, ORACLE_PORT):
        monkeypatch.delenv(name, raising=False)
    chief = distribution_from_args(parse("--chief", "--oracle-port", "8123"))
    assert chief == Distribution("chief", "127.0.0.1", 8123)
    assert chief.is_chief
    worker = distribution_from_args(
        parse("--worker", "2", "--oracle-host", "10.0.0.5", "--oracle-port", "8123")
    )
    assert worker == Distribution("worker2", "10.0.0.5", 8123)
    assert not worker.is_chief
    assert worker.environment() == {
        TUNER_ID: "worker2",
        ORACLE_IP: "10.0.0.5",
        ORACLE_PORT: "8123",
    }
    assert distribution_from_args(parse()) is None


@pytest.mark.parametrize(
    "options",
    [
        ["--chief", "--worker", "1", "--oracle-port", "8123"],
        ["--worker", "chief-2", "--oracle-port", "8123"],
        ["--worker", "", "--oracle-port", "8123"],
        ["--chief", "--oracle-port", "70000"],
        ["--chief", "--oracle-port", "port"],
    ],
)
def test_invalid_roles_and_ports_are_usage_errors(options, capsys):
    with pytest.raises(SystemExit) as raised:
        parse(*options)
    assert raised.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--chief"], "need --oracle-port"),
        (["--oracle-port", "8123"], "needs --chief or --worker"),
    ],
)
def test_incomplete_distribution_fails_before_any_work(options, message, capsys, tmp_path):
    argv = ["tune", "qa", "--data-dir", str(tmp_path), "--runs-dir", str(tmp_path / "runs")]
    assert main([*argv, *options]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_environment_alone_selects_a_role_and_must_be_complete():
    assert distribution_from_environment({}) is None
    environ = {TUNER_ID: "worker7", ORACLE_IP: "127.0.0.1", ORACLE_PORT: "9000"}
    assert distribution_from_environment(environ) == Distribution("worker7", "127.0.0.1", 9000)
    with pytest.raises(ValueError, match=TUNER_ID):
        distribution_from_environment({ORACLE_IP: "127.0.0.1", ORACLE_PORT: "9000"})
    with pytest.raises(ValueError, match=ORACLE_PORT):
        distribution_from_environment({**environ, ORACLE_PORT: "0"})


def test_environment_is_set_only_for_the_search(monkeypatch):
    monkeypatch.delenv(TUNER_ID, raising=False)
    monkeypatch.setenv(ORACLE_PORT, "1")
    with distributed(Distribution("chief", "127.0.0.1", 8123)):
        assert os.environ[TUNER_ID] == "chief"
        assert os.environ[ORACLE_PORT] == "8123"
    assert TUNER_ID not in os.environ
    assert os.environ[ORACLE_PORT] == "1"


def test_a_chief_that_cannot_listen_fails_before_any_work(capsys, tmp_path):
    # Found by the new-user trial (newuser9): a host that is no address of this machine (or
    # does not resolve) or a port in use was a RuntimeError traceback from keras-tuner's gRPC
    # server, after the data was read.
    argv = ["tune", "qa", "--data-dir", str(tmp_path), "--runs-dir", str(tmp_path / "runs")]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert main([*argv, "--chief", "--oracle-port", port]) == 2
        assert "Address already in use" in capsys.readouterr().err
    assert main([*argv, "--chief", "--oracle-port", port, "--oracle-host", "bad host"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("tune: the chief cannot listen on --oracle-host 'bad host'")
    assert "Traceback" not in error and not (tmp_path / "runs").exists()
