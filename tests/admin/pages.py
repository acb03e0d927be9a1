"""Admin pages as a browser sees them: what its form sends back, and where an inline row is."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse


def _form_fields(form: forms.BaseForm) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        if field.disabled:  # a browser never sends a disabled input
            continue
        value = form[name].value()
        if isinstance(field.widget, forms.CheckboxInput):
            if value:
                data[form.add_prefix(name)] = "on"
            continue
        data[form.add_prefix(name)] = "" if value is None else str(value)
    return data


def form_data(page: TestResponse) -> dict[str, Any]:
    """The POST body of an admin add or change page submitted as shown: the form, and each
    inline's management form and rows."""
    assert page.status_code == 200, page.status_code
    data = _form_fields(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(_form_fields(formset.management_form))
        for form in formset.forms:
            data.update(_form_fields(form))
    return data


def inline_row(page: TestResponse, obj: Any) -> str:
    """The prefix of the inline row that shows `obj`, e.g. "memberships-1"."""
    for inline in page.context["inline_admin_formsets"]:
        for form in inline.formset.forms:
            if type(form.instance) is type(obj) and form.instance.pk == obj.pk:
                return form.prefix
    raise AssertionError(f"{obj!r} has no row on the page")


def add_inline_row(data: dict[str, Any], prefix: str, **fields: Any) -> None:
    """Add a row to the inline `prefix` ("memberships"), as the "Add another" link does."""
    index = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = str(index + 1)
    for name, value in fields.items():
        data[f"{prefix}-{index}-{name}"] = value


def page_text(page: TestResponse) -> str:
    return page.content.decode()
