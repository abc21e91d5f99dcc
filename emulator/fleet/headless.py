"""Who answers the user's part when no window is there: scripted form fills and alert answers.

``HeadlessUi`` is a :class:`~emulator.protocol.flow.UiAnswerer` without I/O of its own: its answers
are flows that yield their HTTP requests, so the asyncio and the blocking driver both run it.

- ``browse``: a real HTTP form flow, no browser. GET the page, read its first ``<form>`` with
  :mod:`html.parser`, fill it (the given ``fields`` first, else what the page pre-selects: default
  values, the selected or first option, the checked radio or the first, checked checkboxes), POST
  it (GET for ``method=get`` forms), follow redirects, and go on page after page until the URL is
  ``.../ui/done`` (project convention, PROTOCOL 1.19 item 5). A page without a form that is not the
  done page, an HTTP error, or more than ``max_steps`` pages end the flow with outcome
  ``failed`` and a reason (the page's own error message when it shows one).
- ``ask`` (DM 1.2 alerts 1100-1104) by ``policy``: ``accept`` confirms, enters the default
  response (DR) or ``fields["text"]``, picks the DR choices, ``fields["choice"]`` ("2" or "1,3")
  or the first; ``decline`` answers no (confirm) or cancels; ``cancel`` and ``timeout`` answer so.

Submit buttons: a field naming a button (``{"decision": "decline"}``) presses it; policy
``decline`` presses the first button that reads decline/cancel/no/reject; else the first button.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from emulator.protocol.actions import (
    UI_DONE_PATH,
    AskUser,
    HttpRequest,
    HttpResult,
    OpenBrowser,
    UserAnswer,
    header,
    is_ui_done,
)
from emulator.protocol.flow import Fetch, UiFlow, answered
from emulator.protocol.syncml.useralerts import parse_choices

POLICIES = ("accept", "decline", "cancel", "timeout")
_DECLINE = re.compile(r"\b(decline|cancel|no|reject|refuse)\b", re.IGNORECASE)
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass
class Control:
    tag: str  # input, select, textarea, button
    type: str
    name: str
    value: str = ""
    checked: bool = False
    disabled: bool = False
    label: str = ""  # button text
    options: list[tuple[str, bool]] = field(default_factory=list)  # (value, selected)


@dataclass
class Form:
    action: str
    method: str
    controls: list[Control] = field(default_factory=list)


class FormParser(HTMLParser):
    """The forms of a page and the text of its ``class="error"`` elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.errors: list[str] = []
        self._form: Form | None = None
        self._select: Control | None = None
        self._option: list[str] | None = None  # [value-or-None marker, text...]
        self._option_has_value = False
        self._option_selected = False
        self._text_target: Control | None = None  # textarea or button collecting text
        self._error_depth = 0
        self._error_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v if v is not None else "") for k, v in attrs}
        if self._error_depth:
            self._error_depth += 1
        elif "error" in a.get("class", "").split():
            self._error_depth = 1
            self._error_text = []
        if tag == "form":
            self._form = Form(a.get("action", ""), a.get("method", "get").lower() or "get")
            self.forms.append(self._form)
            return
        if self._form is None:
            return
        disabled = "disabled" in a
        if tag == "input":
            kind = a.get("type", "text").lower() or "text"
            default = "on" if kind in ("checkbox", "radio") else ""
            self._form.controls.append(Control("input", kind, a.get("name", ""), a.get("value", default),
                                               "checked" in a, disabled))
        elif tag == "select":
            self._select = Control("select", "select", a.get("name", ""), disabled=disabled)
            self._form.controls.append(self._select)
        elif tag == "option" and self._select is not None:
            self._close_option()
            self._option = [a["value"]] if "value" in a else [""]
            self._option_has_value = "value" in a
            self._option_selected = "selected" in a
        elif tag == "textarea":
            self._text_target = Control("textarea", "textarea", a.get("name", ""), disabled=disabled)
            self._form.controls.append(self._text_target)
        elif tag == "button":
            self._text_target = Control("button", a.get("type", "submit").lower() or "submit", a.get("name", ""),
                                        a.get("value", ""), disabled=disabled)
            self._form.controls.append(self._text_target)

    def handle_endtag(self, tag: str) -> None:
        if self._error_depth:
            self._error_depth -= 1
            if not self._error_depth:
                text = " ".join("".join(self._error_text).split())
                if text:
                    self.errors.append(text)
        if tag == "form":
            self._form = None
        elif tag == "option":
            self._close_option()
        elif tag == "select":
            self._close_option()
            self._select = None
        elif tag in ("textarea", "button"):
            self._text_target = None

    def handle_data(self, data: str) -> None:
        if self._error_depth:
            self._error_text.append(data)
        if self._option is not None:
            self._option.append(data)
        elif self._text_target is not None:
            if self._text_target.tag == "textarea":
                self._text_target.value += data
            else:
                self._text_target.label += data

    def _close_option(self) -> None:
        if self._option is None or self._select is None:
            self._option = None
            return
        value = self._option[0] if self._option_has_value else " ".join("".join(self._option[1:]).split())
        self._select.options.append((value, self._option_selected))
        self._option = None


def parse_forms(html: str) -> tuple[list[Form], list[str]]:
    parser = FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms, parser.errors


