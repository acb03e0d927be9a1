"""The admin's way of writing: every form and action goes through the services, and a
refusal reads the same as it does in the API and the portal."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from videos import services

if TYPE_CHECKING:
    from django.contrib.auth.models import User


# What a service raises when it refuses: bad input, or a request that contradicts what exists.
REFUSALS = (ValidationError, services.Conflict)


def acting_user(request: HttpRequest) -> User:
    """Who is acting: the admin site serves only logged-in staff, never an anonymous user."""
    return cast("User", request.user)


def refusal_errors(exc: Exception) -> dict[str | None, list[str]]:
    """A service's refusal as form errors: field -> messages; None for the form as a whole."""
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return {field: list(errors) for field, errors in exc.message_dict.items()}
        return {None: exc.messages}
    return {None: [str(exc)]}


def refusal_text(exc: Exception) -> str:
    return " ".join(message for errors in refusal_errors(exc).values() for message in errors)


def adopt(obj: models.Model, saved: models.Model) -> None:
    """Make the admin's own object the row a service saved, so that the log entry, the
    message and the redirect after a save name that row."""
    obj.__dict__.update(saved.__dict__)


class ServiceForm(forms.ModelForm):
    """An admin form that only parses input; the service checks and writes it.

    The model's own validation is skipped: it would check the service's rules (unique names,
    slugs, one membership a user) a second time and in other words. `refusal` holds what the
    service refused when the same input was saved a moment ago, shown as this form's errors.
    """

    refusal: ClassVar[dict[str | None, list[str]]] = {}

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        for field, errors in self.refusal.items():
            self.add_error(field if field in self.fields else None, errors)
        return cleaned

    def _post_clean(self) -> None:
        pass


class ServiceAdmin(admin.ModelAdmin):
    """A model admin whose writes are service calls, made in `save_model`, `save_formset` and
    `delete_model` (which refuse to fall back to the ORM).

    When a service refuses (`ValidationError`, `Conflict`), everything the request wrote is
    rolled back and the form comes back with the refusal as its errors, filled in as sent. A
    refused delete is an error message; a bulk action is all or nothing.
    """

    form = ServiceForm

    def delete_check(self, obj: Any) -> None:
        """Raise the service's refusal to delete `obj` before anyone is asked to confirm."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except REFUSALS as exc:
            # The refused save was rolled back with the rest of the request's writes. The same
            # POST is handled again, now failing validation with the refusal: the page shows
            # the form as it was filled in, with the service's words.
            request.admin_refusal = refusal_errors(exc)  # type: ignore[attr-defined]
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        form = super().get_form(request, obj, change=change, **kwargs)
        refusal = getattr(request, "admin_refusal", None)
        if refusal:
            # A ServiceForm subclass made for this request by modelform_factory.
            form.refusal = refusal  # type: ignore[attr-defined]
        return form

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        return form.instance  # unchanged: save_model hands the cleaned data to a service

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        raise NotImplementedError(f"{type(self).__name__} saves through a service")

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # Read-only inlines (history) write nothing; the change message still reads these.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} deletes through a service")

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        # One at a time, each judged by the service; response_action undoes all on a refusal.
        for obj in queryset:
            self.delete_model(request, obj)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        for obj in objs:
            self.delete_check(obj)
        return super().get_deleted_objects(objs, request)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except REFUSALS as exc:
            self.message_user(request, refusal_text(exc), messages.ERROR)
            opts = self.opts
            return HttpResponseRedirect(
                reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_change",
                    args=[object_id],
                    current_app=self.admin_site.name,
                )
            )

    # Django 5.2's signature; the stubs (written for Django 6.1) add `action_location`.
    def response_action(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:  # type: ignore[override]
        try:
            with transaction.atomic(using=router.db_for_write(self.model)):
                return super().response_action(request, queryset)
        except REFUSALS as exc:
            self.message_user(request, refusal_text(exc), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


def usd(amount: Decimal | None) -> str:
    return "no cap" if amount is None else f"${amount.quantize(Decimal('0.01'))}"
