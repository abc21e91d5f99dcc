"""The DM 2.0 client engine with the server played by hand: JSON packages in, JSON packages and
HTTP requests out, for every command of PROTOCOL 1.9 with the project rules of 1.19, the error
cases, ClientURI forms (1.10), caching (1.12), access control (1.16) and Package#0 checks (1.4)."""

from __future__ import annotations

import base64
import json

import pytest

from emulator.device.profile import find_profile
from emulator.device.virtual import VirtualDevice
from emulator.mo.instances import defaults
from emulator.protocol.actions import HttpRequest, HttpResult, OpenBrowser, SendMessage, SessionDone
from emulator.protocol.dm2 import media
from emulator.protocol.dm2.client import ALERT_EXEC_RESULT, DM2Client, PendingAlert, check_notification
from emulator.protocol.dm2.messages import Alert
from emulator.protocol.dm2.notification import NotificationGuard, build_notification
from emulator.protocol.dm2.subscriptions import subscriptions_for

SERVER = "https://dm.example"
SID = "demo-dm2"
DEVINFO = "urn:oma:mo:oma-dm-devinfo:1.2"
DMACC = "urn:oma:mo:oma-dm-dmacc:1.2"
T = "urn:oma:mo:ext-test:1.0"  # two instances, left and right (PROTOCOL 1.10 figure)
NEW = "urn:oma:mo:ext-new:1.0"  # granted, no instance yet
NOT_GRANTED = "urn:oma:mo:ext-secret:1.0"


@pytest.fixture
def dev() -> VirtualDevice:
    d = VirtualDevice(find_profile("smartphone"), 0, server=SERVER)
    tree = d.tree
    perm = "./DM2/DMAcc/demo-dm2/Perm"
    for n, moid in enumerate((T, NEW), len(tree.children(perm)) + 1):
        tree.set_node(f"{perm}/{n}", format="node")
        tree.set_node(f"{perm}/{n}/MOID", moid)
    for miid, ident in (("left", "GPS"), ("right", "WLAN")):
        base = f"./DM2/ext-test/{miid}"
        tree.set_node(base, format="node", type=T)
        tree.set_node(f"{base}/ID", ident)
        tree.set_node(f"{base}/Setting", f"{miid}-setting")
        tree.set_node(f"{base}/Count", "3", format="int")
        for n, date in enumerate(("12.1", "12.2"), 1):
            tree.set_node(f"{base}/Data/{n}/Value", f"{miid}-v{n}")
            tree.set_node(f"{base}/Data/{n}/Date", date)
    # an instance of the same MOID owned by another server: invisible to demo-dm2
    tree.set_node("./DM2/ext-test/theirs", format="node", type=T, acl="Get=other&Replace=other")
    tree.set_node("./DM2/ext-test/theirs/ID", "X")
    tree.set_node(f"./DM2/{NOT_GRANTED.split(':')[3]}/i1", format="node", type=NOT_GRANTED)
    return d


def engine(dev: VirtualDevice, **kw) -> DM2Client:
    return DM2Client(dev.tree, dev.account(protocol="dm2"), dev_id=dev.id, **kw)


def mo_result(items, ctype: str = media.MO_JSON, status: int = 200) -> HttpResult:
    return HttpResult(status, json.dumps(items).encode(), {"content-type": ctype})


class Server:
    """The server's side by hand: answers Package#1/#3 with the commands a test gives."""

    def __init__(self, client: DM2Client, http=None) -> None:
        self.c = client
        self.http = http or (lambda request: HttpResult(204))
        self.first = client.next_action()
        assert isinstance(self.first, SendMessage)
        self.requests: list[HttpRequest] = []
        self.browsers: list[OpenBrowser] = []
        self.last: SendMessage | None = None

    def send(self, *commands, headers: dict[str, str] | None = None, http=None):
        body = json.dumps({"CMD": [list(c) for c in commands]}).encode()
        self.c.receive_message(HttpResult(200, body, headers or {"content-type": media.REQUEST}))
        return self.drain(http)

    def drain(self, http=None):
        http = http or self.http
        while True:
            action = self.c.next_action()
            if isinstance(action, HttpRequest):
                self.requests.append(action)
                self.c.receive_http(action.request_id, http(action))
            elif isinstance(action, OpenBrowser):
                self.browsers.append(action)
            elif isinstance(action, SendMessage):
                self.last = action
                return json.loads(action.body)
            elif isinstance(action, SessionDone):
                return action
            else:
                raise AssertionError(f"unexpected action {action!r}")

    def codes(self, *commands, **kw) -> list[int]:
        return [s["sc"] for s in self.send(*commands, **kw)["Status"]]


