"""Projects: `GET, POST /projects/`, `GET, PATCH, DELETE /projects/{id}/`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from billing import services as billing_services
from billing.selectors import ProjectMoney, project_money, projects_money
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
from videos.api.serializers import MONEY, OptionalBooleanField, TeamObjectField, choice
from videos.models import AspectRatio, Duration, Project, Provider, Role

BUDGET_HELP = "The monthly spending cap in USD; null for none. Only owners set it."
PROVIDER_HELP = (
    "Which provider makes the project's clips: kie (kie.ai) or kling (the official Kling API, "
    "with the installation's own account). Jobs already made keep theirs."
)


class ProjectSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    team = serializers.IntegerField(source="team_id")
    name = serializers.CharField()
    description = serializers.CharField()
    default_duration = serializers.ChoiceField(choices=Duration.choices)
    default_aspect_ratio = choice(AspectRatio)
    default_sound = serializers.BooleanField()
    provider = choice(Provider, help_text=PROVIDER_HELP)
    monthly_budget_usd = serializers.DecimalField(**MONEY, allow_null=True, help_text=BUDGET_HELP)
    spent_this_month_usd = serializers.DecimalField(**MONEY)
    reserved_usd = serializers.DecimalField(**MONEY, help_text="Set aside for jobs in progress.")
    remaining_this_month_usd = serializers.DecimalField(
        **MONEY, allow_null=True, help_text="What the budget still allows (null: no budget)."
    )
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()


def project_data(project: Project, money: ProjectMoney) -> dict[str, Any]:
    return ProjectSerializer(
        {
            **{
                field: getattr(project, field)
                for field in (
                    "id",
                    "team_id",
                    "name",
                    "description",
                    "default_duration",
                    "default_aspect_ratio",
                    "default_sound",
                    "provider",
                    "created",
                    "updated",
                )
            },
            "monthly_budget_usd": money.cap_usd,
            "spent_this_month_usd": money.spent_usd,
            "reserved_usd": money.reserved_usd,
            "remaining_this_month_usd": money.remaining_usd,
        }
    ).data


def _budget_field() -> serializers.DecimalField:
    return serializers.DecimalField(
        **MONEY, min_value=Decimal("0"), allow_null=True, required=False, help_text=BUDGET_HELP
    )


class ProjectCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    team = TeamObjectField(
        lookup=lambda user, pk: selectors.team_get(user=user, team_id=pk),
        name="team",
        required=False,
        help_text="Default: your first team.",
    )
    default_duration = serializers.ChoiceField(choices=Duration.choices, required=False)
    default_aspect_ratio = choice(AspectRatio, required=False)
    default_sound = OptionalBooleanField(required=False)
    provider = choice(Provider, required=False, help_text=PROVIDER_HELP)
    monthly_budget_usd = _budget_field()


class ProjectListApi(ApiView):
    @extend_schema(
        operation_id="projects_list",
        parameters=PAGE_PARAMETERS,
        responses={200: page_of(ProjectSerializer, "ProjectPage"), **error_responses(400, 404)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        def to_data(projects: list[Project]) -> list[dict[str, Any]]:
            money = projects_money(projects)
            return [project_data(project, money[project.pk]) for project in projects]

        return paginated_response(
            request,
            self,
            selectors.project_list(user=request.user),
            ordering="created",
            to_data=to_data,
        )

    @extend_schema(
        operation_id="projects_create",
        request=ProjectCreateInput,
        responses={201: ProjectSerializer, **error_responses(400, 403, 413)},
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = ProjectCreateInput(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        team = found(values.pop("team", None) or selectors.team_default(user=request.user))
        require_role(request.user, team.pk, Role.EDITOR)
        if values.get("monthly_budget_usd") is not None:
            require_role(request.user, team.pk, Role.OWNER)
        project = services.project_create(team=team, **values)
        return Response(
            project_data(project, project_money(project)), status=status.HTTP_201_CREATED
        )


class ProjectUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    default_duration = serializers.ChoiceField(choices=Duration.choices, required=False)
    default_aspect_ratio = choice(AspectRatio, required=False)
    default_sound = OptionalBooleanField(required=False)
    provider = choice(Provider, required=False, help_text=PROVIDER_HELP)
    monthly_budget_usd = _budget_field()


class ProjectDetailApi(ApiView):
    def _project(self, request: AuthenticatedRequest, project_id: str) -> Project:
        return found(selectors.project_get(user=request.user, project_id=project_id))

    @extend_schema(
        operation_id="projects_retrieve",
        parameters=[id_parameter("project_id")],
        responses={200: ProjectSerializer, **error_responses(400, 404)},
    )
    def get(self, request: AuthenticatedRequest, project_id: str) -> Response:
        project = self._project(request, project_id)
        return Response(project_data(project, project_money(project)))

    @extend_schema(
        operation_id="projects_update",
        parameters=[id_parameter("project_id")],
        request=ProjectUpdateInput,
        responses={200: ProjectSerializer, **error_responses(400, 403, 404, 413)},
    )
    def patch(self, request: AuthenticatedRequest, project_id: str) -> Response:
        project = self._project(request, project_id)
        require_role(request.user, project.team_id, Role.EDITOR)
        data = ProjectUpdateInput(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        budget_changed = "monthly_budget_usd" in changes
        cap = changes.pop("monthly_budget_usd", None)
        if budget_changed:
            require_role(request.user, project.team_id, Role.OWNER)
        if changes:
            services.project_update(project=project, **changes)
        if budget_changed:
            billing_services.budget_set(project=project, monthly_cap_usd=cap)
        project = self._project(request, project_id)
        return Response(project_data(project, project_money(project)))

    @extend_schema(
        operation_id="projects_destroy",
        parameters=[id_parameter("project_id")],
        responses={204: None, **error_responses(403, 404, 409)},
    )
    def delete(self, request: AuthenticatedRequest, project_id: str) -> Response:
        project = self._project(request, project_id)
        require_role(request.user, project.team_id, Role.OWNER)
        services.project_delete(project=project)
        return Response(status=status.HTTP_204_NO_CONTENT)
