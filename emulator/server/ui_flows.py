"""The reference server's web UI flows (the "Web Server Component" of PROTOCOL 1.18).

A DM 2.0 SHOW sends the device's browser to ``/ui/<flow>?s=<token>``; the pages are real HTML
forms (layout and CSS in ``assets/web/``), one POST per page, and the last POST redirects to
``/ui/done`` (project convention: a browser component closes the view there). Submitting the last
page sets the UI session's ``done`` event, which releases the held DM answer (1.19 item 5) with the
commands the flow's ``result`` builds from the answers. Flows:

- ``wifi``: two-page Wi-Fi set-up wizard (network name + security, then passphrase; the second page
  is skipped for an open network) -> HGET of a WLAN MO built from the answers;
- ``terms``: accept the terms of a firmware update -> HGET of a firmware-update MO, or END when the
  user declines (the rest of the script is dropped: no update);
- ``fumo``: a firmware campaign's consent page (DM 2.0 side of ``consent``, :mod:`emulator.server.campaigns`):
  accepting sends the campaign's HGETs and EXEC, declining ends the session (the device's run: 401);
- ``plan``: choose a data plan -> HGET of a data-plan MO, replacing the device's plan instance when
  the server knows one (Replace-like HGET with a ClientURI), else creating it.

Answers are plain strings. Pages that fail validation are shown again with the error.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template

from aiohttp import web

from emulator.protocol.actions import UI_DONE_PATH
from emulator.protocol.dm2.moser import MOSerialization
from emulator.server.routes import repo_url
from emulator.server.state import STATE_KEY, ServerState, UiSession, base_url, repo_path

ASSET_DIR = Path(__file__).resolve().parents[2] / "assets" / "web"

WLAN_MOID = "urn:oma:mo:ext-dmemulator-wlan:1.0"
FWUPDATE_MOID = "urn:oma:mo:ext-dmemulator-fwupdate:1.0"
DATAPLAN_MOID = "urn:oma:mo:ext-dmemulator-dataplan:1.0"
BOOKMARK_MOID = "urn:oma:mo:ext-dmemulator-bookmark:1.0"
FIRMWARE_VERSION = "X5P-BL-2.15.01"

Answers = dict[str, str]
Commands = list[list[str]]


@dataclass(frozen=True)
class Field:
    """One form control. ``kind``: text, password, select, radio or checkbox (value "yes")."""

    name: str
    label: str
    kind: str = "text"
    default: str = ""
    options: tuple[tuple[str, str], ...] = ()  # (value, label)
    hint: str = ""


@dataclass(frozen=True)
class Page:
    title: str
    fields: tuple[Field, ...] = ()
    intro: str = ""  # trusted HTML of ours
    buttons: tuple[tuple[str, str, str], ...] = (("action", "next", "Next"),)  # (name, value, label)
    validate: Callable[[Answers], str | None] | None = None
    when: Callable[[Answers], bool] | None = None


@dataclass(frozen=True)
class Flow:
    """A UI flow; ``result`` turns the answers into the next Package#2 (and repository items);
    ``exec_uri`` is the node (relative to the created instance) the demo script executes after it."""

    name: str
    title: str
    pages: tuple[Page, ...]
    result: Callable[[UiSession, ServerState], Commands]
    done_message: Callable[[Answers], str]
    moid: str
    exec_uri: str


# --- flows ----------------------------------------------------------------------------------------


def _known_instance(state: ServerState, dev_id: str, moid: str) -> str | None:
    known = state.device(dev_id).instances.get(moid) if dev_id else None
    return known[-1] if known else None


def _hget(ui: UiSession, state: ServerState, name: str, item: MOSerialization, *, replace: bool = False) -> Commands:
    key = repo_path(ui.dev_id or "anonymous", f"{name}-{ui.token}")
    state.put_repo(key, [item])
    command = ["HGET", repo_url(ui.base, key)]
    target = _known_instance(state, ui.dev_id, item.client_uri.split("/", 1)[0]) if replace else None
    return [command + [target]] if target else [command]


def _wifi_result(ui: UiSession, state: ServerState) -> Commands:
    a = ui.answers
    data = {"SSID": a.get("ssid", ""), "Security": a.get("security", "open"),
            "Passphrase": a.get("password", "") if a.get("security") != "open" else "",
            "AutoConnect": True, "Ops": {"Connect": None}}
    return _hget(ui, state, "wlan", MOSerialization(f"{WLAN_MOID}//", {"WLAN": data}))


def _check_ssid(a: Answers) -> str | None:
    ssid = a.get("ssid", "").strip()
    if not 1 <= len(ssid.encode("utf-8")) <= 32:
        return "The network name must have 1 to 32 characters."
    return None


def _check_password(a: Answers) -> str | None:
    if not 8 <= len(a.get("password", "")) <= 63:
        return "The passphrase must have 8 to 63 characters."
    return None


WIFI = Flow(
    name="wifi",
    title="Wi-Fi set-up",
    pages=(
        Page(
            "Join a Wi-Fi network",
            fields=(
                Field("ssid", "Network name (SSID)", default="Nordwave-Home"),
                Field("security", "Security", "select", default="wpa2",
                      options=(("wpa2", "WPA2 Personal"), ("wpa3", "WPA3 Personal"), ("open", "Open (no password)"))),
            ),
            intro="<p>Your operator can set up your home Wi-Fi for you. Which network should the device join?</p>",
            validate=_check_ssid,
        ),
        Page(
            "Wi-Fi passphrase",
            fields=(Field("password", "Passphrase", "password", default="change-me-2024",
                          hint="A suggested passphrase is filled in; replace it with your network's."),),
            buttons=(("action", "finish", "Set up Wi-Fi"),),
            validate=_check_password,
            when=lambda a: a.get("security") != "open",
        ),
    ),
    result=_wifi_result,
    done_message=lambda a: f"Your device will join “{a.get('ssid', '')}”.",
    moid=WLAN_MOID,
    exec_uri="Ops/Connect",
)


def _terms_result(ui: UiSession, state: ServerState) -> Commands:
    if ui.answers.get("decision") != "accept":
        return [["END"]]
    data = {"PkgName": "Nordwave system update", "PkgVersion": FIRMWARE_VERSION,
            "PkgURL": f"{ui.base}/repo/firmware/{FIRMWARE_VERSION}.bin", "State": "accepted",
            "Ops": {"Update": None}}
    return _hget(ui, state, "fwupdate", MOSerialization(f"{FWUPDATE_MOID}//", {"FwUpdate": data}))


TERMS = Flow(
    name="terms",
    title="Firmware update terms",
    pages=(
        Page(
            "Firmware update",
            intro="$terms",
            buttons=(("decision", "accept", "Accept and update"), ("decision", "decline", "Decline")),
        ),
    ),
    result=_terms_result,
    done_message=lambda a: "The update will be installed." if a.get("decision") == "accept"
    else "No update will be installed.",
    moid=FWUPDATE_MOID,
    exec_uri="Ops/Update",
)

def _fumo_result(ui: UiSession, state: ServerState) -> Commands:
    return state.campaigns.consent_given(state, ui.dev_id, ui.answers.get("decision") == "accept", ui.base)


FUMO_CONSENT = Flow(
    name="fumo",
    title="Firmware update",
    pages=(
        Page(
            "Firmware update",
            intro="$terms",
            buttons=(("decision", "accept", "Install now"), ("decision", "decline", "Not now")),
        ),
    ),
    result=_fumo_result,
    done_message=lambda a: "The update will be installed." if a.get("decision") == "accept"
    else "No update will be installed.",
    moid="urn:oma:mo:oma-fumo:1.0",
    exec_uri="DownloadAndUpdate",
)

PLANS = {
    "basic-5gb": ("Basic 5 GB", 5120, False),
    "plus-20gb": ("Plus 20 GB with EU roaming", 20480, True),
    "unlimited": ("Unlimited", 0, True),
}


def _plan_result(ui: UiSession, state: ServerState) -> Commands:
    plan = ui.answers.get("plan", "basic-5gb")
    name, quota, roaming = PLANS.get(plan, PLANS["basic-5gb"])
    data = {"PlanID": plan, "Name": name, "QuotaMB": quota, "Roaming": roaming, "Ops": {"Activate": None}}
    return _hget(ui, state, "dataplan", MOSerialization(f"{DATAPLAN_MOID}//", {"DataPlan": data}), replace=True)


PLAN = Flow(
    name="plan",
    title="Data plan",
    pages=(
        Page(
            "Choose your data plan",
            fields=(Field("plan", "Plan", "radio", default="basic-5gb",
                          options=tuple((k, v[0]) for k, v in PLANS.items())),),
            intro="<p>Pick the plan for this device. You can change it every month.</p>",
            buttons=(("action", "choose", "Choose plan"),),
        ),
    ),
    result=_plan_result,
    done_message=lambda a: f"Your plan is now “{PLANS.get(a.get('plan', ''), ('?',))[0]}”.",
    moid=DATAPLAN_MOID,
    exec_uri="Ops/Activate",
)

FLOWS: dict[str, Flow] = {f.name: f for f in (WIFI, TERMS, PLAN, FUMO_CONSENT)}


# --- UI sessions ----------------------------------------------------------------------------------


def open_ui(state: ServerState, flow: str, dev_id: str, base: str) -> UiSession:
    """A new UI session of ``flow`` for ``dev_id`` (KeyError for an unknown flow)."""
    if flow not in FLOWS:
        raise KeyError(flow)
    ui = UiSession(secrets.token_urlsafe(9), flow, dev_id, base)
    state.ui_sessions[ui.token] = ui
    if dev_id:
        state.device(dev_id).ui.append(ui)
    return ui


def ui_url(ui: UiSession) -> str:
    return f"{ui.base}/ui/{ui.flow}?s={ui.token}"


def flow_result(state: ServerState, ui: UiSession) -> Commands:
    """The commands that follow a finished (or abandoned) UI session."""
    if ui.outcome != "submitted":
        return []
    return FLOWS[ui.flow].result(ui, state)


# --- rendering ------------------------------------------------------------------------------------


def _template(name: str) -> Template:
    return Template((ASSET_DIR / name).read_text(encoding="utf-8"))


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _field_html(f: Field, value: str) -> str:
    hint = f'<p class="hint">{_e(f.hint)}</p>' if f.hint else ""
    if f.kind in ("text", "password"):
        return (f'<label for="{_e(f.name)}">{_e(f.label)}</label>'
                f'<input type="{f.kind}" id="{_e(f.name)}" name="{_e(f.name)}" value="{_e(value)}" required>{hint}')
    if f.kind == "select":
        options = "".join(
            f'<option value="{_e(v)}"{" selected" if v == value else ""}>{_e(label)}</option>' for v, label in f.options
        )
        return f'<label for="{_e(f.name)}">{_e(f.label)}</label><select id="{_e(f.name)}" name="{_e(f.name)}">{options}</select>{hint}'
    if f.kind == "radio":
        options = "".join(
            f'<label class="inline"><input type="radio" name="{_e(f.name)}" value="{_e(v)}"'
            f'{" checked" if v == value else ""}> {_e(label)}</label>' for v, label in f.options
        )
        return f"<fieldset><legend>{_e(f.label)}</legend>{options}</fieldset>{hint}"
    checked = " checked" if value == "yes" else ""
    return f'<label class="inline"><input type="checkbox" name="{_e(f.name)}" value="yes"{checked}> {_e(f.label)}</label>{hint}'


def _pages(flow: Flow, answers: Answers) -> list[int]:
    return [i for i, p in enumerate(flow.pages) if p.when is None or p.when(answers)]


def render_page(flow: Flow, index: int, ui: UiSession, error: str = "") -> str:
    page = flow.pages[index]
    shown = _pages(flow, ui.answers)
    number = shown.index(index) + 1 if index in shown else index + 1
    fields = "".join(_field_html(f, ui.answers.get(f.name, f.default)) for f in page.fields)
    buttons = "".join(
        f'<button type="submit" name="{_e(n)}" value="{_e(v)}"{"" if i == 0 else " class=secondary"}>{_e(label)}</button>'
        for i, (n, v, label) in enumerate(page.buttons)
    )
    intro = page.intro
    if intro == "$terms":
        intro = _template("terms.html").safe_substitute(version=_e(FIRMWARE_VERSION))
    body = _template("form.html").safe_substitute(
        intro=intro, error=f'<p class="error">{_e(error)}</p>' if error else "",
        action=_e(f"/ui/{flow.name}/{index}?s={ui.token}"), fields=fields, buttons=buttons,
    )
    return _layout(page.title, f"Step {number} of {len(shown)}", body)


def _layout(title: str, step: str, body: str) -> str:
    return _template("layout.html").safe_substitute(title=_e(title), step=_e(step), body=body)


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


# --- routes ---------------------------------------------------------------------------------------


def _session(request: web.Request, flow: Flow) -> UiSession:
    state = request.app[STATE_KEY]
    ui = state.ui_sessions.get(request.query.get("s", ""))
    if ui is None or ui.flow != flow.name:
        raise web.HTTPNotFound(text="This page has expired or does not exist.")
    return ui


def _flow(request: web.Request) -> Flow:
    flow = FLOWS.get(request.match_info["flow"])
    if flow is None:
        raise web.HTTPNotFound(text=f"No UI flow {request.match_info['flow']!r}.")
    return flow


def _index_of(request: web.Request, flow: Flow, ui: UiSession) -> int:
    try:
        index = int(request.match_info["page"])
    except ValueError:
        raise web.HTTPNotFound(text="No such page.") from None
    if index not in _pages(flow, ui.answers):
        raise web.HTTPNotFound(text="No such page.")
    return index


async def index(request: web.Request) -> web.Response:
    flows = "".join(f'<li><a href="/ui/{f.name}">{_e(f.title)}</a></li>' for f in FLOWS.values())
    return _html(_layout("Device web pages", "", _template("index.html").safe_substitute(flows=flows)))


async def done(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    ui = state.ui_sessions.get(request.query.get("s", ""))
    message = FLOWS[ui.flow].done_message(ui.answers) if ui is not None and ui.outcome == "submitted" else "Done."
    return _html(_layout("All set", "", _template("done.html").safe_substitute(message=_e(message))))


async def start(request: web.Request) -> web.Response:
    flow = _flow(request)
    state = request.app[STATE_KEY]
    if "s" not in request.query:  # opened by hand (index page): a session tied to no device
        ui = open_ui(state, flow.name, "", base_url(request))
        raise web.HTTPSeeOther(f"/ui/{flow.name}?s={ui.token}")
    ui = _session(request, flow)
    if ui.outcome:
        raise web.HTTPSeeOther(f"{UI_DONE_PATH}?s={ui.token}")
    return _html(render_page(flow, _pages(flow, ui.answers)[0], ui))


async def page_get(request: web.Request) -> web.Response:
    flow = _flow(request)
    ui = _session(request, flow)
    if ui.outcome:
        raise web.HTTPSeeOther(f"{UI_DONE_PATH}?s={ui.token}")
    return _html(render_page(flow, _index_of(request, flow, ui), ui))


async def page_post(request: web.Request) -> web.Response:
    flow = _flow(request)
    ui = _session(request, flow)
    if ui.outcome:
        raise web.HTTPSeeOther(f"{UI_DONE_PATH}?s={ui.token}")
    index = _index_of(request, flow, ui)
    page = flow.pages[index]
    form = await request.post()
    for f in page.fields:
        value = form.get(f.name)
        if f.kind == "checkbox":
            ui.answers[f.name] = "yes" if value == "yes" else ""
        elif isinstance(value, str):
            ui.answers[f.name] = value.strip() if f.kind != "password" else value
        elif f.kind in ("select", "radio") and f.name not in ui.answers:
            ui.answers[f.name] = f.default
        allowed = {v for v, _ in f.options}
        if allowed and ui.answers.get(f.name) not in allowed:
            return _html(render_page(flow, index, ui, f"Please choose one of the offered {f.label.lower()} options."))
    pressed = [(n, v) for n, v, _ in page.buttons if form.get(n) == v]
    # no button in the form data (a script's form.submit(), Enter in some browsers): the default,
    # i.e. first, button of the page
    name, value = pressed[0] if pressed else page.buttons[0][:2]
    ui.answers[name] = value
    error = page.validate(ui.answers) if page.validate else None
    if error:
        return _html(render_page(flow, index, ui, error))
    following = [i for i in _pages(flow, ui.answers) if i > index]
    if following:
        raise web.HTTPSeeOther(f"/ui/{flow.name}/{following[0]}?s={ui.token}")
    ui.outcome = "submitted"
    ui.done.set()
    raise web.HTTPSeeOther(f"{UI_DONE_PATH}?s={ui.token}")


def setup_ui(app: web.Application) -> None:
    """Mount the flows, the done page and the stylesheet under ``/ui/``."""
    app.router.add_static("/ui/static", ASSET_DIR)
    app.router.add_get("/ui/", index)
    app.router.add_get("/ui", index)
    app.router.add_get(UI_DONE_PATH, done)
    app.router.add_get("/ui/{flow}", start)
    app.router.add_get("/ui/{flow}/{page}", page_get)
    app.router.add_post("/ui/{flow}/{page}", page_post)