# --- Package#1 ------------------------------------------------------------------------------------


def test_package1_client_initiated_with_headers_and_no_mos(dev):
    c = engine(dev)
    p1 = c.next_action()
    assert isinstance(p1, SendMessage)
    assert p1.url == SERVER + "/dm2"  # the profile's SrvURI
    assert p1.content_type == media.INITIATION
    assert p1.headers["OMADM-DevID"] == dev.id
    assert p1.headers["Accept"] == media.REQUEST
    scheme, token = p1.headers["Authorization"].split()
    user = dev.account(protocol="dm2").client_user
    assert ":" not in user  # RFC 7617 forbids ':' in a Basic user-id: the profiles use the serial
    assert scheme == "Basic" and base64.b64decode(token).decode() == f"{user}:demo-client-secret"
    assert not any("RFC 7617" in n for n in c.notes)
    assert json.loads(p1.body) == {"Alert": [{"AlertType": "urn:oma:at:dm:2.0:ClientInitiatedMgmt"}]}


def test_a_basic_user_with_a_colon_is_sent_but_noted(dev):
    acc = dev.account(protocol="dm2")
    dev.tree.set_node(f"{acc.path}/Ext/HTTPAuth/Name", dev.id)  # "IMEI:..." has a ':'
    c = engine(dev)
    c.next_action()
    assert any("RFC 7617" in n for n in c.notes)


def test_package1_mos_lists_only_granted_moids_and_visible_instances(dev):
    p1 = json.loads(engine(dev, req_mos=True).next_action().body)
    mos = {m["MOID"]: m["MIID"] for m in p1["MOS"]}
    assert mos[T] == ["left", "right"]  # not "theirs"
    assert mos[NEW] == []
    assert mos[DEVINFO] == ["DevInfo"]
    assert NOT_GRANTED not in mos


def test_server_initiated_alert_carries_the_notification_id(dev):
    p1 = json.loads(engine(dev, alert_type="ServerInitiated", notification_id=4711).next_action().body)
    assert p1["Alert"] == [{"AlertType": "urn:oma:at:dm:2.0:ServerInitiatedMgmt", "Data": {"NotificationID": 4711}}]
    p1 = json.loads(engine(dev, alert_type="BootstrapComplete").next_action().body)
    assert p1["Alert"][0]["AlertType"] == "urn:oma:at:dm:2.0:BootstrapComplete"
    with pytest.raises(ValueError):
        engine(dev, alert_type="Whenever")


def test_pending_alerts_open_a_new_session_at_their_server_uri(dev):
    alert = Alert(ALERT_EXEC_RESULT, source_uri=f"{T}/left/Setting", data={"sc": 200})
    p1 = engine(dev, alerts=[PendingAlert("https://dm.example/dm20/alerts", alert)]).next_action()
    assert p1.url == "https://dm.example/dm20/alerts"
    body = json.loads(p1.body)
    assert [a["AlertType"] for a in body["Alert"]] == ["urn:oma:at:dm:2.0:ClientInitiatedMgmt", ALERT_EXEC_RESULT]
    assert body["Alert"][1]["Data"] == {"sc": 200}


# --- GET, ClientURI forms, caching, access control -------------------------------------------------


def test_get_leaf_returns_uri_and_mo_serialization(dev):
    s = Server(engine(dev))
    (st,) = s.send(["GET", f"{DEVINFO}//FwV"])["Status"]
    assert st == {"sc": 200, "URI": [f"{DEVINFO}/DevInfo/FwV"],
                  "MOS": [{"ClientURI": f"{DEVINFO}/DevInfo/FwV", "MOData": {"FwV": "X5P-BL-2.14.07"}}]}


