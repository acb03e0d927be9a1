"""The Reelforge admin site: branded, with the provider's status on its index, sign-ins and
password checks throttled like the API's logins, and every admin that is not team-scoped
closed to all but superusers (see `videos.admin_scope`).

It is Django's default site (`videos.apps.ReelforgeAdminConfig`), so `admin.site` and
`@admin.register` are this site everywhere, third-party apps' admins included.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from collections.abc import Sequence
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.forms import AdminAuthenticationForm, AdminPasswordChangeForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import PasswordChangeView
from django.contrib.contenttypes import views as contenttype_views
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import path, reverse
from rest_framework.throttling import BaseThrottle

from videos.admin_scope import SuperusersOnly, TeamScopedAdmin, is_superuser, may, scope
from videos.models import GenerationJob, JobState, ProviderAccount, Role

logger = logging.getLogger(__name__)


# --- Throttled sign-in -----------------------------------------------------------------------

RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$")
PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """ "10/min" -> (10, 60): failures allowed, in how many seconds (DRF's rate format)."""
    match = RATE.match(rate or "")
    if not match:
        raise ImproperlyConfigured(
            f"ADMIN_LOGIN_THROTTLE must look like 10/min (a number per s, min, hour or day), "
            f"not {rate!r}."
        )
    return int(match.group(1)), PERIOD_SECONDS[match.group(2)[0]]


class SignInThrottle:
    """Failed admin sign-ins (and password checks), counted per username and per client
    address over a sliding window, in the shared cache like the API's throttles, so every web
    process sees the same counts. Over `ADMIN_LOGIN_THROTTLE` the password is not even checked:
    a right guess is refused like a wrong one until the window has room again.

    The address is the API's (`API_NUM_PROXIES` decides how far X-Forwarded-For is trusted).
    """

    def _windows(self, request: HttpRequest | None, username: str) -> list[tuple[str, str]]:
        """(cache key, what it counts) for each count this sign-in falls under."""
        windows = []
        if username:
            digest = hashlib.sha256(username.casefold().encode()).hexdigest()[:32]
            windows.append((f"reelforge:admin-sign-in:user:{digest}", "for this username"))
        if request is not None:
            # DRF reads the client's address the same way for the API's rates.
            address = BaseThrottle().get_ident(request)  # type: ignore[arg-type]
            digest = hashlib.sha256(address.encode()).hexdigest()[:32]
            windows.append((f"reelforge:admin-sign-in:address:{digest}", "from your address"))
        return windows

    def _recent(self, key: str, now: float, seconds: int) -> list[float]:
        return [moment for moment in cache.get(key, []) if moment > now - seconds]

    def refusal(self, request: HttpRequest | None, username: str) -> str | None:
        """Why this sign-in is refused before its password is checked, or None."""
        allowed, seconds = parse_rate(settings.ADMIN_LOGIN_THROTTLE)
        now = time.time()
        for key, which in self._windows(request, username):
            recent = self._recent(key, now, seconds)
            if len(recent) >= allowed:
                wait = max(1, math.ceil(min(recent) + seconds - now))
                logger.warning("Admin sign-in refused: too many failures %s", which)
                return f"Too many failed sign-ins {which}. Try again in {wait} seconds."
        return None

    def failed(self, request: HttpRequest | None, username: str) -> None:
        """Count a failed sign-in or password check."""
        _, seconds = parse_rate(settings.ADMIN_LOGIN_THROTTLE)
        now = time.time()
        for key, _ in self._windows(request, username):
            cache.set(key, [now, *self._recent(key, now, seconds)], seconds)


sign_in_throttle = SignInThrottle()


class ThrottledSignIn(AuthenticationForm):
    """A sign-in form whose failures count against `sign_in_throttle` (the admin's and the
    portal's alike)."""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        refusal = sign_in_throttle.refusal(self.request, username)
        if refusal:
            raise ValidationError(refusal, code="throttled")
        try:
            return super().clean()
        except ValidationError:
            sign_in_throttle.failed(self.request, username)
            raise


class ThrottledAuthenticationForm(ThrottledSignIn, AdminAuthenticationForm):
    pass


class ThrottledPasswordChangeForm(AdminPasswordChangeForm):
    """Changing one's password asks for the old one: guesses of it count like sign-ins."""

    def __init__(self, *args: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_old_password(self) -> str:
        username = self.user.get_username()
        refusal = sign_in_throttle.refusal(self.request, username)
        if refusal:
            raise ValidationError(refusal, code="throttled")
        try:
            return super().clean_old_password()
        except ValidationError:
            sign_in_throttle.failed(self.request, username)
            raise


class ThrottledPasswordChangeView(PasswordChangeView):
    form_class = ThrottledPasswordChangeForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}


# --- Confirmation pages for actions ----------------------------------------------------------


def confirmed(request: HttpRequest) -> bool:
    """Whether an action's POST comes from its confirmation page's "Yes" button."""
    return request.POST.get("post") == "yes"


def confirmation_page(
    modeladmin: Any,
    request: HttpRequest,
    *,
    action: str,
    title: str,
    rows: Sequence[tuple[Any, str]],
    question: str,
    button: str,
    form: forms.Form | None = None,
    template: str = "admin/reelforge/confirm_action.html",
    **context: Any,
) -> TemplateResponse:
    """The page an action shows before it does anything: each selected object with what will
    happen to it, an optional form, and a button that posts the action again, confirmed."""
    opts = modeladmin.model._meta
    selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
    return TemplateResponse(
        request,
        template,
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": opts,
            "app_label": opts.app_label,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "selected": selected,
            "rows": rows,
            "question": question,
            "button": button,
            "form": form,
            "media": modeladmin.media + (form.media if form is not None else forms.Media()),
            "changelist_url": reverse(
                f"admin:{opts.app_label}_{opts.model_name}_changelist",
                current_app=modeladmin.admin_site.name,
            ),
            **context,
        },
    )


