"""Teams, their members and invitations."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from videos import services
from videos.admin.base import ServiceAdmin, ServiceForm, acting_user, adopt
from videos.admin_scope import (
    SUPERUSERS,
    SuperusersOnly,
    TeamScopedAdmin,
    TeamScopedInline,
    team_action,
)
from videos.admin_site import confirmation_page, confirmed
from videos.models import (
    Invitation,
    InvitationStatus,
    Membership,
    Role,
    Team,
)


class MembershipInlineForm(ServiceForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and "user" in self.fields:
            # Giving a membership to someone else would be a removal and an addition.
            self.fields["user"].disabled = True


class MembershipInline(TeamScopedInline, admin.TabularInline):
    """A team's members on its page (superusers'; staff see members in the Membership list)."""

    model = Membership
    form = MembershipInlineForm
    extra = 0
    autocomplete_fields = ["user"]
    add_right = change_right = delete_right = SUPERUSERS


def save_member_rows(*, team: Team, formset: Any) -> None:
    """Apply the team page's member rows through the membership services.

    Additions and promotions to owner go first, demotions and removals last, so ownership can
    be handed over in one save; a save that would still leave the team without an owner is
    refused (`LastOwner`) and undone as a whole.
    """
    deleted_forms = formset.deleted_forms
    rows = [row for row in formset.forms if row.has_changed() and row not in deleted_forms]
    deleted = [row for row in deleted_forms if row.instance.pk is not None]
    added = [row for row in rows if row.instance.pk is None]
    recast = sorted(
        (row for row in rows if row.instance.pk is not None and "role" in row.changed_data),
        key=lambda row: row.cleaned_data["role"] != Role.OWNER,
    )
    formset.new_objects = [
        services.membership_add_user(
            team=team, user=row.cleaned_data["user"], role=row.cleaned_data["role"]
        )
        for row in added
    ]
    formset.changed_objects = []
    for row in recast:
        role = row.cleaned_data["role"]
        membership = services.membership_set_role(membership=row.instance, role=role)
        formset.changed_objects.append((membership, ["role"]))
    for row in deleted:
        services.membership_remove(membership=row.instance)
    formset.deleted_objects = [row.instance for row in deleted]


@admin.register(Team)
class TeamAdmin(SuperusersOnly, ServiceAdmin):
    """Teams are made and renamed by superusers; members join them by invitation."""

    list_display = ["name", "slug", "personal_for", "created"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["personal_for"]
    inlines = [MembershipInline]

    def save_model(self, request: HttpRequest, obj: Team, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            services.team_update(team=obj, name=data["name"], slug=data["slug"])
        else:
            adopt(obj, services.team_create(name=data["name"], slug=data["slug"]))

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is Membership:
            save_member_rows(team=form.instance, formset=formset)
        else:
            super().save_formset(request, form, formset, change)

    def delete_check(self, obj: Team) -> None:
        services.team_delete_check(team=obj)

    def delete_model(self, request: HttpRequest, obj: Team) -> None:
        services.team_delete(team=obj)


@admin.register(Membership)
class MembershipAdmin(TeamScopedAdmin, ServiceAdmin):
    """Members read their teams' members; owners remove members (people join by invitation);
    superusers also add members and change roles directly."""

    list_display = ["user", "team", "role", "created"]
    list_filter = ["role", "team"]
    search_fields = ["user__username", "team__name"]
    autocomplete_fields = ["user", "team"]
    list_select_related = ["user", "team"]
    add_right = change_right = SUPERUSERS
    delete_right = Role.OWNER

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Moving a membership to another user or team would be a removal and an addition.
        return ["user", "team"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            saved = services.membership_add_user(
                team=data["team"], user=data["user"], role=data["role"]
            )
            adopt(obj, saved)
        elif "role" in form.changed_data:
            services.membership_set_role(membership=obj, role=data["role"])

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.membership_remove(membership=obj)


class InvitationForm(ServiceForm):
    class Meta:
        model = Invitation
        fields = ["team", "username", "email", "role"]
        help_texts = {
            "username": "Name the person by username or by email, not both.",
            "email": "They join only by accepting it (API: POST /api/v1/invitations/<id>/accept/); "
            "it expires after 7 days.",
        }


@admin.register(Invitation)
class InvitationAdmin(TeamScopedAdmin, ServiceAdmin):
    """Owners invite people to their teams (`services.invitation_create`) and revoke pending
    invitations; nobody edits one."""

    form = InvitationForm
    list_display = ["invitee", "team", "role", "status", "invited_by", "created", "expires_at"]
    list_filter = ["status", "role", "team"]
    search_fields = ["username", "email"]
    list_select_related = ["team", "invited_by"]
    view_right = add_right = Role.OWNER
    actions = ["revoke_invitations"]

    @admin.display(description="invitee")
    def invitee(self, invitation: Invitation) -> str:
        return invitation.username or invitation.email

    def save_model(self, request: HttpRequest, obj: Invitation, form: Any, change: bool) -> None:
        data = form.cleaned_data
        saved = services.invitation_create(
            team=data["team"],
            role=data["role"],
            by=acting_user(request),
            username=data.get("username") or "",
            email=data.get("email") or "",
        )
        adopt(obj, saved)

    @team_action(right=Role.OWNER, description="Revoke selected pending invitations")
    def revoke_invitations(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        invitations = list(queryset.select_related("team"))
        pending = [i for i in invitations if i.status == InvitationStatus.PENDING]
        if not confirmed(request):
            return confirmation_page(
                self,
                request,
                action="revoke_invitations",
                title="Revoke invitations",
                rows=[
                    (
                        i,
                        "Revoked: it can no longer be accepted."
                        if i in pending
                        else f"Nothing: it was {i.status} already.",
                    )
                    for i in invitations
                ],
                question=f"Revoke {len(pending)} of {len(invitations)} invitations?",
                button="Yes, revoke them",
            )
        for invitation in pending:
            services.invitation_revoke(invitation=invitation, by=acting_user(request))
        self.message_user(request, f"Revoked {len(pending)} of {len(invitations)} invitations.")
        return None
