"""Staff accounts (administrators only): list, create, deactivate, reset password, change role."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboard.deps import ADMINISTRATION, ROLE_LABELS, Session, Viewer, allow
from dashboard.limits import FIELD_LIMITS, TOO_LONG
from dashboard.params import FormText, QueryWord, RecordId
from dashboard.templating import render
from shared.db import utcnow
from shared.i18n import N_
from shared.staff import service as staff
from shared.staff.errors import InvalidUsername, UnknownStaffUser, UsernameTaken, WeakPassword
from shared.staff.models import Role, StaffUser

router = APIRouter()
Admin = Annotated[Viewer, Depends(allow(*ADMINISTRATION))]
Text = FormText

ROLES = [(role.value, ROLE_LABELS[role]) for role in Role]
# Shown after a change (`?done=`): only these texts, never anything from the address.
NOTICES = {
    "created": N_("Account created."),
    "role": N_("Role changed."),
    "deactivated": N_("Account deactivated: it has been signed out everywhere."),
    "reactivated": N_("Account reactivated."),
    "password": N_("Password reset: the account has been signed out everywhere."),
}
OWN_ACCOUNT = {
    "active": N_("You cannot deactivate your own account."),
    "role": N_("You cannot change your own role."),
    "password": N_("Change your own password from the Password page."),
}
USERNAME_RULE = N_(
    "A username has 2 to 40 characters: letters a-z, digits, dot, dash or underscore."
)
USERNAME_TAKEN = N_("This username is already taken.")
PASSWORDS_DIFFER = N_("The two passwords are different.")
UNKNOWN_ROLE = N_("Choose a role.")


def _role(value: str) -> Role | None:
    try:
        return Role(value)
    except ValueError:
        return None


async def _user(session: Session, user_id: int) -> StaffUser:
    try:
        return await staff.get_user(session=session, user_id=user_id)
    except UnknownStaffUser:
        raise HTTPException(status_code=404) from None


def _detail_page(
    request: Request,
    viewer: Viewer,
    user: StaffUser,
    *,
    errors: dict[str, str] | None = None,
    notice: str = "",
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "staff/detail.html",
        {
            "user": user,
            "roles": ROLES,
            "role_labels": {role.value: label for role, label in ROLE_LABELS.items()},
            "is_self": user.id == viewer.user_id,
            "errors": errors or {},
            "notice": notice,
        },
        status_code=status,
    )


@router.get("/staff")
async def staff_list(request: Request, session: Session, viewer: Admin) -> HTMLResponse:
    users = await staff.list_users(session=session)
    return render(
        request,
        "staff/list.html",
        {"users": users, "role_labels": {r.value: label for r, label in ROLE_LABELS.items()}},
    )


def _new_page(
    request: Request, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> HTMLResponse:
    return render(
        request,
        "staff/new.html",
        {"values": values, "errors": errors, "roles": ROLES},
        status_code=status,
    )


@router.get("/staff/new")
async def new_user_form(request: Request, viewer: Admin) -> HTMLResponse:
    return _new_page(request, {"role": Role.OPERATORE.value}, {})


@router.post("/staff", response_model=None)
async def create_user(
    request: Request,
    session: Session,
    viewer: Admin,
    username: Text = "",
    display_name: Text = "",
    role: Text = "",
    password: Text = "",
    repeat: Text = "",
) -> Response:
    # The password is never sent back to the browser.
    values = {"username": username, "display_name": display_name, "role": role}
    errors: dict[str, str] = {}
    chosen = _role(role)
    if chosen is None:
        errors["role"] = UNKNOWN_ROLE
    if password != repeat:
        errors["repeat"] = PASSWORDS_DIFFER
    try:
        staff.normalise_username(username)
    except InvalidUsername:
        errors["username"] = USERNAME_RULE
    if len(display_name.strip()) > FIELD_LIMITS.display_name:
        # Its template formats the message with the same limit.
        errors["display_name"] = TOO_LONG
    if errors or chosen is None:
        return _new_page(request, values, errors, status=400)
    try:
        user = await staff.add_user(
            session=session,
            username=username,
            password=password,
            role=chosen,
            display_name=display_name or None,
            actor=viewer.actor,
        )
    except InvalidUsername:
        errors["username"] = USERNAME_RULE
    except UsernameTaken:
        errors["username"] = USERNAME_TAKEN
    except WeakPassword as exc:
        errors["password"] = str(exc)
    if errors:
        return _new_page(request, values, errors, status=400)
    return RedirectResponse(f"/staff/{user.id}?done=created", status_code=303)


@router.get("/staff/{user_id}")
async def user_detail(
    request: Request,
    session: Session,
    viewer: Admin,
    user_id: RecordId,
    done: QueryWord = "",
) -> HTMLResponse:
    user = await _user(session, user_id)
    return _detail_page(request, viewer, user, notice=NOTICES.get(done, ""))


def _done(user_id: int, what: str) -> RedirectResponse:
    return RedirectResponse(f"/staff/{user_id}?done={what}", status_code=303)


@router.post("/staff/{user_id}/role", response_model=None)
async def change_role(
    request: Request, session: Session, viewer: Admin, user_id: RecordId, role: Text = ""
) -> Response:
    user = await _user(session, user_id)
    chosen = _role(role)
    if chosen is None:
        return _detail_page(request, viewer, user, errors={"role": UNKNOWN_ROLE}, status=400)
    try:
        await staff.change_role(
            session=session, user_id=user.id, role=chosen,
            by_user_id=viewer.user_id, actor=viewer.actor,
        )  # fmt: skip
    except staff.OwnAccount:
        errors = {"role": OWN_ACCOUNT["role"]}
        return _detail_page(request, viewer, user, errors=errors, status=400)
    return _done(user.id, "role")


async def _set_active(
    request: Request, session: Session, viewer: Admin, user_id: int, *, active: bool
) -> Response:
    user = await _user(session, user_id)
    try:
        await staff.set_active(
            session=session, user_id=user.id, active=active,
            by_user_id=viewer.user_id, actor=viewer.actor, now=utcnow(),
        )  # fmt: skip
    except staff.OwnAccount:
        errors = {"active": OWN_ACCOUNT["active"]}
        return _detail_page(request, viewer, user, errors=errors, status=400)
    return _done(user.id, "reactivated" if active else "deactivated")


@router.post("/staff/{user_id}/deactivate", response_model=None)
async def deactivate(
    request: Request, session: Session, viewer: Admin, user_id: RecordId
) -> Response:
    return await _set_active(request, session, viewer, user_id, active=False)


@router.post("/staff/{user_id}/reactivate", response_model=None)
async def reactivate(
    request: Request, session: Session, viewer: Admin, user_id: RecordId
) -> Response:
    return await _set_active(request, session, viewer, user_id, active=True)


@router.post("/staff/{user_id}/password", response_model=None)
async def reset_password(
    request: Request,
    session: Session,
    viewer: Admin,
    user_id: RecordId,
    password: Text = "",
    repeat: Text = "",
) -> Response:
    user = await _user(session, user_id)
    errors: dict[str, str] = {}
    if password != repeat:
        errors["repeat"] = PASSWORDS_DIFFER
    else:
        try:
            await staff.reset_password(
                session=session, user_id=user.id, password=password,
                by_user_id=viewer.user_id, actor=viewer.actor, now=utcnow(),
            )  # fmt: skip
        except staff.OwnAccount:
            errors["password"] = OWN_ACCOUNT["password"]
        except WeakPassword as exc:
            errors["password"] = str(exc)
    if errors:
        return _detail_page(request, viewer, user, errors=errors, status=400)
    return _done(user.id, "password")
