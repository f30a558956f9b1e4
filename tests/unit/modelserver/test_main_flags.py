"""TF Serving's thread-pool flags of the local model server."""

from __future__ import annotations

import os

import pytest

from serving.modelserver.main import build_parser, set_thread_pools


def test_thread_pool_flags_set_tensorflow_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(
        ["--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism", "0"]
    )
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "3")
    set_thread_pools(args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism)
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == "1"
    assert os.environ["TF_NUM_INTEROP_THREADS"] == "3"  # 0 keeps what is there


def test_thread_pool_flags_take_counts_only() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--tensorflow_intra_op_parallelism=-1"])


@pytest.mark.parametrize(
    "flag",
    ["--model_config_file", "--batching_parameters_file", "--monitoring_config_file"],
)
@pytest.mark.parametrize("problem", ["missing", "folder", "unparsable"])
def test_a_file_flag_that_cannot_be_read_ends_with_exit_2_naming_it(
    tmp_path, capsys: pytest.CaptureFixture[str], flag: str, problem: str
) -> None:
    # Found as a new user: `--model_config_file /nonexistent` ended in a FileNotFoundError
    # traceback (exit 1); a folder in its place in an IsADirectoryError one.
    from serving.modelserver.main import main

    config = tmp_path / "models.config"
    config.write_text(f'model_config_list {{ config {{ name: "m" base_path: "{tmp_path}" }} }}')
    path = tmp_path / "given"
    if problem == "folder":
        path.mkdir()
    elif problem == "unparsable":
        path.write_text("{ not a text proto")
    argv = ["--port=0", "--rest_api_port=0", "--model_config_file", str(config)]
    argv += ["--enable_batching", flag, str(path)]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"modelserver: {flag} '{path}': ") and "Traceback" not in error


def test_no_model_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # Found as a new user: --model_name alone ended with exit 1 and a bare sentence, unlike
    # every other flag error (exit 2, "modelserver: ...").
    from serving.modelserver.main import main

    assert main(["--port=0", "--rest_api_port=0", "--model_name=x"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("modelserver: give --model_config_file, or --model_base_path")


def test_an_unknown_log_level_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # It was a ValueError traceback from logging.basicConfig once the server started.
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["--log_level", "verbose"])
    assert stopped.value.code == 2
    assert "argument --log_level: must be one of DEBUG, INFO" in capsys.readouterr().err
    assert build_parser().parse_args(["--log_level", "warning"]).log_level == "WARNING"


@pytest.mark.parametrize("which", ["--port", "--rest_api_port", "both", "host"])
def test_a_port_it_cannot_listen_on_ends_with_exit_2_before_any_load(
    tmp_path, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    # Found by the new-user trial (newuser9): a gRPC port in use was grpc's "RuntimeError:
    # Failed to bind" traceback; a REST port in use, or the same port for both, cheroot's
    # "OSError: No socket could be created" traceback once every model had loaded.
    import socket

    from serving.modelserver.main import main

    config = tmp_path / "models.config"
    config.write_text(f'model_config_list {{ config {{ name: "m" base_path: "{tmp_path}" }} }}')
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        ports = {"--port": "0", "--rest_api_port": "0"}
        if which in ports:
            ports[which] = port
        elif which == "both":
            ports = {"--port": "18", "--rest_api_port": "18"}
        argv = [f"{flag}={value}" for flag, value in ports.items()]
        argv += ["--model_config_file", str(config)]
        argv += ["--host=no-such-host.invalid"] if which == "host" else []
        assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("modelserver: ") and "Traceback" not in error
    if which in ports:
        assert f"{which} {port}: cannot listen on 127.0.0.1:{port}: Address already in use" in error
    elif which == "both":
        assert "--port and --rest_api_port are both 18: give each its own" in error
    else:
        assert "cannot listen on no-such-host.invalid" in error


GIVE = "give --model_config_file, or --model_base_path"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--model_config_file="], "give --model_config_file, or --model_base_path"),
        (
            ["--model_base_path=", "--model_name=m"],
            "give --model_config_file, or --model_base_path",
        ),
        (["--model_base_path=BASE", "--model_name="], "--model_name is empty: give the name"),
    ],
)
def test_an_empty_model_flag_is_not_given_nor_the_working_directory(
    tmp_path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    # Found by newuser10: an empty --model_base_path (an unset variable in a script) served
    # the working directory and said "ready", an empty --model_config_file was "'.': Is a
    # directory", and an empty --model_name served a model named "". TF Serving reads an
    # empty string flag as not given.
    from serving.modelserver.main import main

    argv = [arg.replace("BASE", str(tmp_path)) for arg in argv]
    assert main(["--port=0", "--rest_api_port=0", *argv]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"modelserver: {expected}"), error
    args = build_parser().parse_args(["--monitoring_config_file=", "--batching_parameters_file="])
    assert args.monitoring_config_file is None and args.batching_parameters_file is None