def test_get_instance_root_has_typed_values_and_a_cache_validator(dev):
    s = Server(engine(dev))
    (st,) = s.send(["GET", f"{T}/left/"])["Status"]
    (item,) = st["MOS"]
    assert item["MOData"] == {"left": {"ID": "GPS", "Setting": "left-setting", "Count": 3,
                                       "Data": {"1": {"Value": "left-v1", "Date": "12.1"},
                                                "2": {"Value": "left-v2", "Date": "12.2"}}}}
    cv = item["CV"]
    assert st["URI"] == [f"{T}/left/"]
    # same validator: 304 and no data; a validator naming a node inside the instance works too
    assert s.send(["GET", f"{T}/left/?cv={cv}"])["Status"] == [{"sc": 304, "URI": [f"{T}/left/"]}]
    assert s.codes(["GET", f"{T}/left/ID?cv={cv}"]) == [304]
    dev.tree.replace("./DM2/ext-test/left/Setting", "changed")
    (st,) = s.send(["GET", f"{T}/left/?cv={cv}"])["Status"]
    assert st["sc"] == 200 and st["MOS"][0]["CV"] != cv
    assert st["MOS"][0]["MOData"]["left"]["Setting"] == "changed"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (f"{T}/*/Setting", [f"{T}/left/Setting", f"{T}/right/Setting"]),
        (f"{T}/(x)/Data/(y)/Value?nv=(x)/ID:GPS&nv=(y)/Date:12.2", [f"{T}/left/Data/2/Value"]),
        (f"{T}/(x)/?nv=(x)/ID:WLAN", [f"{T}/right/"]),
        (f"{T}/right/Data/*/Date", [f"{T}/right/Data/1/Date", f"{T}/right/Data/2/Date"]),
    ],
)
def test_get_with_wildcards_and_x_names(dev, uri, expected):
    (st,) = Server(engine(dev)).send(["GET", uri])["Status"]
    assert st["sc"] == 200 and st["URI"] == expected
    assert [m["ClientURI"] for m in st["MOS"]] == expected


@pytest.mark.parametrize(
    ("uri", "code"),
    [
        (f"{T}//ID", 404),  # two visible instances: the empty instance is ambiguous
        (f"{T}/theirs/ID", 404),  # another server's instance is invisible
        (f"{T}/left/Nope", 404),
        (f"{T}/(x)/ID?nv=(x)/ID:nothing", 404),
        (f"{NOT_GRANTED}/i1/", 403),  # MOID not granted at bootstrap
        (f"{T}/left/Data//Value", 400),  # malformed ClientURI
        (f"{T}/(x)/ID", 400),  # x-name without nv
        (f"{DMACC}/demo-dm2/Perm", 405),  # DDF: Perm has no Get
    ],
)
def test_get_errors(dev, uri, code):
    s = Server(engine(dev))
    assert s.codes(["GET", uri], ["GET", f"{DEVINFO}//Mod"]) == [code, 200]  # and the session goes on


def test_tree_acl_refusal_is_403_and_unreadable_children_are_left_out(dev):
    dev.tree.replace_prop("./DM2/ext-test/left/Setting", "ACL", "Get=other")
    s = Server(engine(dev))
    assert s.codes(["GET", f"{T}/left/Setting"]) == [403]
    (st,) = s.send(["GET", f"{T}/left/"])["Status"]
    assert "Setting" not in st["MOS"][0]["MOData"]["left"] and "ID" in st["MOS"][0]["MOData"]["left"]


# --- DELETE, EXEC ---------------------------------------------------------------------------------


