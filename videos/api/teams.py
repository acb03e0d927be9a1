"""Teams, their members and invitations.

`GET /teams/`; `GET /teams/{id}/members/`, `PATCH, DELETE /teams/{id}/members/{user_id}/`
(owners); `POST /teams/{id}/leave/`; `GET, POST /teams/{id}/invitations/` and
`DELETE /teams/{id}/invitations/{id}/` (owners); `GET /invitations/` and
`POST /invitations/{id}/accept/`, `/decline/` (the invitee). Nobody joins a team but by
accepting an invitation."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from videos import selectors, services
from videos.api.base import (
    PAGE_PARAMETERS,
    ApiView,
    AuthenticatedRequest,
    id_parameter,
    page_of,
    paginated_response,
)
from videos.api.errors import error_responses
from videos.api.permissions import found, require_role
from videos.api.serializers import choice
from videos.models import InvitationStatus, Membership, Role, Team


class TeamSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    role = choice(Role, help_text="Your role in the team.")
    personal = serializers.BooleanField(
        help_text="Your own team, where your projects go by default."
    )


class MemberSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField(source="user.username")
    role = choice(Role)
    joined = serializers.DateTimeField(source="created")


class TeamListApi(ApiView):
    @extend_schema(
        operation_id="teams_list",
        parameters=PAGE_PARAMETERS,
        responses={200: page_of(TeamSerializer, "TeamPage"), **error_responses(400, 404)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        def to_data(teams: list[Team]) -> list[dict[str, Any]]:
            roles = {
                membership.team_id: membership.role
                for membership in Membership.objects.filter(user=request.user, team__in=teams)
            }
            return [
                TeamSerializer(
                    {
                        "id": t.pk,
                        "name": t.name,
                        "slug": t.slug,
                        "role": roles[t.pk],
                        "personal": t.personal_for_id == request.user.pk,
                    }
                ).data
                for t in teams
            ]

        return paginated_response(
            request,
            self,
            selectors.team_list(user=request.user),
            ordering="created",
            to_data=to_data,
        )


class MemberListApi(ApiView):
    @extend_schema(
        operation_id="teams_members_list",
        parameters=[id_parameter("team_id"), *PAGE_PARAMETERS],
        responses={200: page_of(MemberSerializer, "MemberPage"), **error_responses(400, 404)},
    )
    def get(self, request: AuthenticatedRequest, team_id: str) -> Response:
        team: Any = found(selectors.team_get(user=request.user, team_id=team_id))
        return paginated_response(
            request,
            self,
            selectors.membership_list(team=team),
            ordering="created",
            to_data=lambda rows: MemberSerializer(rows, many=True).data,
        )


class TeamLeaveApi(ApiView):
    @extend_schema(
        operation_id="teams_leave",
        parameters=[id_parameter("team_id")],
        request=None,
        responses={204: None, **error_responses(404, 409)},
        description="Leave the team. Its last owner cannot (409 `last_owner`), nor can anyone "
        "leave their own team.",
    )
    def post(self, request: AuthenticatedRequest, team_id: str) -> Response:
        team: Any = found(selectors.team_get(user=request.user, team_id=team_id))
        services.membership_leave(team=team, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Invitations -----------------------------------------------------------------------------


class InvitationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    team = serializers.IntegerField(source="team_id")
    team_name = serializers.CharField(source="team.name")
    username = serializers.CharField(help_text="The invitee, when named by username.")
    email = serializers.CharField(help_text="The invitee, when named by email.")
    role = choice(Role)
    status = choice(InvitationStatus)
    invited_by = serializers.CharField(source="invited_by.username", allow_null=True, default=None)
    created = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


class InvitationCreateInput(serializers.Serializer):
    username = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    role = choice(Role)


class TeamInvitationListApi(ApiView):
    def _team(self, request: AuthenticatedRequest, team_id: str) -> Any:
        team: Any = found(selectors.team_get(user=request.user, team_id=team_id))
        require_role(request.user, team.pk, Role.OWNER)
        return team

    @extend_schema(
        operation_id="teams_invitations_list",
        parameters=[id_parameter("team_id"), *PAGE_PARAMETERS],
        responses={
            200: page_of(InvitationSerializer, "InvitationPage"),
            **error_responses(400, 403, 404),
        },
        description="The team's invitations still waiting for an answer (owners).",
    )
    def get(self, request: AuthenticatedRequest, team_id: str) -> Response:
        team = self._team(request, team_id)
        return paginated_response(
            request,
            self,
            selectors.team_invitations(team=team),
            ordering="created",
            to_data=lambda rows: InvitationSerializer(rows, many=True).data,
        )

    @extend_schema(
        operation_id="teams_invitations_create",
        parameters=[id_parameter("team_id")],
        request=InvitationCreateInput,
        responses={201: InvitationSerializer, **error_responses(400, 403, 404, 413)},
        description="Invite someone by `username` or `email` to take `role` in the team for 7 "
        "days. The answer is the same whether or not such a user exists; they join only by "
        "accepting. Inviting the same person again renews the invitation.",
    )
    def post(self, request: AuthenticatedRequest, team_id: str) -> Response:
        team = self._team(request, team_id)
        data = InvitationCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = services.invitation_create(team=team, by=request.user, **data.validated_data)
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class TeamInvitationDetailApi(ApiView):
    @extend_schema(
        operation_id="teams_invitations_destroy",
        parameters=[id_parameter("team_id"), id_parameter("invitation_id")],
        responses={204: None, **error_responses(403, 404, 409)},
        description="Withdraw a pending invitation (owners).",
    )
    def delete(self, request: AuthenticatedRequest, team_id: str, invitation_id: str) -> Response:
        team: Any = found(selectors.team_get(user=request.user, team_id=team_id))
        require_role(request.user, team.pk, Role.OWNER)
        pk = selectors.id_or_none(invitation_id)
        invitation: Any = found(team.invitations.filter(pk=pk).first() if pk else None)
        services.invitation_revoke(invitation=invitation, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyInvitationListApi(ApiView):
    @extend_schema(
        operation_id="invitations_list",
        parameters=PAGE_PARAMETERS,
        responses={
            200: page_of(InvitationSerializer, "MyInvitationPage"),
            **error_responses(400, 404),
        },
        description="Your pending invitations, by your username or your email.",
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        return paginated_response(
            request,
            self,
            selectors.invitations_for(user=request.user),
            ordering="created",
            to_data=lambda rows: InvitationSerializer(rows, many=True).data,
        )


class _AnswerApi(ApiView):
    def _invitation(self, request: AuthenticatedRequest, invitation_id: str) -> Any:
        return found(selectors.invitation_for(user=request.user, invitation_id=invitation_id))


class InvitationAcceptApi(_AnswerApi):
    @extend_schema(
        operation_id="invitations_accept",
        parameters=[id_parameter("invitation_id")],
        request=None,
        responses={200: MemberSerializer, **error_responses(404, 409)},
        description="Join the team with the invitation's role. An expired or answered "
        "invitation is 409 `invitation_closed`.",
    )
    def post(self, request: AuthenticatedRequest, invitation_id: str) -> Response:
        invitation = self._invitation(request, invitation_id)
        membership = services.invitation_accept(invitation=invitation, by=request.user)
        return Response(MemberSerializer(membership).data)


class InvitationDeclineApi(_AnswerApi):
    @extend_schema(
        operation_id="invitations_decline",
        parameters=[id_parameter("invitation_id")],
        request=None,
        responses={200: InvitationSerializer, **error_responses(404, 409)},
    )
    def post(self, request: AuthenticatedRequest, invitation_id: str) -> Response:
        invitation = self._invitation(request, invitation_id)
        declined = services.invitation_decline(invitation=invitation, by=request.user)
        return Response(InvitationSerializer(declined).data)


class MemberUpdateInput(serializers.Serializer):
    role = choice(Role)


class MemberDetailApi(ApiView):
    def _membership(self, request: AuthenticatedRequest, team_id: str, user_id: str) -> Membership:
        team: Any = found(selectors.team_get(user=request.user, team_id=team_id))
        require_role(request.user, team.pk, Role.OWNER)
        return found(selectors.membership_get(team=team, user_id=user_id))

    @extend_schema(
        operation_id="teams_members_update",
        parameters=[id_parameter("team_id"), id_parameter("user_id")],
        request=MemberUpdateInput,
        responses={200: MemberSerializer, **error_responses(400, 403, 404, 409, 413)},
    )
    def patch(self, request: AuthenticatedRequest, team_id: str, user_id: str) -> Response:
        membership = self._membership(request, team_id, user_id)
        data = MemberUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_set_role(
            membership=membership, role=data.validated_data["role"]
        )
        return Response(MemberSerializer(membership).data)

    @extend_schema(
        operation_id="teams_members_destroy",
        parameters=[id_parameter("team_id"), id_parameter("user_id")],
        responses={204: None, **error_responses(403, 404, 409)},
    )
    def delete(self, request: AuthenticatedRequest, team_id: str, user_id: str) -> Response:
        services.membership_remove(membership=self._membership(request, team_id, user_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