def fill_form(form: Form, fields: dict[str, str], policy: str = "accept") -> list[tuple[str, str]]:
    """The name/value pairs a user accepting the page (or giving ``fields``) would submit."""
    pairs: list[tuple[str, str]] = []
    radios_done: set[str] = set()
    controls = [c for c in form.controls if c.name and not c.disabled]
    for c in controls:
        if c.tag == "button" or c.type in ("submit", "image", "button", "reset"):
            continue
        if c.type == "checkbox":
            wanted = fields.get(c.name)
            on = c.checked if wanted is None else wanted.lower() not in ("", "0", "false", "off", "no")
            if on:
                pairs.append((c.name, c.value))
        elif c.type == "radio":
            if c.name in radios_done:
                continue
            radios_done.add(c.name)
            group = [r for r in controls if r.type == "radio" and r.name == c.name]
            values = [r.value for r in group]
            wanted = fields.get(c.name)
            chosen = wanted if wanted in values else next((r.value for r in group if r.checked), values[0])
            pairs.append((c.name, chosen))
        elif c.tag == "select":
            values = [v for v, _ in c.options]
            wanted = fields.get(c.name)
            if wanted in values:
                pairs.append((c.name, wanted))
            elif values:
                pairs.append((c.name, next((v for v, sel in c.options if sel), values[0])))
        else:
            pairs.append((c.name, fields.get(c.name, c.value)))
    button = _pick_button(controls, fields, policy)
    if button is not None and button.name:
        pairs.append((button.name, button.value))
    return pairs


def _pick_button(controls: list[Control], fields: dict[str, str], policy: str) -> Control | None:
    buttons = [c for c in controls if c.type in ("submit", "image")]
    buttons += [c for c in controls if c.tag == "button" and c.type == "submit" and c not in buttons]
    if not buttons:
        return None
    for b in buttons:
        if b.name in fields and fields[b.name] == b.value:
            return b
    if policy == "decline":
        for b in buttons:
            if _DECLINE.search(f"{b.value} {b.label}"):
                return b
    return buttons[0]


class HeadlessUi:
    """The session driver's UiHandler without a screen (see module doc)."""

    def __init__(self, fields: dict[str, str] | None = None, policy: str = "accept", *, max_steps: int = 20) -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}")
        self.fields = dict(fields or {})
        self.policy = policy
        self.max_steps = max_steps
        self.visited: list[str] = []  # every URL loaded, in order (for tests and reports)

    # ------------------------------------------------------------------ DM 1.2 alerts

    def ask(self, session: object, action: AskUser) -> UiFlow:
        return answered(self.answer(action))

    def answer(self, action: AskUser) -> UserAnswer:
        """The answer to an alert: it needs nothing from outside."""
        if self.policy in ("cancel", "timeout"):
            return UserAnswer("cancelled" if self.policy == "cancel" else "timeout")
        if action.kind == "display":
            return UserAnswer("ok")
        if action.kind == "confirm":
            return UserAnswer("ok" if self.policy == "accept" else "no")
        if self.policy == "decline":
            return UserAnswer("cancelled")
        default = action.options.get("DR", "")
        if action.kind == "text":
            return UserAnswer("ok", text=self.fields.get("text", default))
        count = len(action.choices)
        chosen = parse_choices(self.fields.get("choice", ""), count) or parse_choices(default, count)
        if not chosen and count:
            chosen = (1,)
        if action.kind == "single":
            chosen = chosen[:1]
        return UserAnswer("ok", selected=chosen)

    # ------------------------------------------------------------------ web pages

    def browse(self, session: object, action: OpenBrowser) -> UiFlow:
        url, method, body = action.url, "GET", b""
        headers: dict[str, str] = {}
        last_errors: list[str] = []
        for page in range(self.max_steps):
            self.visited.append(url)
            result: HttpResult = (yield Fetch(HttpRequest(f"{action.request_id}.{page}", method, url, body,
                                                          headers))).value
            if result.status == 0:
                return UserAnswer("failed", text=f"{method} {url}: {result.error or 'no answer'}")
            if result.status in _REDIRECTS:
                location = header(result.headers, "location")
                if not location:
                    return UserAnswer("failed", text=f"{url} redirected without a Location")
                url = urljoin(url, location)
                if result.status == 303 or (result.status in (301, 302) and method == "POST"):
                    method, body, headers = "GET", b"", {}
                continue
            if result.status >= 400:
                return UserAnswer("failed", text=f"{method} {url} answered HTTP {result.status}")
            if is_ui_done(url):
                return UserAnswer("ok", text=url)
            forms, errors = parse_forms(result.body.decode("utf-8", "replace"))
            if errors and errors == last_errors:
                return UserAnswer("failed", text=f"the page at {url} keeps refusing the answers: {errors[0]}")
            last_errors = errors
            if not forms:
                return UserAnswer("failed", text=f"the page at {url} has no form and is not {UI_DONE_PATH}")
            form = forms[0]
            pairs = fill_form(form, self.fields, self.policy)
            target = urljoin(url, form.action) if form.action else url
            if form.method == "post":
                method, body = "POST", urlencode(pairs).encode("ascii")
                headers = {"Content-Type": "application/x-www-form-urlencoded"}
                url = target
            else:
                parts = urlsplit(target)
                url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(pairs), ""))
                method, body, headers = "GET", b"", {}
        return UserAnswer("failed", text=f"no {UI_DONE_PATH} page after {self.max_steps} pages (last: {url})")