def test_delete_instance_permanent_node_and_missing(dev):
    s = Server(engine(dev))
    codes = s.codes(["DELETE", f"{T}/right/"], ["DELETE", f"{DEVINFO}//FwV"], ["DELETE", f"{T}/right/ID"],
                    ["DELETE", f"{T}/*/Data/1"])
    assert codes == [200, 405, 404, 200]
    tree = dev.tree
    assert not tree.exists("./DM2/ext-test/right")
    assert tree.value("./DM2/DevInfo/FwV") == "X5P-BL-2.14.07"
    assert tree.children("./DM2/ext-test/left/Data") == ["2"]


def test_exec_sync_async_and_refused(dev):
    calls = []
    dev.tree.on_exec("./DM2/ext-test/*/Setting", lambda tree, req: calls.append(req.by) or 200)
    s = Server(engine(dev))
    codes = s.codes(
        ["EXEC", f"{T}/left/Setting"],
        ["EXEC", f"{T}/right/Setting", "https://dm.example/results"],
        ["EXEC", f"{T}/left/ID"],  # no device behaviour behind it
        ["EXEC", f"{T}/left/Nope", "https://dm.example/results"],  # refused before running: sync
        ["EXEC", f"{T}/*/Setting"],
    )
    assert codes == [200, 202, 405, 404, 400]
    assert calls == [SID, SID]
    (pending,) = s.c.pending_alerts
    assert pending.server_uri == "https://dm.example/results"
    assert pending.alert.alert_type == ALERT_EXEC_RESULT
    assert pending.alert.source_uri == f"{T}/right/Setting" and pending.alert.data == {"sc": 200}


# --- HGET -----------------------------------------------------------------------------------------


WLAN_ITEM = [{"ClientURI": f"{NEW}//", "MOData": {"WLAN": {"SSID": "Home", "Channel": 6, "Hidden": False,
                                                            "Ops": {"Connect": None}}}}]


def test_hget_creates_an_instance_owned_by_its_creator(dev):
    s = Server(engine(dev), http=lambda r: mo_result(WLAN_ITEM))
    first = s.send(["HGET", SERVER + "/repo/wlan"], ["HGET", SERVER + "/repo/wlan"])["Status"]
    assert first == [{"sc": 200, "URI": [f"{NEW}/i1/"]}, {"sc": 200, "URI": [f"{NEW}/i2/"]}]
    (req, _) = s.requests
    assert req.method == "GET" and req.url == SERVER + "/repo/wlan"
    assert media.MO_JSON in req.headers["Accept"] and req.headers["OMADM-DevID"] == dev.id
    assert "Authorization" in req.headers  # same origin as the DM server
    tree = dev.tree
    root = "./DM2/ext-new/i1"
    info = tree.info(root)
    assert info.type == NEW and info.title == "WLAN"
    assert info.acl == "Add=demo-dm2&Delete=demo-dm2&Exec=demo-dm2&Get=demo-dm2&Replace=demo-dm2"
    assert tree.value(f"{root}/SSID") == "Home"
    assert (tree.value(f"{root}/Channel"), tree.info(f"{root}/Channel").format) == ("6", "int")
    assert (tree.value(f"{root}/Hidden"), tree.info(f"{root}/Hidden").format) == ("false", "bool")
    assert tree.info(f"{root}/Ops/Connect").format == "null"
    # read back: the same MOData under the MO root name
    (st,) = s.send(["GET", f"{NEW}/i1/"])["Status"]
    assert st["MOS"][0]["MOData"] == WLAN_ITEM[0]["MOData"]


def test_hget_keeps_credentials_from_other_origins(dev):
    s = Server(engine(dev), http=lambda r: mo_result(WLAN_ITEM))
    assert s.codes(["HGET", "https://cdn.elsewhere.example/wlan"]) == [200]
    assert "Authorization" not in s.requests[0].headers


