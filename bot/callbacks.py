"""Callback-data prefixes of inline buttons, and a parser that trusts nothing.

Telegram returns whatever data a button carried, and anyone can forge it: a parsed
callback only says what the citizen asked for. Every id in it is checked again by the
service that acts on it (is the slot offered? is the booking theirs?).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

MAX_CALLBACK_BYTES = 64
_ARG_RE = re.compile(r"^[A-Za-z0-9_\-]{1,40}$")


class Cb(StrEnum):
    LANGUAGE = "lang"  # lang:<code>              choose the language before consent
    CONSENT = "consent"  # consent:<yes|no>:<lang>
    ANSWER = "ans"  # ans:<step>:<option>
    TOGGLE = "tog"  # tog:<step>:<mask>:<option>  multi-choice toggle
    DONE = "done"  # done:<step>:<mask>
    SKIP = "skip"  # skip:<step>
    BACK = "back"  # back
    CONFIRM = "ok"  # ok                          confirm the summary
    CHANGE = "chg"  # chg | chg:<step>
    RESTART = "restart"  # restart
    HELPDESK = "hd"  # hd:<helpdesk>
    DAY = "day"  # day:<helpdesk>:<yyyymmdd>
    TIME = "tm"  # tm:<helpdesk>:<epoch>
    BOOK = "bk"  # bk:<helpdesk>:<epoch>
    MY_BOOKING = "my"  # my
    MOVE = "mv"  # mv:<booking>
    CANCEL = "cx"  # cx:<booking>
    CANCEL_CONFIRM = "cxok"  # cxok:<booking>
    ATTENDING = "here"  # here:<booking>
    WAITLIST_JOIN = "wl"  # wl
    OFFER_ACCEPT = "oa"  # oa:<entry>
    OFFER_DECLINE = "od"  # od:<entry>
    ERASE_CONFIRM = "erase"  # erase
    NOOP = "noop"  # noop
    DAYS = "days"  # days:<helpdesk>:<page>[:<booking>]  more days to choose from
    HELPDESKS = "hds"  # hds[:<booking>]              choose a helpdesk (start booking)
    SUMMARY = "sum"  # sum                         show the questionnaire summary again
    PLAN_READ = "pr"  # pr:<plan>:<version>:<hash>  "I've read it" under the plan's summary
    NOTICE = "notice"  # notice:<lang>              the whole privacy notice, in that language
    RENEW = "renew"  # renew:<yes|no>               accept a new version of the notice, or not
    MY_DATA = "mydata"  # mydata                    send me a copy of my data


@dataclass(frozen=True)
class Callback:
    kind: Cb
    args: tuple[str, ...]

    def int_arg(self, index: int) -> int | None:
        """The argument as an integer, or None if missing or not one."""
        if index >= len(self.args) or not self.args[index].isdigit():
            return None
        return int(self.args[index])


def encode(kind: Cb, *args: object) -> str:
    data = ":".join([kind.value, *(str(a) for a in args)])
    if len(data.encode()) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data too long: {data!r}")
    return data


def parse(data: str | None) -> Callback | None:
    """The callback, or None if the data is not one of ours."""
    if not data or len(data.encode()) > MAX_CALLBACK_BYTES:
        return None
    head, *args = data.split(":")
    try:
        kind = Cb(head)
    except ValueError:
        return None
    if not all(_ARG_RE.match(arg) for arg in args):
        return None
    return Callback(kind, tuple(args))
