"""What members do in the portal: make clips (with the same rules and wording as the API),
set budgets, export spend, invite and answer invitations, leave, and manage API tokens."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from billing.models import Budget
from tests.api.conftest import PNG_BYTES
from videos.jobs import gate
from videos.models import (
    ApiToken,
    GenerationJob,
    Invitation,
    JobState,
    Kind,
    Membership,
    Project,
    Role,
)

pytestmark = pytest.mark.django_db


def clip(**fields: object) -> dict[str, object]:
    return {
        "kind": "text_to_video",
        "prompt": "A heron lands on a pier at dawn",
        "duration": "5",
        "aspect_ratio": "9:16",
        "request_id": "form-1",
        **fields,
    }


@pytest.fixture
def erin(signed_in, world):
    return signed_in(world.erin)


@pytest.fixture
def create_url(world) -> str:
    return reverse("portal:clip-create", args=[world.alpha.project.pk])


def new_jobs(world):
    return GenerationJob.objects.filter(team=world.alpha.team).exclude(
        pk__in=[world.alpha.clip.pk, world.alpha.failed.pk]
    )


# --- Making clips ----------------------------------------------------------------------------


def test_generate_queues_the_clip_and_returns_at_once(erin, world, create_url):
    response = erin.post(create_url, clip(sound="on"))
    assert response.status_code == 302
    job = new_jobs(world).get()
    assert (job.state, job.kind, job.duration, job.aspect_ratio, job.sound) == (
        JobState.QUEUED,
        Kind.TEXT_TO_VIDEO,
        5,
        "9:16",
        True,
    )
    assert job.created_by == world.erin and job.estimated_cost_usd == Decimal("0.55")
    page = erin.get(response["Location"]).content.decode()
    assert "Your clip is queued" in page and f'id="job-{job.pk}"' in page


def test_with_htmx_the_form_comes_back_fresh_and_the_list_is_told(erin, world, create_url):
    response = erin.post(create_url, clip(), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert json.loads(response["HX-Trigger"]) == {"jobs-changed": {}}
    html = response.content.decode()
    assert "Queued:" in html and "A heron lands" not in html  # an empty form for the next one


def test_a_kling_project_offers_a_negative_prompt_and_a_mode_and_kie_does_not(
    erin, world, create_url
):
    page = erin.get(reverse("portal:project", args=[world.alpha.project.pk])).content.decode()
    assert "Negative prompt" not in page and 'name="mode"' not in page
    # A kie.ai project's form has no such fields: what is sent for them is dropped, not kept.
    erin.post(create_url, clip(negative_prompt="no text", mode="pro", request_id="kie"))
    on_kie = new_jobs(world).get()
    assert on_kie.negative_prompt == ""

    Project.objects.filter(pk=world.alpha.project.pk).update(provider="kling")
    page = erin.get(reverse("portal:project", args=[world.alpha.project.pk])).content.decode()
    assert "Negative prompt" in page and 'name="mode"' in page
    erin.post(create_url, clip(negative_prompt="no text, no logos", mode="pro"))
    job = new_jobs(world).exclude(pk=on_kie.pk).get()
    assert (job.provider, job.negative_prompt, job.mode) == ("kling", "no text, no logos", "pro")
    page = erin.get(reverse("portal:job", args=[job.pk])).content.decode()
    assert "no text, no logos" in page and "Professional (1080p)" in page
    # The provider's own rules still judge what is sent.
    response = erin.post(create_url, clip(mode="ultra", request_id="form-2"))
    assert response.status_code == 400
    assert "Select a valid choice." in response.content.decode()


def test_a_form_sent_twice_makes_one_clip(erin, world, create_url):
    erin.post(create_url, clip())
    erin.post(create_url, clip())
    assert new_jobs(world).count() == 1


def test_a_clip_from_a_saved_prompt_keeps_its_version(erin, world, create_url):
    version = world.alpha.prompt.current_version
    erin.post(create_url, clip(prompt="", prompt_version=version.pk))
    job = new_jobs(world).get()
    assert job.prompt_version == version and job.prompt_text == version.text


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"prompt": ""}, "prompt", "prompt"),
        ({"prompt": "x" * 1001}, "prompt", "at most 1000 characters"),
        ({"duration": "7"}, "duration", "Select a valid choice"),
        ({"kind": "image_to_video"}, "image", "Choose an image to animate."),
    ],
)
def test_bad_input_gets_form_errors_and_saves_nothing(
    erin, world, create_url, fields, field, message
):
    response = erin.post(create_url, clip(**fields), HTTP_HX_REQUEST="true")
    form = response.context["form"]
    assert message.lower() in " ".join(form.errors.get(field, [])).lower(), form.errors
    assert not new_jobs(world).exists()


def test_an_image_is_checked_on_the_server_too(erin, world, create_url):
    not_an_image = SimpleUploadedFile("cat.png", b"GIF89a not a png", content_type="image/png")
    too_big = SimpleUploadedFile("big.png", PNG_BYTES + b"\0" * (10 * 1024 * 1024))
    for upload, message in [
        (not_an_image, "Image must be a JPEG, PNG or WebP file."),
        (too_big, "larger than 10 MB"),
    ]:
        response = erin.post(create_url, clip(kind="image_to_video", image=upload))
        assert message in " ".join(response.context["form"].errors["image"])
    assert not new_jobs(world).exists()


def test_an_image_to_video_clip_stores_its_upload(erin, world, create_url):
    upload = SimpleUploadedFile("still.png", PNG_BYTES, content_type="image/png")
    erin.post(create_url, clip(kind="image_to_video", image=upload))
    job = new_jobs(world).get()
    assert job.kind == Kind.IMAGE_TO_VIDEO and job.aspect_ratio == "" and job.source_image


def test_a_clip_the_budget_cannot_cover_is_refused_with_the_reason(erin, world, create_url):
    Budget.objects.filter(project=world.alpha.project).update(monthly_cap_usd=Decimal("0.60"))
    response = erin.post(create_url, clip(duration="10", sound="on"))
    errors = " ".join(response.context["form"].non_field_errors())
    assert "The project's monthly budget cannot cover this $1.10 clip" in errors
    assert "$0.05 of $0.60 is left this month" in errors
    assert not new_jobs(world).exists()


def test_a_clip_the_provider_balance_cannot_pay_is_refused(erin, world, create_url):
    gate.account_for("kie")
    gate.ProviderAccount.objects.filter(provider="kie").update(
        credits_left=Decimal("1"), credits_checked_at=timezone.now()
    )
    response = erin.post(create_url, clip())
    assert "credits" in " ".join(response.context["form"].non_field_errors()).lower()
    assert not new_jobs(world).exists()


def test_the_estimate_shows_the_price_the_budget_left_and_refusals(erin, world):
    url = reverse("portal:clip-estimate", args=[world.alpha.project.pk])
    html = erin.post(url, clip(duration="10", sound="on")).content.decode()
    assert "<strong>$1.10</strong> for this clip" in html
    assert "$9.45 of the budget left this month" in html  # $10 cap, $0.55 spent
    Budget.objects.filter(project=world.alpha.project).update(monthly_cap_usd=Decimal("1.00"))
    refused = erin.post(url, clip(duration="10", sound="on")).content.decode()
    assert "cannot cover this $1.10 clip" in refused


# --- Budgets and spend -----------------------------------------------------------------------


def test_owners_set_and_lift_budgets_on_the_spend_page(signed_in, world):
    client = signed_in(world.olga)
    project = world.alpha.project
    url = reverse("portal:budget-set", args=[project.pk])
    client.post(
        url, {f"p{project.pk}-monthly_cap_usd": "25.50", f"p{project.pk}-warning_threshold": "0.5"}
    )
    budget = Budget.objects.get(project=project)
    assert (budget.monthly_cap_usd, budget.warning_threshold) == (Decimal("25.50"), Decimal("0.5"))
    bad = client.post(url, {f"p{project.pk}-monthly_cap_usd": "-3"}, follow=True)
    assert "alpha project:" in bad.content.decode()
    assert Budget.objects.get(project=project).monthly_cap_usd == Decimal("25.50")
    client.post(url, {f"p{project.pk}-monthly_cap_usd": ""})
    assert not Budget.objects.filter(project=project).exists()


def test_a_cap_set_to_the_hundredth_of_a_cent_is_shown_and_kept_as_set(signed_in, world):
    """The API and the admin take caps to 4 places; the spend page shows and takes the same,
    so saving its form again changes nothing."""
    client = signed_in(world.olga)
    project = world.alpha.project
    url = reverse("portal:budget-set", args=[project.pk])

    def shown() -> dict[str, str]:
        form = client.get(reverse("portal:spend")).context["rows"][0]["form"]
        return {name: str(form[name].value()) for name in ("monthly_cap_usd", "warning_threshold")}

    def save(values: dict[str, str]) -> Decimal:
        client.post(url, {f"p{project.pk}-{name}": value for name, value in values.items()})
        return Budget.objects.get(project=project).monthly_cap_usd

    assert shown()["monthly_cap_usd"] == "10.00"  # whole cents stay cents
    assert save({"monthly_cap_usd": "12.3456", "warning_threshold": "0.8"}) == Decimal("12.3456")
    assert shown() == {"monthly_cap_usd": "12.3456", "warning_threshold": "0.80"}
    assert save(shown()) == Decimal("12.3456")


def test_spend_shows_a_bar_per_day_and_exports_csv(signed_in, world):
    client = signed_in(world.vic)
    html = client.get(reverse("portal:spend")).content.decode()
    assert html.count('<rect class="bar"') >= 28
    assert "$0.55 in all" in html
    month = timezone.now().strftime("%Y-%m")
    response = client.get(reverse("portal:spend-csv"), {"month": month})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert rows == [
        {
            "month": month,
            "project_id": str(world.alpha.project.pk),
            "project": "alpha project",
            "spent_usd": "0.5500",
            "reserved_usd": "0.0000",
            "queued_usd": "0.0000",
            "cap_usd": "10.0000",
        }
    ]
    assert client.get(reverse("portal:spend"), {"month": "2026-13"}).status_code == 404


def test_a_project_name_cannot_become_a_spreadsheet_formula(signed_in, world):
    world.alpha.project.name = "=HYPERLINK(evil)"
    world.alpha.project.save()
    body = signed_in(world.vic).get(reverse("portal:spend-csv")).content.decode()
    assert "'=HYPERLINK(evil)" in body


# --- Team --------------------------------------------------------------------------------------


def test_an_owner_invites_and_the_invitee_accepts_in_the_portal(signed_in, world):
    signed_in(world.olga).post(reverse("portal:invite"), {"username": "bob", "role": "viewer"})
    invitation = Invitation.objects.get(username="bob")
    bob = signed_in(world.bob)
    home = bob.get("/").content.decode()
    assert "invites you to <strong>Alpha</strong> as viewer" in home
    bob.post(reverse("portal:invitation-answer", args=[invitation.pk, "accept"]))
    assert Membership.objects.get(user=world.bob, team=world.alpha.team).role == Role.VIEWER
    # Accepting shows the new team; the switcher offers both.
    page = bob.get("/")
    assert page.context["seat"].team == world.alpha.team
    assert 'id="team-switch"' in page.content.decode()


def test_an_invitee_declines_and_a_stranger_cannot_answer(signed_in, world):
    signed_in(world.olga).post(reverse("portal:invite"), {"username": "bob", "role": "editor"})
    invitation = Invitation.objects.get(username="bob")
    stranger = signed_in(world.vic)
    stranger.post(reverse("portal:invitation-answer", args=[invitation.pk, "accept"]))
    assert not Membership.objects.filter(
        user=world.vic, team=world.alpha.team, role="editor"
    ).exists()
    signed_in(world.bob).post(reverse("portal:invitation-answer", args=[invitation.pk, "decline"]))
    invitation.refresh_from_db()
    assert invitation.status == "declined"
    assert not Membership.objects.filter(user=world.bob, team=world.alpha.team).exists()


def test_an_invitation_needs_a_username_or_an_email(signed_in, world):
    response = signed_in(world.olga).post(reverse("portal:invite"), {"role": "editor"})
    assert response.status_code == 400
    assert "Name the person by username or by email." in response.content.decode()


def test_members_leave_but_not_their_own_team(signed_in, world):
    erin = signed_in(world.erin)
    erin.post(reverse("portal:team-leave"))
    assert not Membership.objects.filter(user=world.erin, team=world.alpha.team).exists()
    # Now erin sees their own team, which stays theirs.
    response = erin.post(reverse("portal:team-leave"), follow=True)
    assert "This is your own team; it stays yours." in response.content.decode()


def test_an_owner_changes_a_role_and_takes_a_member_out(signed_in, world):
    olga = signed_in(world.olga)
    page = olga.post(
        reverse("portal:member-role", args=[world.vic.pk]), {"role": "editor"}, follow=True
    )
    assert "vic is now editor." in page.content.decode()
    assert Membership.objects.get(user=world.vic, team=world.alpha.team).role == Role.EDITOR
    page = olga.post(reverse("portal:member-remove", args=[world.erin.pk]), follow=True)
    assert "erin is no longer in the team." in page.content.decode()
    assert not Membership.objects.filter(user=world.erin, team=world.alpha.team).exists()


def test_the_last_owner_keeps_the_team_and_a_bad_role_is_refused(signed_in, world):
    olga = signed_in(world.olga)
    page = olga.post(
        reverse("portal:member-role", args=[world.olga.pk]), {"role": "viewer"}, follow=True
    )
    assert "A team needs an owner: make someone else owner first." in page.content.decode()
    page = olga.post(
        reverse("portal:member-role", args=[world.vic.pk]), {"role": "admiral"}, follow=True
    )
    assert "Select a valid choice." in page.content.decode()
    page = olga.post(reverse("portal:member-remove", args=[world.olga.pk]), follow=True)
    assert "To leave the team yourself, use Leave below." in page.content.decode()
    roles = dict(
        Membership.objects.filter(team=world.alpha.team).values_list("user__username", "role")
    )
    assert roles == {"olga": "owner", "erin": "editor", "vic": "viewer"}


def test_only_owners_manage_members_and_only_their_own_team(signed_in, world):
    erin = signed_in(world.erin)
    assert (
        erin.post(reverse("portal:member-role", args=[world.vic.pk]), {"role": "owner"}).status_code
        == 403
    )
    assert erin.post(reverse("portal:member-remove", args=[world.vic.pk])).status_code == 403
    # bob is Beta's owner, not a member of Alpha: olga cannot touch him.
    olga = signed_in(world.olga)
    assert (
        olga.post(
            reverse("portal:member-role", args=[world.bob.pk]), {"role": "viewer"}
        ).status_code
        == 404
    )
    assert olga.post(reverse("portal:member-remove", args=[world.bob.pk])).status_code == 404
    assert Membership.objects.get(user=world.bob, team=world.beta.team).role == Role.OWNER
    assert Membership.objects.get(user=world.vic, team=world.alpha.team).role == Role.VIEWER


# --- API tokens --------------------------------------------------------------------------------


def test_a_token_is_shown_once_and_works_and_can_be_revoked(signed_in, world):
    client = signed_in(world.erin)
    response = client.post(reverse("portal:tokens"), {"name": "nightly script"})
    assert response["Cache-Control"] == "no-store"
    key = response.context["new_key"]
    assert (
        key in response.content.decode()
        and 'curl -H "Authorization: Bearer' in response.content.decode()
    )
    again = client.get(reverse("portal:tokens")).content.decode()
    assert key not in again and "nightly script" in again
    api = client.__class__()
    assert api.get("/api/v1/jobs/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    token = ApiToken.objects.get(name="nightly script")
    client.post(reverse("portal:token-revoke", args=[token.pk]))
    assert api.get("/api/v1/jobs/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401


def test_nobody_revokes_another_users_token(signed_in, world):
    signed_in(world.bob).post(reverse("portal:tokens"), {"name": "bob's"})
    token = ApiToken.objects.get(name="bob's")
    signed_in(world.erin).post(reverse("portal:token-revoke", args=[token.pk]))
    assert ApiToken.objects.filter(pk=token.pk).exists()


# --- Signing in --------------------------------------------------------------------------------


def test_sign_in_and_out(client, world):
    response = client.post(reverse("login"), {"username": "erin", "password": "erin-pw-1"})
    assert response["Location"] == reverse("portal:home")
    assert client.post(reverse("logout"))["Location"] == reverse("login")
    assert client.get("/").status_code == 302


def test_failed_sign_ins_are_throttled_like_the_admins(client, world, settings):
    settings.ADMIN_LOGIN_THROTTLE = "2/min"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "t"}
    }
    for _ in range(2):
        client.post(reverse("login"), {"username": "erin", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "erin", "password": "erin-pw-1"})
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_password_reset_is_sent_by_email(client, world):
    world.erin.email = "erin@example.com"
    world.erin.save()
    response = client.post(reverse("password_reset"), {"email": "erin@example.com"})
    assert response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1 and "/accounts/reset/" in mail.outbox[0].body