def test_hget_with_client_uri_replaces_the_data_there(dev):
    item = [{"ClientURI": f"{T}//", "MOData": {"left": {"ID": "GPS", "Setting": "new", "Count": "7"}}}]
    s = Server(engine(dev), http=lambda r: mo_result(item))
    assert s.send(["HGET", SERVER + "/repo/t", f"{T}/left/"])["Status"] == [{"sc": 200, "URI": [f"{T}/left/"]}]
    tree = dev.tree
    assert tree.children("./DM2/ext-test/left") == ["ID", "Setting", "Count"]  # Data is gone
    assert tree.value("./DM2/ext-test/left/Setting") == "new"
    assert tree.value("./DM2/ext-test/left/Count") == "7" and tree.info("./DM2/ext-test/left/Count").format == "int"
    # a leaf, and every instance at once through a wildcard
    s.http = lambda r: mo_result([{"ClientURI": f"{T}//", "MOData": {"Setting": "both"}}])
    assert s.codes(["HGET", SERVER + "/repo/s", f"{T}/*/Setting"]) == [200]
    assert tree.value("./DM2/ext-test/left/Setting") == tree.value("./DM2/ext-test/right/Setting") == "both"


def test_hget_to_a_new_miid_or_a_new_node_creates_it(dev):
    s = Server(engine(dev), http=lambda r: mo_result(WLAN_ITEM))
    assert s.send(["HGET", SERVER + "/r", f"{NEW}/office/"])["Status"] == [{"sc": 200, "URI": [f"{NEW}/office/"]}]
    assert dev.tree.info("./DM2/ext-new/office").type == NEW
    s.http = lambda r: mo_result([{"ClientURI": f"{T}//", "MOData": {"Extra": "x"}}])
    assert s.codes(["HGET", SERVER + "/r", f"{T}/left/Extra"]) == [200]
    assert dev.tree.value("./DM2/ext-test/left/Extra") == "x"


@pytest.mark.parametrize(
    ("result", "code"),
    [
        (HttpResult(500, b"oops"), 500),
        (HttpResult(0, error="connection refused"), 500),
        (HttpResult(404, b"gone"), 500),
        (HttpResult(200, b"<html>not MO</html>", {"content-type": "text/html"}), 415),
        (HttpResult(200, b"{broken", {"content-type": media.MO_JSON}), 415),
        (HttpResult(200, b"[]", {"content-type": media.MO_JSON}), 415),
        (mo_result([{"ClientURI": f"{NEW}//", "MOData": {"A": {}, "B": {}}}]), 415),  # two MO roots
        (mo_result([{"ClientURI": f"{NOT_GRANTED}//", "MOData": {"X": {}}}]), 403),
        (mo_result(WLAN_ITEM + [{"ClientURI": "no-slash", "MOData": {"X": {}}}]), 415),
    ],
)
def test_hget_repository_failures_leave_the_tree_unchanged(dev, result, code):
    before = [(n.path, n.value) for n in dev.tree.walk()]
    s = Server(engine(dev, max_size=4096), http=lambda r: result)
    assert s.codes(["HGET", SERVER + "/repo/x"], ["GET", f"{DEVINFO}//Mod"]) == [code, 200]
    assert [(n.path, n.value) for n in dev.tree.walk()] == before


def test_hget_too_large_is_413(dev):
    big = mo_result([{"ClientURI": f"{NEW}//", "MOData": {"W": {"Blob": "x" * 5000}}}])
    s = Server(engine(dev, max_size=4096), http=lambda r: big)
    assert s.codes(["HGET", SERVER + "/big"]) == [413]


def test_hget_not_granted_client_uri_is_403_without_fetching(dev):
    s = Server(engine(dev))
    assert s.codes(["HGET", SERVER + "/x", f"{NOT_GRANTED}/i1/"]) == [403]
    assert s.requests == []


def test_hget_replacing_a_permanent_node_fails_whole_and_rolls_back(dev):
    item = [{"ClientURI": f"{DEVINFO}//", "MOData": {"DevInfo": {"FwV": "hacked"}}}]
    s = Server(engine(dev), http=lambda r: mo_result(item))
    assert s.codes(["HGET", SERVER + "/x", f"{DEVINFO}//"]) == [405]
    assert dev.tree.value("./DM2/DevInfo/FwV") == "X5P-BL-2.14.07"
    assert dev.tree.exists("./DM2/DevInfo/Man")


# --- HPUT / HPOST ---------------------------------------------------------------------------------


