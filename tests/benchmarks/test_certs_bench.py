"""Certificate figures: how fast the test CA gives a fleet its identities, and TLS contexts per device.

Run for real with ``pytest tests/benchmarks/test_certs_bench.py --benchmark-enable`` (1,000 devices;
figures printed). Under the default ``--benchmark-disable`` it runs once on 20 devices as a smoke
test. Target (printed, never asserted): 1,000 distinct device identities in a few seconds.
"""

from __future__ import annotations

import time

import pytest

from emulator.transport.http import TlsConfig
from emulator.util.certs import issue_device_certs, load_ca, make_ca


def _enabled(request: pytest.FixtureRequest) -> bool:
    cfg = request.config
    return not (cfg.getoption("benchmark_disable") and not cfg.getoption("benchmark_enable"))


def _report(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str], text: str) -> None:
    if _enabled(request):
        with capsys.disabled():
            print(f"\n    {text}")
    else:
        print(text)


def test_issue_device_certs(benchmark, request, capsys, tmp_path):
    count = 1000 if _enabled(request) else 20
    ca = load_ca(make_ca(tmp_path / "ca"))
    ids = [f"IMEI:35{i:013d}" for i in range(count)]
    rounds = iter(range(100))

    def issue() -> dict:
        return issue_device_certs(ca, ids, directory=tmp_path / f"round{next(rounds)}")

    start = time.perf_counter()
    issued = benchmark.pedantic(issue, rounds=3 if _enabled(request) else 1)
    took = (time.perf_counter() - start) / (3 if _enabled(request) else 1)
    assert len(issued) == count
    _report(request, capsys, f"device certificates: {count:,} in {took:.2f} s = {count / took:,.0f} per second "
            "(EC P-256, distinct keys, PEM files; target: 1,000 in a few seconds)")

    configs = [TlsConfig(str(ca.cert_path), str(c), str(k)) for c, k in issued.values()]
    start = time.perf_counter()
    for cfg in configs:
        cfg.ssl_context()
    took = time.perf_counter() - start
    _report(request, capsys, f"TLS client contexts with a device certificate: {count / took:,.0f} per second")
