"""RestartPolicy after issue 10: polite pacing, capped server hints, visible failures,
redacted reasons. Tables of scenario -> decision, with explicit ``now`` and a fixed rng."""

from __future__ import annotations

import random

import pytest

from streamvisor.backoff import BackoffPolicy, RestartLimit
from streamvisor.errors import ConnectError
from streamvisor.spec import BreakerPolicy
from streamvisor.supervision import Outcome, RestartPolicy


class FixedRandom(random.Random):
    """``random()`` always returns ``value``: jitter becomes a known number."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


EXACT = BackoffPolicy(initial=1.0, max=30.0, multiplier=2.0, jitter=0.0, reset_after=60.0)


def make_policy(backoff: BackoffPolicy = EXACT, rng: random.Random | None = None) -> RestartPolicy:
    return RestartPolicy(
        backoff, RestartLimit(count=0), BreakerPolicy(failures=0), None, rng or FixedRandom(0.0)
    )


# -- redaction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome(ConnectError("GET http://h/e?access_token=t0k3n-x: Connection refused")),
        Outcome(RuntimeError("hook saw http://u:pw-s3cret@h/e?access_token=t0k3n-x"), crashed=True),
    ],
    ids=["stream error", "crash"],
)
def test_a_decision_reason_never_carries_credentials(outcome: Outcome) -> None:
    reason = make_policy().decide(outcome, now=0.0).reason
    assert "t0k3n-x" not in reason and "pw-s3cret" not in reason
    assert "access_token=***" in reason