def test_hput_and_hpost_send_the_listed_uris(dev):
    s = Server(engine(dev))
    assert s.codes(["HPUT", SERVER + "/up", f"{DEVINFO}//FwV", f"{T}/right/ID"],
                   ["HPOST", SERVER + "/post", f"{T}/left/Setting"]) == [200, 200]
    put, post = s.requests
    assert (put.method, post.method) == ("PUT", "POST")
    assert put.headers["Content-Type"] == media.MO_JSON
    assert json.loads(put.body) == [
        {"ClientURI": f"{DEVINFO}/DevInfo/FwV", "MOData": {"FwV": "X5P-BL-2.14.07"}},
        {"ClientURI": f"{T}/right/ID", "MOData": {"ID": "WLAN"}},
    ]
    assert json.loads(post.body)[0]["MOData"] == {"Setting": "left-setting"}


def test_upload_follows_omadm_accept_and_retries_after_415(dev):
    s = Server(engine(dev))
    assert s.codes(["HPUT", SERVER + "/a", f"{T}/left/ID"], headers={"OMADM-Accept": "application/json"}) == [200]
    assert s.requests[-1].headers["Content-Type"] == "application/json"
    assert s.codes(["HPUT", SERVER + "/a", f"{T}/left/ID"], headers={"OMADM-Accept": "text/csv"}) == [406]
    assert len(s.requests) == 1  # nothing sent

    answers = iter([HttpResult(415, headers={"OMADM-Accept": "application/dmmo+json"}), HttpResult(201)])
    assert s.codes(["HPOST", SERVER + "/b", f"{T}/left/ID"], http=lambda r: next(answers)) == [200]
    assert [r.headers["Content-Type"] for r in s.requests[1:]] == [media.MO_JSON, "application/dmmo+json"]
    assert s.codes(["HPOST", SERVER + "/c", f"{T}/left/ID"], http=lambda r: HttpResult(503)) == [500]


def test_upload_of_unchanged_data_is_304_without_a_request(dev):
    s = Server(engine(dev))
    (st,) = s.send(["GET", f"{T}/left/"])["Status"]
    cv = st["MOS"][0]["CV"]
    assert s.codes(["HPUT", SERVER + "/a", f"{T}/left/?cv={cv}"]) == [304]
    assert s.requests == []


# --- SHOW, CONT, END, DEFAULT, unknown ------------------------------------------------------------


def test_show_opens_the_browser_without_waiting(dev):
    s = Server(engine(dev))
    assert s.codes(["SHOW", SERVER + "/ui/wifi?s=1"], ["GET", f"{DEVINFO}//Mod"]) == [200, 200]
    (browser,) = s.browsers
    assert browser.url == SERVER + "/ui/wifi?s=1" and browser.wait is False
    s2 = Server(engine(dev, has_browser=False))
    assert s2.codes(["SHOW", SERVER + "/ui/wifi"]) == [500]
    assert s2.browsers == []


def test_cont_moves_the_next_package3(dev):
    s = Server(engine(dev))
    assert s.codes(["CONT", "https://other.example/dm"]) == [200]
    assert s.last.url == "https://other.example/dm"
    assert s.last.content_type == media.RESPONSE and s.last.headers["OMADM-DevID"] == dev.id
    assert s.codes(["GET", f"{DEVINFO}//Mod"]) == [200]
    assert s.last.url == "https://other.example/dm"  # every following Package#3 of the session


def test_end_runs_the_rest_of_the_package_and_sends_nothing(dev):
    s = Server(engine(dev))
    done = s.send(["END"], ["DELETE", f"{T}/left/"])
    assert isinstance(done, SessionDone) and done.outcome == "completed"
    assert not dev.tree.exists("./DM2/ext-test/left")
    assert s.c.next_action() is None


def test_default_binds_a_server_uri_and_keeps_status_positions(dev):
    s = Server(engine(dev))
    codes = s.codes(["DEFAULT", NEW, "https://dm.example/repo/new"], ["DEFAULT", NOT_GRANTED, "https://x.example/"],
                    ["DEFAULT", NEW, "https://dm.example/repo/new2"], ["GET", f"{DEVINFO}//Mod"])
    assert codes == [200, 403, 200, 200]
    assert defaults(dev.tree) == {NEW: "https://dm.example/repo/new2"}


