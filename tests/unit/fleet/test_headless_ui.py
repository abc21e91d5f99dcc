"""The headless UI: reading HTML forms, filling them like a user who accepts the defaults (or
types given values), and answering DM 1.2 alerts by policy."""

from __future__ import annotations

import pytest

from emulator.fleet.headless import HeadlessUi, fill_form, parse_forms
from emulator.protocol.actions import AskUser, is_ui_done

PAGE = """<html><body><p class="error">Too <b>short</b>.</p>
<form method="post" action="/ui/wifi/0?s=t">
  <input type="text" name="ssid" value="Home">
  <input type="password" name="pw">
  <input type="hidden" name="token" value="abc">
  <select name="sec"><option value="wpa2">WPA2</option><option value="wpa3" selected>WPA3</option></select>
  <select name="band"><option>2.4 GHz</option><option>5 GHz</option></select>
  <input type="radio" name="plan" value="a"><input type="radio" name="plan" value="b" checked>
  <input type="checkbox" name="auto" value="yes" checked><input type="checkbox" name="news">
  <input type="text" name="off" value="x" disabled>
  <textarea name="note">hello</textarea>
  <button type="submit" name="decision" value="accept">Accept and update</button>
  <button type="submit" name="decision" value="decline">Decline</button>
</form></body></html>"""


def _answer(coro):
    """The answer of a UI flow that needs nothing from a driver (``ask`` yields no step)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("ask() suspended: it should answer at once")


def test_parse_reads_controls_and_error_text():
    forms, errors = parse_forms(PAGE)
    assert errors == ["Too short."]
    (form,) = forms
    assert (form.method, form.action) == ("post", "/ui/wifi/0?s=t")
    band = next(c for c in form.controls if c.name == "band")
    assert band.options == [("2.4 GHz", False), ("5 GHz", False)]  # no value attribute: the text


def test_defaults_are_what_the_page_preselects():
    (form,), _ = parse_forms(PAGE)
    assert fill_form(form, {}) == [
        ("ssid", "Home"), ("pw", ""), ("token", "abc"), ("sec", "wpa3"), ("band", "2.4 GHz"), ("plan", "b"),
        ("auto", "yes"), ("note", "hello"), ("decision", "accept"),
    ]


def test_fields_override_and_press_buttons_and_policy_declines():
    (form,), _ = parse_forms(PAGE)
    pairs = dict(fill_form(form, {"pw": "secret", "sec": "wpa2", "band": "5 GHz", "plan": "a", "auto": "no",
                                  "news": "yes", "sec2": "ignored", "decision": "decline"}))
    assert pairs["pw"] == "secret" and pairs["sec"] == "wpa2" and pairs["band"] == "5 GHz"
    assert pairs["plan"] == "a" and "auto" not in pairs and pairs["news"] == "on"
    assert pairs["decision"] == "decline" and "off" not in pairs
    assert dict(fill_form(form, {"sec": "not-an-option"}))["sec"] == "wpa3"  # unknown values are not sent
    assert dict(fill_form(form, {}, "decline"))["decision"] == "decline"


def test_done_page_convention():
    assert is_ui_done("http://h:1/ui/done?s=x") and is_ui_done("http://h/x/ui/done/")
    assert not is_ui_done("http://h/ui/wifi?next=/ui/done")


@pytest.mark.parametrize(
    ("policy", "action", "outcome", "selected", "text"),
    [
        ("accept", AskUser("1", "confirm", "Go?"), "ok", (), ""),
        ("decline", AskUser("1", "confirm", "Go?"), "no", (), ""),
        ("accept", AskUser("1", "display", "Hi"), "ok", (), ""),
        ("accept", AskUser("1", "text", "Name?", options={"DR": "Bob"}), "ok", (), "Bob"),
        ("accept", AskUser("1", "single", "Pick", ("a", "b", "c"), {"DR": "2"}), "ok", (2,), ""),
        ("accept", AskUser("1", "multiple", "Pick", ("a", "b", "c"), {"DR": "1-3"}), "ok", (1, 3), ""),
        ("accept", AskUser("1", "single", "Pick", ("a", "b")), "ok", (1,), ""),
        ("decline", AskUser("1", "single", "Pick", ("a", "b")), "cancelled", (), ""),
        ("cancel", AskUser("1", "confirm", "Go?"), "cancelled", (), ""),
        ("timeout", AskUser("1", "confirm", "Go?"), "timeout", (), ""),
    ],
)
def test_alert_answers_by_policy(policy, action, outcome, selected, text):
    answer = _answer(HeadlessUi(policy=policy).ask(None, action))
    assert (answer.outcome, answer.selected, answer.text) == (outcome, selected, text)


def test_alert_answers_from_fields_and_bad_policy():
    ui = HeadlessUi({"text": "typed", "choice": "3"})
    assert _answer(ui.ask(None, AskUser("1", "text", "?", options={"DR": "x"}))).text == "typed"
    assert _answer(ui.ask(None, AskUser("1", "single", "?", ("a", "b", "c")))).selected == (3,)
    with pytest.raises(ValueError):
        HeadlessUi(policy="maybe")
