"""DiagMon and ConnMO are managed objects a profile declares: a device whose profile leaves them out
has neither subtree, never measures, and answers a server's read of them 404 (DM 1.2 and DM 2.0) so
no trap can be armed; a device that declares DiagMon measures when a server reads its values, not
around every session. Over real loopback HTTP against the reference server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from emulator.device.profile import find_profile, load_profile
from emulator.device.virtual import VirtualDevice
from emulator.errors import FileFormatError
from emulator.fleet.fleet import Fleet
from emulator.mo import connmo, diagmon
from emulator.server.app import start_server

SHIPPED = Path(__file__).resolve().parents[2] / "profiles" / "smartphone.toml"
DECLARATIONS = "# Diagnostics and connectivity under server control"
ROOTS = (diagmon.DM1_BASE, diagmon.DM2_BASE, connmo.DM1_BASE, connmo.DM2_BASE)


def _plain(tmp_path: Path) -> Path:
    """The shipped smartphone without its DiagMon and ConnMO declarations (they close the file)."""
    text = SHIPPED.read_text()
    assert DECLARATIONS in text
    path = tmp_path / "plain-phone.toml"
    path.write_text(text[:text.index(DECLARATIONS)].replace('name = "smartphone"', 'name = "plain-phone"', 1))
    return path


def test_an_undeclared_diagmon_and_connmo_cost_no_nodes_and_no_sampling(tmp_path: Path) -> None:
    plain = VirtualDevice(load_profile(_plain(tmp_path)), 0, server="http://127.0.0.1:1")
    full = VirtualDevice(find_profile("smartphone"), 0, server="http://127.0.0.1:1")
    for root in ROOTS:
        assert not plain.tree.exists(root)
        assert full.tree.exists(root)
    declared = sum(1 for root in ROOTS for _ in full.tree.walk(root))
    assert declared > 60  # (readings, three traps, the log, one NAP per bearer: on both trees)
    assert len(list(plain.tree.walk())) == len(list(full.tree.walk())) - declared
    assert plain.diagnostics is None and full.diagnostics is not None
    version = plain.tree.version
    assert plain.sample_diagnostics(1000.0) == [] and plain.tree.version == version  # nothing measured
    assert plain.tree._exec_handler(("DiagMon", "ErrorLog", "Upload")) is None
    assert full.tree._exec_handler(("DiagMon", "ErrorLog", "Upload")) is not None


def test_the_plain_shipped_profiles_have_neither_object() -> None:
    for name in ("nbiot-sensor", "windows-laptop"):
        dev = VirtualDevice(find_profile(name), 0, server="http://127.0.0.1:1")
        assert dev.diagnostics is None
        assert not any(dev.tree.exists(root) for root in ROOTS), name


@pytest.mark.parametrize("node", ["./Vendor/DiagMon", "./DM2/diag/1"])
def test_diagmon_declared_anywhere_else_is_refused_naming_the_line(tmp_path: Path, node: str) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text(SHIPPED.read_text().replace('name = "smartphone"', 'name = "elsewhere"', 1)
                    + f'\n[[behaviours]]\nmo = "diagmon"\nnode = "{node}"\n')
    with pytest.raises(FileFormatError) as e:
        load_profile(path)
    assert "elsewhere.toml:195: behaviours[10].node: diagmon lives at ./DiagMon or ./DM2/DiagMon" in str(e.value)


async def _session(profile: Any, script: str, protocol: str) -> tuple[Any, VirtualDevice, Any, Fleet]:
    server = await start_server()
    fleet = Fleet(server=server.url)
    (dev,) = fleet.add(profile, 1)
    server.control.set_diag_script(dev.id, script, protocol, **({"trap": "Battery", "threshold": 101}
                                                                if script == "trap" else {}))
    done = await fleet.run_session(dev.id, protocol)
    return server, dev, done, fleet


@pytest.mark.parametrize("protocol", ["dm12", "dm2"])
def test_a_device_without_diagmon_answers_404_and_cannot_be_armed(tmp_path: Path, protocol: str) -> None:
    profile = load_profile(_plain(tmp_path))

    async def main() -> tuple[Any, ...]:
        statuses: list[Any] = []
        for script in ("read", "trap"):
            server, dev, done, fleet = await _session(profile, script, protocol)
            try:
                assert done.outcome == "completed", done.detail
                log = server.state.device(dev.id)
                if protocol == "dm12":
                    statuses += [r.code for s in server.state.dm12_sessions[dev.id] for r in s.script_statuses()]
                else:
                    statuses += [st.sc for cmd, st in log.statuses if cmd and cmd[0] in ("GET", "HGET")]
                watched = dict(fleet._watchers)
                seen = server.control.diagnostics(dev.id)
            finally:
                await fleet.aclose()
                await server.stop()
            assert watched == {} and dev.diagnostics is None
            assert not any(dev.tree.exists(root) for root in ROOTS)
        return statuses, seen

    statuses, seen = asyncio.run(main())
    assert statuses and set(statuses) == {404}, statuses
    assert not seen["values"] and not seen["alerts"]


@pytest.mark.parametrize("protocol", ["dm12", "dm2"])
def test_a_declared_diagmon_measures_when_a_server_reads_it_not_around_every_session(protocol: str) -> None:
    async def main() -> tuple[float | None, float | None, str]:
        server = await start_server()
        fleet = Fleet(server=server.url)
        try:
            (dev,) = fleet.add("smartphone", 1)
            diag = dev.diagnostics
            assert diag is not None
            done = await fleet.run_session(dev.id, protocol)  # the server's default session: no DiagMon read
            assert done.outcome == "completed", done.detail
            untouched = diag.last_sample
            server.control.set_diag_script(dev.id, "read", protocol)
            done = await fleet.run_session(dev.id, protocol)
            assert done.outcome == "completed", done.detail
            return untouched, diag.last_sample, str(dev.tree.value(f"{diagmon.BASES[protocol]}/Memory/Free"))
        finally:
            await fleet.aclose()
            await server.stop()

    untouched, read, free = asyncio.run(main())
    assert untouched is None  # (before: sampled before and after every session)
    assert read is not None
    assert int(free) > 0  # the template holds 0: the server read a measured value