def test_unknown_and_malformed_commands_and_the_order_of_statuses(dev):
    s = Server(engine(dev))
    codes = s.codes(["FROB", "x"], ["GET"], ["GET", f"{DEVINFO}//Mod"], ["SUB", f"{T}/left/"],
                    ["get", f"{DEVINFO}//Man"])
    assert codes == [501, 400, 200, 400, 200]
    assert any("FROB" in n for n in s.c.notes)


# --- SUB / UNSUB ----------------------------------------------------------------------------------


def test_sub_pushes_local_changes_inside_the_session_and_unsub(dev):
    s = Server(engine(dev))
    assert s.send(["SUB", f"{T}/left/", SERVER + "/sub/left"])["Status"] == [{"sc": 200, "URI": [f"{T}/left/"]}]
    dev.tree.replace("./DM2/ext-test/right/Setting", "elsewhere")  # not watched
    assert s.codes(["GET", f"{DEVINFO}//Mod"]) == [200]
    assert s.requests == []
    dev.tree.replace("./DM2/ext-test/left/Setting", "local change")
    assert s.codes(["GET", f"{DEVINFO}//Mod"]) == [200]
    (push,) = s.requests
    assert (push.method, push.url) == ("PUT", SERVER + "/sub/left")
    pushed = json.loads(push.body)
    assert pushed[0]["ClientURI"] == f"{T}/left/" and pushed[0]["MOData"]["left"]["Setting"] == "local change"
    # a change made by the subscribed server itself is not pushed back to it
    s.http = lambda r: mo_result([{"ClientURI": f"{T}//", "MOData": {"Setting": "by server"}}])
    assert s.codes(["HGET", SERVER + "/x", f"{T}/left/Setting"]) == [200]
    assert [r.method for r in s.requests] == ["PUT", "GET"]
    # UNSUB needs the very same ClientURI
    assert s.codes(["UNSUB", f"{T}/left"], ["UNSUB", f"{T}/left/"], ["UNSUB", f"{T}/left/"]) == [404, 200, 404]
    dev.tree.replace("./DM2/ext-test/left/Setting", "after unsub")
    assert s.codes(["GET", f"{DEVINFO}//Mod"]) == [200]
    assert len(s.requests) == 2


def test_subscriptions_outlive_the_session_and_report_deletion(dev):
    s = Server(engine(dev))
    assert s.codes(["SUB", f"{T}/right/ID", SERVER + "/sub/id"]) == [200]
    assert isinstance(s.send(["END"]), SessionDone)
    subs = subscriptions_for(dev.tree)
    woken = []
    subs.on_change = lambda: woken.append(True)
    dev.tree.delete("./DM2/ext-test/right")
    assert woken == [True]
    (push,) = subs.pending_pushes()
    assert push.body == b"[]"  # the watched node is gone
    assert subs.pending_pushes() == []  # delivered once
    retry = subs.push_result(push.request_id, HttpResult(415, headers={"OMADM-Accept": "application/json"}))
    assert retry is not None and retry.headers["Content-Type"] == "application/json"
    assert subs.push_result(retry.request_id, HttpResult(204)) is None
    assert subs.find(SID, f"{T}/right/ID").pushes == 1


def test_sub_needs_read_rights(dev):
    dev.tree.replace_prop("./DM2/ext-test/left/ID", "ACL", "Get=other")
    s = Server(engine(dev))
    assert s.codes(["SUB", f"{T}/left/ID", SERVER + "/sub"], ["SUB", f"{T}/nope/", SERVER + "/sub"]) == [403, 404]
    assert len(subscriptions_for(dev.tree)) == 0


# --- the session itself ---------------------------------------------------------------------------


