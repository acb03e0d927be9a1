"""First-start set-up for a local installation: an admin account and a demo project."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from billing import selectors as billing_selectors
from billing import services as billing_services
from videos.models import Membership, Project, Role, Team


class Command(BaseCommand):
    help = "Create a local admin account (random password, printed once) and a demo project."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="admin")

    @transaction.atomic
    def handle(self, *args: Any, username: str, **options: Any) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("An admin account exists already; log in at /admin/ with it.")
            return
        password = secrets.token_urlsafe(12)
        admin = User.objects.create_superuser(username=username, email="", password=password)
        team, _ = Team.objects.get_or_create(slug="studio", defaults={"name": "Studio"})
        Membership.objects.get_or_create(user=admin, team=team, defaults={"role": Role.OWNER})
        project, _ = Project.objects.get_or_create(team=team, name="First project")
        if billing_selectors.budget_get(project=project) is None:
            billing_services.budget_set(project=project, monthly_cap_usd=Decimal("25"))
        self.stdout.write(
            self.style.SUCCESS(
                "\nCreated the admin account. This password is shown only once:\n"
                f"  URL:      http://127.0.0.1:8000/admin/\n"
                f"  username: {username}\n"
                f"  password: {password}\n"
            )
        )
