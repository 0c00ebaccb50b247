"""A coordinator erases a citizen's personal data from their case page (SPEC J8, GDPR art. 17).

For a citizen who asks by phone, at the helpdesk or in writing (on Telegram they use
/cancella). `GET /cases/{id}/erase` says what goes and what stays and asks for a
confirmation; `POST` erases (`shared.privacy.erasure.erase_on_request`, audited) and
shows the case again with a message (303). Coordinators only: the route's rule and the
service both check it. Without the confirmation nothing changes (400); a second erasure
changes nothing either.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboard.deps import (
    COORDINATION,
    Session,
    Viewer,
    all_or_nothing,
    allow,
    settings_of,
    writes_on_read,
)
from dashboard.params import FormText, RecordId
from dashboard.templating import render
from shared.cases import labels
from shared.cases.errors import CaseError, CaseNotFound
from shared.db import utcnow
from shared.i18n import N_
from shared.privacy import erasure

router = APIRouter()
Coordinator = Annotated[Viewer, Depends(allow(*COORDINATION))]

# The confirmation checkbox's value.
CONFIRMED = "yes"
NOT_CONFIRMED = N_("Tick the box to confirm that the citizen asked for the erasure.")


def _refusal(exc: CaseError) -> HTTPException:
    return HTTPException(status_code=404 if isinstance(exc, CaseNotFound) else 403)


async def _confirmation_page(
    request: Request, session: Session, viewer: Viewer, case_id: int, *, error: str = ""
) -> HTMLResponse:
    try:
        target = await erasure.erasure_target(session=session, case_id=case_id, role=viewer.role)
    except CaseError as exc:
        raise _refusal(exc) from None
    return render(
        request,
        "cases/erase.html",
        {"target": target, "error": error, "case_states": labels.CASE_STATES},
        status_code=400 if error else 200,
    )


@router.get("/cases/{case_id}/erase")
@writes_on_read()
async def erase_page(
    request: Request, session: Session, viewer: Coordinator, case_id: RecordId
) -> HTMLResponse:
    return await _confirmation_page(request, session, viewer, case_id)


@router.post("/cases/{case_id}/erase")
async def erase(
    request: Request,
    session: Session,
    viewer: Coordinator,
    case_id: RecordId,
    confirm: FormText = "",
) -> Response:
    if confirm != CONFIRMED:
        return await _confirmation_page(request, session, viewer, case_id, error=NOT_CONFIRMED)
    try:
        async with all_or_nothing(session):
            await erasure.erase_on_request(
                session=session,
                settings=settings_of(request),
                case_id=case_id,
                role=viewer.role,
                actor=viewer.actor,
                now=utcnow(),
            )
    except CaseError as exc:
        raise _refusal(exc) from None
    return RedirectResponse(f"/cases/{case_id}?notice=erased", status_code=303)