def test_session_http_errors_end_the_session(dev):
    c = engine(dev)
    c.next_action()
    c.receive_message(HttpResult(503, b"maintenance until 5 pm"))
    done = c.next_action()
    assert done.outcome == "failed" and done.status == 503
    assert "HTTP 503" in done.detail and "maintenance until 5 pm" in done.detail
    assert c.next_action() is None

    c = engine(dev)
    c.next_action()
    c.receive_message(HttpResult(0, error="connection refused"))
    assert "connection refused" in c.next_action().detail

    c = engine(dev)
    c.next_action()
    c.receive_message(HttpResult(200, b'{"CMD": "GET"}'))
    done = c.next_action()
    assert done.outcome == "failed" and "Package#2" in done.detail


def test_empty_packages_get_empty_answers_up_to_a_limit(dev):
    s = Server(engine(dev, max_empty_rounds=2))
    assert s.send() == {"Status": []}
    assert s.send() == {"Status": []}
    done = s.send()
    assert isinstance(done, SessionDone) and done.outcome == "failed" and "empty" in done.detail


def test_fail_ends_the_session(dev):
    c = engine(dev)
    c.next_action()
    c.fail("bearer lost")
    assert c.next_action() == SessionDone("failed", "bearer lost")


# --- Package#0 ------------------------------------------------------------------------------------


def test_check_notification(dev):
    accounts = dev.accounts("dm2")
    acc = accounts[0]
    raw = build_notification(SID, secret=acc.noti_secret, auth_data=acc.noti_data, notification_id=9,
                             timestamp=1_000_000, req_mos=True)
    guard = NotificationGuard(60)
    ok = check_notification(raw, accounts, guard, 1_000_010)
    assert ok.accepted and ok.engine_options() == {"alert_type": "ServerInitiated", "notification_id": 9,
                                                   "req_mos": True}
    assert not check_notification(raw, accounts, guard, 1_000_011).accepted  # replay
    assert not check_notification(raw, acc, NotificationGuard(60), 1_000_500).accepted  # stale
    wrong = build_notification(SID, secret=b"guess", notification_id=10, timestamp=1_000_000)
    bad = check_notification(wrong, accounts, NotificationGuard(60), 1_000_010)
    assert not bad.accepted and "DIGEST" in bad.reason
    unsigned = build_notification(SID, secret=None, notification_id=11, timestamp=1_000_000)
    assert "DIGEST" in check_notification(unsigned, accounts, None, 1_000_010).reason
    stranger = build_notification("stranger", secret=b"x", notification_id=1, timestamp=1_000_000)
    assert "unknown server" in check_notification(stranger, accounts, None, 1_000_010).reason
    assert "malformed" in check_notification(b"\x10", accounts, None, 0).reason
    with pytest.raises(ValueError):
        bad.engine_options()


# --- respond (one package, no network) ------------------------------------------------------------


def test_respond_answers_one_package_without_http(dev):
    from emulator.protocol.dm2.respond import respond, respond_detail

    account = dev.account(protocol="dm2")
    package = json.dumps({"CMD": [
        ["GET", f"{DEVINFO}//FwV"], ["HGET", SERVER + "/repo/x"], ["DELETE", f"{T}/right/"],
        ["SHOW", SERVER + "/ui/wifi"], ["EXEC", f"{T}/left/ID"], ["DEFAULT", NEW, SERVER + "/d"],
        ["HPUT", SERVER + "/up", f"{T}/left/ID"], ["UNSUB", f"{T}/left/"],
    ]}).encode()
    result = respond_detail(dev.tree, account, package)
    statuses = json.loads(result.body)["Status"]
    assert [s["sc"] for s in statuses] == [200, 500, 200, 500, 405, 200, 500, 404]
    assert statuses[0]["MOS"][0]["MOData"] == {"FwV": "X5P-BL-2.14.07"}
    assert not dev.tree.exists("./DM2/ext-test/right")
    assert any("no HTTP" in n for n in result.notes)
    assert respond(dev.tree, account, b'{"CMD":[["END"]]}') == b""
    with pytest.raises(Exception) as e:
        respond(dev.tree, account, b"not json")
    assert e.value.status == 400
