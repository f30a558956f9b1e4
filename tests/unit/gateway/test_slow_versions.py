"""A version too slow for the deadlines: the fit check's own deadline, a refusal that names the
remedy, a check again after a backoff, and a warning when a full row outlasts the request
deadline (found by the adversarial repo pass 5: such a version was retried at every poll
forever, logged at INFO only, and never routed)."""

from __future__ import annotations

import logging
import shutil
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from serving.gateway.backends import VersionSelector, VersionStatus
from serving.gateway.backends.base import AVAILABLE
from serving.gateway.checks import SlowVersionError, check_fit
from serving.gateway.model_state import ModelState
from serving.gateway.registry import ModelRegistry
from serving.gateway.runtime import ModelRuntime, load_runtime
from serving.gateway.settings import GatewaySettings
from serving.gateway.verdicts import SLOW_RETRY_SECONDS, VersionVerdicts
from tests.unit.gateway.test_checks import Backend

QA_CONFIG = 'model_config_list { config { name: "qa" base_path: "qa" } }'


@pytest.fixture(scope="module")
def qa(tiny_repo: Path) -> ModelRuntime:
    settings = GatewaySettings(request_timeout_seconds=2.0, check_timeout_seconds=30.0)
    return load_runtime(tiny_repo, "qa", 1, settings)


def test_every_probe_of_the_check_has_the_check_deadline(qa: ModelRuntime) -> None:
    backend = Backend()
    check_fit(backend, qa)
    assert backend.timeouts == [30.0] * 4  # not the request deadline: a load is no request
    shorter = replace(qa, settings=GatewaySettings(check_timeout_seconds=1.0))
    backend = Backend()
    check_fit(backend, shorter)
    assert backend.timeouts == [5.0] * 4  # never shorter than a request's deadline


def test_a_version_too_slow_for_a_full_row_is_refused_naming_the_remedy(
    qa: ModelRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    longest = qa.spec.inputs[0].max_tokens
    with caplog.at_level(logging.WARNING), pytest.raises(SlowVersionError) as caught:
        check_fit(Backend(slow_from=longest), qa)
    reason = caught.value.reason
    assert f"no answer to a row of max_tokens {longest} ids of input 'article'" in reason
    assert "GATEWAY_CHECK_TIMEOUT_SECONDS 30" in reason and "Deadline" not in reason
    warned = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert any("lower the spec's max_tokens" in text for text in warned), warned


def test_a_full_row_slower_than_the_request_deadline_is_routed_with_a_warning(
    tiny_repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Any call lasts longer than a nanosecond: the warning without a timed assertion.
    settings = GatewaySettings(request_timeout_seconds=1e-9)
    with caplog.at_level(logging.WARNING):
        check_fit(Backend(), load_runtime(tiny_repo, "qa", 1, settings))
    warned = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert any(
        "is routed, but it took" in text and "requests of long texts will likely be 504s" in text
        for text in warned
    ), warned


def test_a_too_slow_version_is_checked_again_after_a_doubling_backoff(tiny_repo: Path) -> None:
    backend = Backend(slow_from=1)  # every prediction misses its deadline
    verdicts = VersionVerdicts(backend, GatewaySettings(model_repo=tiny_repo))
    now = [0.0]
    verdicts.clock = lambda: now[0]
    folder = tiny_repo / "qa" / "1"
    assert "too slow" in (verdicts.verdict("qa", 1, folder) or "")
    calls = len(backend.timeouts)
    now[0] = SLOW_RETRY_SECONDS - 1
    assert "too slow" in (verdicts.verdict("qa", 1, folder) or "")
    assert len(backend.timeouts) == calls  # not at every poll
    now[0] = SLOW_RETRY_SECONDS
    verdicts.verdict("qa", 1, folder)
    assert len(backend.timeouts) == calls + 1  # checked again, still too slow
    now[0] = 3 * SLOW_RETRY_SECONDS - 1
    verdicts.verdict("qa", 1, folder)
    assert len(backend.timeouts) == calls + 1  # the next wait is twice as long
    backend.slow_from = None  # the server got faster: the version is routed at the next try
    now[0] = 3 * SLOW_RETRY_SECONDS
    assert verdicts.verdict("qa", 1, folder) == ""


@dataclass
class TwoVersions(Backend):
    """qa versions 1 and 2 AVAILABLE; records the versions each prediction ran on."""

    ran: list[int] = field(default_factory=list)

    def model_status(self, model: str, request_id: str | None = None) -> list[Any]:
        return [VersionStatus(1, AVAILABLE), VersionStatus(2, AVAILABLE)]

    def predict(self, model: str, selector: VersionSelector, *args: Any, **kwargs: Any) -> Any:
        self.ran.append(selector.version or 0)
        return super().predict(model, selector, *args, **kwargs)


def test_readyz_leaves_a_new_versions_check_to_the_poller(tiny_repo: Path, tmp_path: Path) -> None:
    # Found by the adversarial repo pass 5: /readyz ran a new version's fit check itself;
    # one slow to check held /readyz past its probe's timeout (1 s by
    # default) and took a pod that served the previous version out of its Service.
    for version in (1, 2):
        shutil.copytree(tiny_repo / "qa" / "1", tmp_path / "qa" / str(version))
    (tmp_path / "models.config").write_text(QA_CONFIG)
    backend = TwoVersions()
    registry = ModelRegistry(backend, GatewaySettings(model_repo=tmp_path))
    registry._versions.verdict("qa", 1, tmp_path / "qa" / "1")  # routed before 2 loaded
    registry._set_state("qa", ModelState(routed=registry._versions.cached(("qa", 1))))
    backend.ran.clear()
    assert registry.refresh(defer_checks=True) == {}  # ready: version 1 still answers
    assert backend.ran == [] and registry.state("qa").routed.version == 1  # type: ignore[union-attr]
    registry.refresh()  # the poller checks version 2 and routes it
    assert set(backend.ran) == {2} and registry.state("qa").routed.version == 2  # type: ignore[union-attr]


@dataclass
class HeldBackend(Backend):
    """Holds the first metadata call (the start of a check) until ``release`` is set."""

    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    checks: int = 0

    def model_metadata(self, *args: Any, **kwargs: Any) -> Any:
        self.checks += 1
        self.started.set()
        self.release.wait()
        return super().model_metadata(*args, **kwargs)


def test_callers_meeting_a_check_under_way_wait_for_it_instead_of_checking_again(
    tiny_repo: Path,
) -> None:
    # Each check sends a row of max_tokens ids with GATEWAY_CHECK_TIMEOUT_SECONDS (60 s):
    # pinned requests to an unchecked version, retried by clients that gave up, each ran
    # their own against a model server that is slow already.
    backend = HeldBackend()
    verdicts = VersionVerdicts(backend, GatewaySettings(model_repo=tiny_repo))
    folder = tiny_repo / "qa" / "1"
    found: list[str | None] = []
    first = threading.Thread(target=lambda: found.append(verdicts.verdict("qa", 1, folder)))
    first.start()
    backend.started.wait()
    waiting = [
        threading.Thread(target=lambda: found.append(verdicts.verdict("qa", 1, folder)))
        for _ in range(3)
    ]
    for thread in waiting:
        thread.start()
    assert verdicts.verdict("qa", 1, folder, check=False) is None  # /readyz does not wait
    backend.release.set()
    for thread in [first, *waiting]:
        thread.join()
    assert found == [""] * 4 and backend.checks == 1
