"""`manage.py bootstrap`, which `make run` calls on every start: an admin and a demo project the
first time, and nothing new after that."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from videos.models import Membership, Project

pytestmark = pytest.mark.django_db


def bootstrap() -> str:
    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    return out.getvalue()


def test_the_first_start_makes_an_owner_and_a_budgeted_project_and_shows_the_password_once(
    settings,
):
    settings.PUBLIC_BASE_URL = "https://reelforge.example"
    printed = bootstrap()

    assert "portal:   https://reelforge.example/\n" in printed
    assert "admin:    https://reelforge.example/admin/\n" in printed
    password = re.search(r"password: (\S+)", printed).group(1)
    admin = get_user_model().objects.get(username="admin", is_superuser=True)
    assert Client().login(username="admin", password=password)
    membership = Membership.objects.get(user=admin, team__slug="studio")
    assert membership.role == "owner"
    project = Project.objects.get(team=membership.team)
    assert project.budget.monthly_cap_usd == 25


def test_a_later_start_changes_nothing_and_shows_no_password(settings):
    settings.PUBLIC_BASE_URL = "https://reelforge.example"
    bootstrap()
    again = bootstrap()

    assert "password" not in again
    assert "https://reelforge.example/admin/" in again
    assert get_user_model().objects.count() == 1
    assert Project.objects.count() == 1
