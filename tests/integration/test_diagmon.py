"""DiagMon end to end over real loopback HTTP against the reference server, for both protocols: the
server reads the diagnostics, arms a trap that then makes the device report on its own
(TrapNotification in a client-initiated session), and has the device upload its error log to a
one-time URL of the server (OperationComplete with the result). Hostile inputs: a garbage threshold,
an upload URL on a dead port, a log over the server's limit."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from session_kit import settle

from emulator.events import OperationChanged, SessionEnded
from emulator.fleet.fleet import Fleet
from emulator.mo.diagmon import ALERT_OPERATION, ALERT_TRAP, BASES
from emulator.server.app import RunningServer, start_server
from emulator.server.diag import received_logs
from emulator.server.state import ServerState

SERVER = {"dm12": "demo-dm12", "dm2": "demo-dm2"}


async def _setup(state: ServerState | None = None) -> tuple[RunningServer, Fleet, list[SessionEnded]]:
    server = await start_server(state)
    fleet = Fleet(server=server.url)
    fleet.resume_wait_s = 0.05  # an upload with no answer is tried again soon
    ended: list[SessionEnded] = []
    fleet.bus.subscribe(ended.append, SessionEnded)
    return server, fleet, ended


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.mark.parametrize("protocol", ["dm12", "dm2"])
def test_read_then_trap_reports_on_its_own(protocol: str) -> None:
    async def main() -> tuple[dict[str, Any], dict[str, Any], list[SessionEnded], str]:
        server, fleet, ended = await _setup()
        try:
            (dev,) = fleet.add("smartphone", 1)
            server.control.set_diag_script(dev.id, "read", protocol)
            done = await fleet.run_session(dev.id, protocol)
            assert done.outcome == "completed", done.detail
            read = server.control.diagnostics(dev.id)
            level = int(dev.tree.value(f"{BASES[protocol]}/Battery/Level") or 0)
            # a threshold above the battery's level: the trap is true as soon as it is armed
            server.control.set_diag_script(dev.id, "trap", protocol, trap="Battery", threshold=level + 1)
            done = await fleet.run_session(dev.id, protocol)
            assert done.outcome == "completed", done.detail
            await settle(fleet, ended, 3)
            state = dev.tree.value(f"{BASES[protocol]}/Trap/Battery/State")
            return read, server.control.diagnostics(dev.id), ended, str(state)
        finally:
            await fleet.aclose()
            await server.stop()

    read, after, ended, state = _run(main())
    values = read["values"]
    if protocol == "dm12":
        assert 0 <= int(values["./DiagMon/Battery/Level"]) <= 100
        assert int(values["./DiagMon/Memory/Free"]) < int(values["./DiagMon/Memory/Total"])
        signals = {k: int(v) for k, v in values.items() if k.endswith("/Signal")}
        assert set(signals) == {f"./DiagMon/Radio/{b}/Signal" for b in ("lte0", "nr0", "wlan0")}
        assert all(-140 < v < -20 for v in signals.values())
    else:
        battery = values["urn:oma:mo:oma-diagmon:1.0//Battery"]["Battery"]
        assert 0 <= int(battery["Level"]) <= 100
        radios = values["urn:oma:mo:oma-diagmon:1.0//Radio"]["Radio"]
        assert set(radios) == {"lte0", "nr0", "wlan0"}
        assert all(-140 < r["Signal"] < -20 for r in radios.values())
    traps = [a for a in after["alerts"] if a["type"] == ALERT_TRAP]
    assert len(traps) == 1, after["alerts"]
    assert state == "active"
    third = ended[2]
    assert third.outcome == "completed"
    data = traps[0]["data"]
    text = data if isinstance(data, str) else "&".join(f"{k}={v}" for k, v in data.items())
    assert "Measure=Battery%2FLevel" in text or "Measure=Battery/Level" in text
    assert "Condition=below" in text


def test_trap_fires_once_and_rearms() -> None:
    """Inactive -> active sends one alert; staying active sends none; back to inactive re-arms."""
    async def main() -> tuple[int, int, int]:
        server, fleet, ended = await _setup()
        try:
            (dev,) = fleet.add("smartphone", 1)
            server.control.set_diag_script(dev.id, "trap", "dm12", trap="Battery", threshold=20)
            dev.diagnostics.set_value("Battery/Level", 80)
            await fleet.run_session(dev.id, "dm12")
            await settle(fleet, ended, 1)
            dev.diagnostics.set_value("Battery/Level", 12)  # a local event: the battery drops
            first = fleet.sample_diagnostics(dev.id)
            await settle(fleet, ended, 2)
            again = fleet.sample_diagnostics(dev.id)  # still low: no second alert
            dev.diagnostics.set_value("Battery/Level", 60)
            fleet.sample_diagnostics(dev.id)
            dev.diagnostics.set_value("Battery/Level", 9)
            third = fleet.sample_diagnostics(dev.id)
            await settle(fleet, ended, 3)
            return first, again, third
        finally:
            await fleet.aclose()
            await server.stop()

    assert _run(main()) == (1, 0, 1)


@pytest.mark.parametrize("protocol", ["dm12", "dm2"])
def test_log_upload_reaches_the_server(protocol: str) -> None:
    async def main() -> tuple[dict[str, Any], list[bytes], str]:
        server, fleet, ended = await _setup()
        try:
            (dev,) = fleet.add("smartphone", 1)
            dev.diagnostics.log(dev.tree, 0.0, "modem reset by watchdog")
            server.control.set_diag_script(dev.id, "upload", protocol)
            done = await fleet.run_session(dev.id, protocol)
            assert done.outcome == "completed", done.detail
            await settle(fleet, ended, 2)
            status = dev.tree.value(f"{BASES[protocol]}/ErrorLog/UploadStatus")
            return server.control.diagnostics(dev.id), [r.body for r in received_logs(server.state, dev.id)], str(status)
        finally:
            await fleet.aclose()
            await server.stop()

    seen, logs, status = _run(main())
    assert len(logs) == 1 and b"modem reset by watchdog" in logs[0]
    assert status.startswith("200 uploaded")
    results = [a for a in seen["alerts"] if a["type"] == ALERT_OPERATION]
    assert len(results) == 1
    data = results[0]["data"]
    assert "Result=200" in (data if isinstance(data, str) else data["Value"])
    if protocol == "dm12":
        assert results[0]["correlator"].startswith("diag-")


def _dead_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_upload_to_a_dead_port_reports_network_failure_and_keeps_the_log() -> None:
    async def main() -> tuple[str, str, list[str], list[OperationChanged]]:
        server, fleet, ended = await _setup()
        raised: list[OperationChanged] = []
        fleet.bus.subscribe(raised.append, OperationChanged)
        try:
            (dev,) = fleet.add("smartphone", 1)
            dev.diagnostics.log(dev.tree, 0.0, "first line")
            url = f"http://127.0.0.1:{_dead_port()}/diag/upload/nobody"

            def script(config: Any) -> Any:
                from emulator.protocol.syncml.commands import Exec, Item

                return [("upload", lambda s: [Exec(cmd_id="0", correlator="c-1", items=[
                    Item(target="./DiagMon/ErrorLog/Upload", data=url)])])]

            server.state.dm12_scripts[dev.id] = script
            await fleet.run_session(dev.id, "dm12")
            await settle(fleet, ended, 2)
            log = str(dev.tree.value("./DiagMon/ErrorLog/Data"))
            alerts = [a for s in server.state.dm12_sessions[dev.id] for a in s.generic_alerts]
            data = [str(i.data) for a in alerts for i in a.items]
            return str(dev.tree.value("./DiagMon/ErrorLog/UploadStatus")), log, data, raised
        finally:
            await fleet.aclose()
            await server.stop()

    status, log, data, raised = _run(main())
    assert status.startswith("503 failed")
    assert "first line" in log  # the log is kept (and says the upload failed)
    assert any("Result=503" in d for d in data)
    assert [(r.operation, r.state, r.result) for r in raised] == [("diagmon", "ended", 503)]


def test_oversize_log_is_refused_413_and_nothing_kept() -> None:
    async def main() -> tuple[str, list[Any]]:
        state = ServerState()
        state.extra["diag_log_max_bytes"] = 64
        server, fleet, ended = await _setup(state)
        try:
            (dev,) = fleet.add("smartphone", 1)
            for n in range(5):
                dev.diagnostics.log(dev.tree, float(n), f"line {n} of a log longer than the server takes")
            server.control.set_diag_script(dev.id, "upload", "dm2")
            await fleet.run_session(dev.id, "dm2")
            await settle(fleet, ended, 2)
            return str(dev.tree.value("./DM2/DiagMon/ErrorLog/UploadStatus")), received_logs(server.state, dev.id)
        finally:
            await fleet.aclose()
            await server.stop()

    status, logs = _run(main())
    assert status.startswith("413 failed")
    assert logs == []


def test_garbage_threshold_over_dm2_is_refused_and_changes_nothing() -> None:
    """A server HGETs a threshold that is no integer: the device answers an error and the trap stays."""
    async def main() -> tuple[list[int], str, str]:
        server, fleet, ended = await _setup()
        try:
            from emulator.protocol.dm2.moser import MOSerialization

            (dev,) = fleet.add("smartphone", 1)
            uri = "urn:oma:mo:oma-diagmon:1.0//Trap/Battery/Threshold"
            server.state.put_repo("bad/threshold", [MOSerialization(client_uri=uri, mo_data={"Threshold": "20%"})])
            server.state.put_repo("bad/measure", [MOSerialization(
                client_uri="urn:oma:mo:oma-diagmon:1.0//Trap/Battery/Measure", mo_data={"Measure": "ErrorLog/Data"})])
            server.state.set_script(dev.id, [[["HGET", "${base}/repo/bad/threshold", uri],
                                              ["HGET", "${base}/repo/bad/measure",
                                               "urn:oma:mo:oma-diagmon:1.0//Trap/Battery/Measure"]], [["END"]]])
            await fleet.run_session(dev.id, "dm2")
            log = server.state.device(dev.id)
            codes = [s.sc for s in log.status_of("HGET")]
            return (codes, str(dev.tree.value("./DM2/DiagMon/Trap/Battery/Threshold")),
                    str(dev.tree.value("./DM2/DiagMon/Trap/Battery/Measure")))
        finally:
            await fleet.aclose()
            await server.stop()

    codes, threshold, measure = _run(main())
    assert all(c >= 400 for c in codes), codes
    assert threshold == "15" and measure == "Battery/Level"


def test_trap_script_refuses_garbage_before_anything_is_set() -> None:
    from emulator.errors import EmulatorError
    from emulator.server.control import ServerControl

    state = ServerState()
    control = ServerControl(state)
    for bad in ({"threshold": "twenty"}, {"threshold": 10**12}, {"threshold": True}, {"threshold": 5, "condition": "at"},
                {"threshold": 5, "measure": "../DMAcc"}, {"threshold": 5, "trap": "a/b"}):
        with pytest.raises(EmulatorError) as err:
            control.set_diag_script("dev-1", "trap", "dm12", **bad)
        assert err.value.status == 400
    with pytest.raises(EmulatorError):
        control.set_diag_script("dev-1", "nonsense", "dm2")
    assert state.campaigns.campaigns == {}  # nothing was set
    control.set_diag_script("dev-1", "trap", "dm12", threshold=10**12 - 1)
    (job,) = state.campaigns.campaigns.values()
    assert (job.devices, job.protocols, [s.kind for s in job.steps]) == ({"dev-1"}, ("dm12",), ["diag.trap"])
    assert job.steps[0].trap is not None and job.steps[0].trap.threshold == 10**12 - 1
