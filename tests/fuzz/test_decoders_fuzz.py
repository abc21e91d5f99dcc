"""Every decoder of outside input at once: only EmulatorError subclasses may come out (bounded run).

The long campaign is ``python tests/fuzz/run_campaign.py`` (figures in docs/fuzzing.md); this is its
smoke run in the suite, 60 inputs per decoder, mutated from real documents.
"""

from __future__ import annotations

import traceback

import pytest
from fuzz_targets import TARGETS, inputs, run_one
from hypothesis import HealthCheck, given, settings


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_decoder_raises_only_typed_errors(name: str) -> None:
    target = TARGETS[name]
    assert target.seeds(), f"{name} has no seeds"

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(inputs(target))
    def check(data: bytes) -> None:
        crash = run_one(target, data)
        if crash is not None:
            where = "".join(traceback.format_exception(crash)[-3:])
            raise AssertionError(f"{name}: {type(crash).__name__} escaped for input {data[:200]!r}\n{where}")

    check()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_decode(name: str) -> None:
    """The seeds are valid documents: mutations start from inputs that get deep into the decoder."""
    target = TARGETS[name]
    for seed in target.seeds():
        target.decode(seed)  # any error here, typed or not, means a useless seed
