"""A budget's form fields, for every door that sets one (the admin's project form, the portal's
spend page), so each takes what the model stores and `services.budget_set` judges the rest."""

from __future__ import annotations

from typing import Any

from django import forms

from billing.models import MONEY, WARNING_THRESHOLD_DEFAULT, WARNING_THRESHOLD_HELP


def monthly_cap_field(**kwargs: Any) -> forms.DecimalField:
    return forms.DecimalField(**MONEY, required=False, **kwargs)


def warning_threshold_field(**kwargs: Any) -> forms.DecimalField:
    options: dict[str, Any] = {
        "initial": WARNING_THRESHOLD_DEFAULT,
        "help_text": WARNING_THRESHOLD_HELP,
        **kwargs,
    }
    return forms.DecimalField(max_digits=3, decimal_places=2, required=False, **options)
