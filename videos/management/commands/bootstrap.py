"""First-start set-up for a local installation: an admin account and a demo project."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from videos import services
from videos.models import Project, Team


class Command(BaseCommand):
    help = "Create a local admin account (random password, printed once) and a demo project."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="admin")

    @transaction.atomic
    def handle(self, *args: Any, username: str, **options: Any) -> None:
        User = get_user_model()
        site = settings.PUBLIC_BASE_URL
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write(
                "An admin account exists already; sign in with it at the portal, "
                f"{site}/, or the admin, {site}/admin/."
            )
            return
        password = secrets.token_urlsafe(12)
        admin = User.objects.create_superuser(username=username, email="", password=password)
        # Through the services, like every other door: the same rules, the same rows.
        team = Team.objects.filter(slug="studio").first()
        if team is None:
            team = services.team_create(name="Studio", slug="studio", owner=admin)
        else:
            services.membership_add_user(team=team, user=admin, role="owner")
        if not Project.objects.filter(team=team, name="First project").exists():
            services.project_create(
                team=team, name="First project", monthly_budget_usd=Decimal("25")
            )
        self.stdout.write(
            self.style.SUCCESS(
                "\nCreated the admin account. This password is shown only once:\n"
                f"  portal:   {site}/\n"
                f"  admin:    {site}/admin/\n"
                f"  username: {username}\n"
                f"  password: {password}\n"
            )
        )
