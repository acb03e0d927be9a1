"""Teams and their members: `GET /teams/`, `GET, POST /teams/{id}/members/`,
`PATCH, DELETE /teams/{id}/members/{user_id}/`. Owners manage members."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from videos import selectors, services
from videos.api.base import (
    PAGE_PARAMETERS,
    ApiView,
    id_parameter,
    page_of,
    paginated_response,
)
from videos.api.errors import error_responses
from videos.api.permissions import found, require_role
from videos.api.serializers import choice
from videos.models import Membership, Role, Team


class TeamSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    role = choice(Role, help_text="Your role in the team.")


class MemberSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField(source="user.username")
    role = choice(Role)
    joined = serializers.DateTimeField(source="created")


class TeamListApi(ApiView):
    @extend_schema(
        operation_id="teams_list",
        parameters=PAGE_PARAMETERS,
        responses={200: page_of(TeamSerializer, "TeamPage"), **error_responses(404)},
    )
    def get(self, request: Request) -> Response:
        def to_data(teams: list[Team]) -> list[dict[str, Any]]:
            roles = {
                membership.team_id: membership.role
                for membership in Membership.objects.filter(user=request.user, team__in=teams)
            }
            return [
                TeamSerializer({"id": t.pk, "name": t.name, "slug": t.slug, "role": roles[t.pk]}).data
                for t in teams
            ]

        return paginated_response(
            request, self, selectors.team_list(user=request.user), ordering="created", to_data=to_data
        )


class MemberCreateInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = choice(Role)


class MemberListApi(ApiView):
    @extend_schema(
        operation_id="teams_members_list",
        parameters=[id_parameter("team_id"), *PAGE_PARAMETERS],
        responses={200: page_of(MemberSerializer, "MemberPage"), **error_responses(404)},
    )
    def get(self, request: Request, team_id: str) -> Response:
        team: Any = found(selectors.team_get(user=request.user, team_id=team_id))
        return paginated_response(
            request, self, selectors.membership_list(team=team), ordering="created",
            to_data=lambda rows: MemberSerializer(rows, many=True).data,
        )

    @extend_schema(
        operation_id="teams_members_create",
        parameters=[id_parameter("team_id")],
        request=MemberCreateInput,
        responses={201: MemberSerializer, **error_responses(400, 403, 404, 409, 413)},
    )
    def post(self, request: Request, team_id: str) -> Response:
        team: Any = found(selectors.team_get(user=request.user, team_id=team_id))
        require_role(request.user, team.pk, Role.OWNER)
        data = MemberCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_add(team=team, **data.validated_data)
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


class MemberUpdateInput(serializers.Serializer):
    role = choice(Role)


class MemberDetailApi(ApiView):
    def _membership(self, request: Request, team_id: str, user_id: str) -> Membership:
        team: Any = found(selectors.team_get(user=request.user, team_id=team_id))
        require_role(request.user, team.pk, Role.OWNER)
        return found(selectors.membership_get(team=team, user_id=user_id))

    @extend_schema(
        operation_id="teams_members_update",
        parameters=[id_parameter("team_id"), id_parameter("user_id")],
        request=MemberUpdateInput,
        responses={200: MemberSerializer, **error_responses(400, 403, 404, 409, 413)},
    )
    def patch(self, request: Request, team_id: str, user_id: str) -> Response:
        membership = self._membership(request, team_id, user_id)
        data = MemberUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_set_role(membership=membership, role=data.validated_data["role"])
        return Response(MemberSerializer(membership).data)

    @extend_schema(
        operation_id="teams_members_destroy",
        parameters=[id_parameter("team_id"), id_parameter("user_id")],
        responses={204: None, **error_responses(403, 404, 409)},
    )
    def delete(self, request: Request, team_id: str, user_id: str) -> Response:
        services.membership_remove(membership=self._membership(request, team_id, user_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
