"""Sign in, sign out, change password, language."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboard.deps import (
    EVERYONE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Session,
    Viewer,
    allow,
    new_login_csrf,
    public,
    settings_of,
)
from dashboard.params import FormText
from dashboard.redirects import local_path
from dashboard.templating import render
from shared.db import utcnow
from shared.i18n import N_, available_languages
from shared.staff import sessions
from shared.staff.errors import StaffError, WeakPassword
from shared.staff.models import Role, StaffSession, StaffUser

router = APIRouter()


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def home_for(role: Role) -> str:
    return "/staff" if role is Role.ADMIN else "/agenda"


def _login_page(
    request: Request, *, error: str = "", username: str = "", status: int = 200
) -> HTMLResponse:
    token = new_login_csrf()
    request.state.csrf_token = token
    response = render(
        request, "auth/login.html", {"error": error, "username": username}, status_code=status
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/login",
    )
    return response


@router.get("/login", dependencies=[Depends(public())])
async def login_form(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post("/login", dependencies=[Depends(public())], response_model=None)
async def login(
    request: Request,
    session: Session,
    # As typed, however long: a name or password past its limit is just a wrong one.
    username: FormText = "",
    password: FormText = "",
) -> Response:
    policy = sessions.SessionPolicy.from_settings(settings_of(request))
    try:
        signed_in = await sessions.sign_in(
            session=session, username=username, password=password, now=utcnow(), policy=policy
        )
    except sessions.AccountLocked:
        return _login_page(request, error="locked", username=username, status=429)
    except sessions.SignInRefused:
        return _login_page(request, error="wrong", username=username, status=401)
    response = RedirectResponse(home_for(Role(signed_in.user.role)), status_code=303)
    response.set_cookie(
        SESSION_COOKIE, signed_in.token, httponly=True, samesite="lax", secure=_secure(request)
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(
    session: Session, viewer: Annotated[Viewer, Depends(allow(*EVERYONE))]
) -> RedirectResponse:
    record = await session.get(StaffSession, viewer.session_id)
    if record is not None:
        await sessions.sign_out(session=session, record=record, now=utcnow())
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/")
async def home(viewer: Annotated[Viewer, Depends(allow(*EVERYONE))]) -> RedirectResponse:
    return RedirectResponse(home_for(viewer.role), status_code=303)


@router.get("/password")
async def password_form(
    request: Request, viewer: Annotated[Viewer, Depends(allow(*EVERYONE))]
) -> HTMLResponse:
    return render(request, "auth/password.html", {"errors": {}, "done": False})


@router.post("/password")
async def change_password(
    request: Request,
    session: Session,
    viewer: Annotated[Viewer, Depends(allow(*EVERYONE))],
    current: FormText = "",
    new: FormText = "",
    repeat: FormText = "",
) -> HTMLResponse:
    errors: dict[str, str] = {}
    if new != repeat:
        errors["repeat"] = N_("The two new passwords are different.")
    else:
        user = await session.get(StaffUser, viewer.user_id)
        record = await session.get(StaffSession, viewer.session_id)
        assert user is not None
        assert record is not None
        try:
            await sessions.change_password(
                session=session, user=user, current_password=current,
                new_password=new, keep=record, now=utcnow(),
            )  # fmt: skip
        except sessions.SignInRefused:
            errors["current"] = N_("The current password is wrong.")
        except WeakPassword as exc:
            errors["new"] = str(exc)
        except StaffError as exc:
            errors["new"] = str(exc)
    status = 400 if errors else 200
    return render(request, "auth/password.html", {"errors": errors, "done": not errors}, status)


@router.post("/language")
async def language(
    request: Request,
    viewer: Annotated[Viewer, Depends(allow(*EVERYONE))],
    lang: Annotated[str, Form(max_length=8)] = "it",
    back: Annotated[str, Form(max_length=300)] = "/",
) -> RedirectResponse:
    response = RedirectResponse(local_path(back), status_code=303)
    if lang in available_languages():
        response.set_cookie("lang", lang, httponly=True, samesite="lax", secure=_secure(request))
    return response
