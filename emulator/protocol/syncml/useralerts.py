"""DM 1.2 user-interaction alerts 1100-1104 (PROTOCOL.md 2.6): question in, status and items out.

The engine turns a server's UI Alert into an :class:`AskUser` for whoever answers (a window, a
scenario, a headless policy) and the :class:`UserAnswer` back into the Alert's Status. Kept apart
from the engine so the reference server, the `respond` command and tests read options the same way.

Interpretations (the 1.2.1 text leaves them open):

- Options are URL-encoded `name=value&...`; values are decoded as in HTML forms (`+` is a space), so
  the AOSP vector's `DR=hello+andy!` means "hello andy!". Names are matched case-insensitively and kept
  upper-case; a piece without `=` is skipped (the spec says: skip what you cannot process).
- Multiple-choice `DR` lists choice numbers separated by `-` (the spec's `DR=2-3`); `,` is accepted
  too, so the AOSP vector's `DR=1-3,6` selects 1, 3 and 6. Numbers outside 1..n are dropped.
- A UI Alert needs the option Item and the text Item; choice alerts at least one choice: fewer is 412.
- "no" is 304 for a confirmation; for any other kind it can only mean "cancel" (214).
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from emulator.protocol.actions import AskUser, UserAnswer
from emulator.protocol.syncml import codes
from emulator.protocol.syncml.commands import Alert, Item
from emulator.protocol.values import AskKind

KINDS: dict[int, AskKind] = {
    codes.ALERT_DISPLAY: "display",
    codes.ALERT_CONFIRM_OR_REJECT: "confirm",
    codes.ALERT_TEXT_INPUT: "text",
    codes.ALERT_SINGLE_CHOICE: "single",
    codes.ALERT_MULTIPLE_CHOICE: "multiple",
}


def parse_options(text: str) -> dict[str, str]:
    """`MAXDT=15&DR=1` -> {'MAXDT': '15', 'DR': '1'}; malformed pieces are skipped, never an error."""
    options: dict[str, str] = {}
    for piece in text.split("&"):
        name, sep, value = piece.partition("=")
        name = name.strip().upper()
        if sep and name:
            options[name] = unquote_plus(value.strip())
    return options


def _text(item: Item) -> str:
    data = item.data
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data or ""


def question(alert: Alert, request_id: str) -> AskUser | int:
    """The AskUser for a UI alert, or the status to answer at once when the alert is malformed."""
    kind = KINDS.get(alert.code)
    if kind is None:
        return codes.OPTIONAL_FEATURE_NOT_SUPPORTED
    if len(alert.items) < 2:
        return codes.INCOMPLETE_COMMAND
    choices = tuple(_text(i) for i in alert.items[2:])
    if kind in ("single", "multiple") and not choices:
        return codes.INCOMPLETE_COMMAND
    return AskUser(request_id, kind, _text(alert.items[1]), choices, parse_options(_text(alert.items[0])))


def parse_choices(text: str, count: int) -> tuple[int, ...]:
    """Choice numbers from a DR value (`2`, `2-3`, `1-3,6`), in order, without duplicates or strays."""
    out: list[int] = []
    for part in text.replace(",", "-").split("-"):
        part = part.strip()
        if part.isdigit() and 1 <= int(part) <= count and int(part) not in out:
            out.append(int(part))
    return tuple(out)


def answer_status(ask: AskUser, answer: UserAnswer) -> tuple[int, list[Item]]:
    """The Alert's Status code and result Items for an answer (PROTOCOL.md 2.6)."""
    outcome = answer.outcome
    if outcome == "timeout":
        return codes.REQUEST_TIMEOUT, []
    if outcome == "cancelled":
        return codes.OPERATION_CANCELLED, []
    if outcome == "no":
        return (codes.NOT_MODIFIED if ask.kind == "confirm" else codes.OPERATION_CANCELLED), []
    if outcome != "ok":
        return codes.REQUESTED_SIZE_TOO_BIG, []  # 416: the widget could not be shown
    if ask.kind == "text":
        text = answer.text
        limit = ask.options.get("MAXLEN", "")
        if limit.isdigit():
            text = text[: int(limit)]
        return codes.OK, [Item(data=text)]
    if ask.kind in ("single", "multiple"):
        chosen = [n for n in answer.selected if 1 <= n <= len(ask.choices)]
        if ask.kind == "single":
            chosen = chosen[:1]
        if not chosen:
            return codes.OPERATION_CANCELLED, []  # nothing chosen is not an answer to a choice
        return codes.OK, [Item(data=str(n)) for n in chosen]
    return codes.OK, []


def default_answer(ask: AskUser) -> UserAnswer:
    """Headless policy: the alert's DR default when it gives one, else "yes"/accept.

    Without DR: display is acknowledged, confirm is yes, text input is empty, a choice takes the
    first entry. A confirm DR of 0 is "no". This is what `dm-emulator respond` and headless runs answer.
    """
    default = ask.options.get("DR")
    if ask.kind == "confirm":
        return UserAnswer("no" if default == "0" else "ok")
    if ask.kind == "text":
        return UserAnswer("ok", text=default or "")
    if ask.kind in ("single", "multiple"):
        picked = parse_choices(default or "", len(ask.choices)) or (1,)
        return UserAnswer("ok", selected=picked[:1] if ask.kind == "single" else picked)
    return UserAnswer("ok")
