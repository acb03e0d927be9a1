"""The admin's sign-in and old-password check are throttled like the API's logins: failures are
counted per username and per client address in the shared cache, and over ADMIN_LOGIN_THROTTLE
even the right password is refused with a message saying when to try again."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import Client
from django.urls import reverse

from tests.admin.conftest import staff
from tests.admin.pages import page_text
from videos.models import Role

pytestmark = pytest.mark.django_db
LOGIN = reverse("admin:login")
FOR_USERNAME = "Too many failed sign-ins for this username. Try again in"
FROM_ADDRESS = "Too many failed sign-ins from your address. Try again in"
WRONG = "Please enter the correct username and password for a staff account."


@pytest.fixture(autouse=True)
def three_a_minute(settings: Any) -> None:
    settings.ADMIN_LOGIN_THROTTLE = "3/min"
    # Counts live in the cache, which outlives a test's rollback: a prefix of its own.
    settings.CACHES = {
        name: {**config, "KEY_PREFIX": f"admin-sign-in-{uuid.uuid4().hex}"}
        for name, config in settings.CACHES.items()
    }


@pytest.fixture
def erin(team):
    return staff("erin", team, Role.EDITOR)


def sign_in(username: str, password: str, address: str) -> tuple[Client, str]:
    client = Client(REMOTE_ADDR=address)
    response = client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"})
    return client, (page_text(response) if response.status_code == 200 else "")


def signed_in(client: Client) -> bool:
    return client.get(reverse("admin:index")).status_code == 200


def test_guessing_one_username_from_many_addresses_is_refused(erin):
    for attempt in range(3):
        _, page = sign_in("erin", f"guess-{attempt}", f"127.0.1.{attempt + 1}")
        assert WRONG in page

    client, page = sign_in("erin", "erin-pw-1", "127.0.1.9")

    assert FOR_USERNAME in page
    assert not signed_in(client)
    # The same name in other letters is the same account.
    assert FOR_USERNAME in sign_in("ERIN", "erin-pw-1", "127.0.1.10")[1]


def test_guessing_many_usernames_from_one_address_is_refused(erin, team):
    staff("vic", team, Role.VIEWER)
    for name in ["alice", "bob", "carol"]:
        assert WRONG in sign_in(name, "guess", "127.0.2.1")[1]

    client, page = sign_in("vic", "vic-pw-1", "127.0.2.1")

    assert FROM_ADDRESS in page
    assert not signed_in(client)
    # Another address and another username are not affected.
    client, _ = sign_in("erin", "erin-pw-1", "127.0.2.2")
    assert signed_in(client)


def test_failures_below_the_rate_are_forgiven_by_nothing_but_time(erin):
    for attempt in range(2):
        sign_in("erin", f"guess-{attempt}", "127.0.3.1")
    client, _ = sign_in("erin", "erin-pw-1", "127.0.3.1")
    assert signed_in(client)
    # A success does not reset the count: one more failure reaches the limit.
    sign_in("erin", "guess-3", "127.0.3.2")
    assert FOR_USERNAME in sign_in("erin", "erin-pw-1", "127.0.3.3")[1]


def test_guessing_the_old_password_when_changing_it_is_throttled(erin):
    client = Client(REMOTE_ADDR="127.0.4.1")
    client.force_login(erin)
    change = reverse("admin:password_change")
    new = {"new_password1": "a-long-new-pass-phrase", "new_password2": "a-long-new-pass-phrase"}
    for attempt in range(3):
        page = page_text(client.post(change, {"old_password": f"guess-{attempt}", **new}))
        assert "Your old password was entered incorrectly." in page

    page = page_text(client.post(change, {"old_password": "erin-pw-1", **new}))

    assert FOR_USERNAME in page
    erin.refresh_from_db()
    assert erin.check_password("erin-pw-1")


def test_a_rate_that_cannot_be_read_stops_the_start(settings):
    settings.ADMIN_LOGIN_THROTTLE = "ten a minute"
    errors = [e for e in run_checks() if e.id == "reelforge.E002"]
    assert errors and "ADMIN_LOGIN_THROTTLE must look like 10/min" in errors[0].msg
