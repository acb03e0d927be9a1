"""Billing's API routes, included under `/api/v1/` by `videos/api/urls.py` (names in `api:`)."""

from __future__ import annotations

from django.urls import path

from billing import api

urlpatterns = [
    path("spend/", api.SpendApi.as_view(), name="spend"),
]
