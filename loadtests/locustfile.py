"""Plain locust entry point: the gateway's HTTP users, driven by locust's own options.

``locust -f loadtests/locustfile.py --host http://127.0.0.1:8000 --headless -u 8 -r 4 -t 30s``
runs 8 users (spawned 4 per second) for 30 seconds, as locust's documentation describes: no
load shape, no gRPC users. Name classes to run only some (``... MixedUser``); without names
locust spreads the users over all four. Every answer is checked (``loadtests/checks.py``).

The step-load profile, the direct gRPC users and the SLO-gated summary are opt-in: they live in
``loadtests/stepload.py``, which ``python -m loadtests.run`` uses (see loadtests/README.md).
"""

from __future__ import annotations

from loadtests.users import MixedUser, ProfileUser, QaUser, SimilarityUser

__all__ = ["MixedUser", "ProfileUser", "QaUser", "SimilarityUser"]
