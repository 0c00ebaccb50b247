"""Pages of forms: the notice a redirect names, the form's values and errors, the 303.

After a POST the route redirects (303) to a page with `notice=key` in its query string;
that page looks the key up in its own notices and shows it above its forms.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from dashboard.templating import render

# (alert kind, msgid): ("success", N_("Fund saved.")).
Notice = tuple[str, str]


def with_notice(url: str, key: str) -> str:
    """`url` with `notice=key` in its query string (replacing an earlier one)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "notice"] + [("notice", key)]
    return urlunsplit(("", "", parts.path, urlencode(query), ""))


def redirect_with_notice(url: str, key: str) -> RedirectResponse:
    """The 303 after a POST: back to `url`, which shows the notice `key`."""
    return RedirectResponse(with_notice(url, key), status_code=303)


def render_form_page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    notice: Notice | None,
    status: int = 200,
) -> HTMLResponse:
    """Render a page of forms with its notice; no values nor errors unless `context` has them."""
    return render(
        request,
        template,
        {"notice": notice, "errors": {}, "values": {}, **context},
        status_code=status,
    )