# --- The site --------------------------------------------------------------------------------

STATE_ORDER = [
    JobState.NEEDS_ATTENTION,
    JobState.QUEUED,
    JobState.SUBMITTING,
    JobState.SUBMITTED,
    JobState.GENERATING,
    JobState.RETRIEVING,
    JobState.SUCCEEDED,
    JobState.FAILED,
    JobState.CANCELED,
]


def jobs_by_state(request: HttpRequest) -> list[dict[str, Any]]:
    """The user's teams' jobs counted by state, most urgent first, with a link to each list."""
    counts = dict(
        scope(GenerationJob.objects.all(), request)
        .order_by()
        .values_list("state")
        .annotate(jobs=Count("pk"))
    )
    changelist = reverse("admin:videos_generationjob_changelist")
    return [
        {
            "state": state,
            "label": state.label,
            "jobs": counts.get(state, 0),
            "url": f"{changelist}?state__exact={state.value}",
        }
        for state in STATE_ORDER
    ]


class ReelforgeAdminSite(admin.AdminSite):
    site_header = "Reelforge"
    site_title = "Reelforge"
    index_title = "Editors' workbench"
    index_template = "admin/reelforge/index.html"
    login_form = ThrottledAuthenticationForm

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        # What nobody scoped to teams is for superusers only: closed by default, never open.
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, (TeamScopedAdmin, SuperusersOnly)):
            admin_class = type(
                admin_class.__name__,
                (SuperusersOnly, admin_class),
                {"__module__": admin_class.__module__, "__doc__": admin_class.__doc__},
            )
        super().register(model_or_iterable, admin_class, **options)

    def get_urls(self) -> list[Any]:
        urls = super().get_urls()
        return [
            path(
                "r/<int:content_type_id>/<path:object_id>/",
                self.admin_view(self.view_on_site),
                name="view_on_site",
            )
            if getattr(pattern, "name", None) == "view_on_site"
            else pattern
            for pattern in urls
        ]

    def view_on_site(self, request: HttpRequest, content_type_id: int, object_id: str) -> Any:
        # Django's shortcut answers differently for a row that exists and one that does not,
        # whatever its team: nothing here has a page outside the admin, so staff get "not found".
        if not is_superuser(request):
            raise Http404("Not found.")
        return contenttype_views.shortcut(request, content_type_id, object_id)

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        context: dict[str, Any] = {"provider_accounts": list(ProviderAccount.objects.all())}
        if may(request, Role.VIEWER):
            context["jobs_by_state"] = jobs_by_state(request)
        return super().index(request, {**context, **(extra_context or {})})

    def password_change(  # type: ignore[override]  # a redirect when done, like Django's own
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponseBase:
        url = reverse("admin:password_change_done", current_app=self.name)
        defaults: dict[str, Any] = {
            "success_url": url,
            "extra_context": {**self.each_context(request), **(extra_context or {})},
        }
        if self.password_change_template is not None:
            defaults["template_name"] = self.password_change_template
        request.current_app = self.name
        return ThrottledPasswordChangeView.as_view(**defaults)(request)
