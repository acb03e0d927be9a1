"""Prompts and their versions: `GET, POST /prompts/`, `GET, PATCH /prompts/{id}/`,
`GET /prompts/{id}/versions/`. New text makes a new version; old versions are kept."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from videos import prompt_templates, selectors, services
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
from videos.api.serializers import TeamObjectField, prompt_field
from videos.models import Prompt, PromptVersion, Role


class PromptSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    title = serializers.CharField()
    text = serializers.CharField(source="current_text", help_text="The current version's text.")
    version = serializers.IntegerField(
        source="current_number", help_text="The current version's number."
    )
    version_id = serializers.IntegerField(
        source="current_id", help_text="The current version's id (a job's `prompt_version`)."
    )
    variables = serializers.SerializerMethodField(
        help_text="The current version's placeholders, like `product` for {product}: what a "
        "batch's rows fill."
    )
    created = serializers.DateTimeField()

    def get_variables(self, prompt: Prompt) -> list[str]:
        return prompt_templates.variables_of(prompt.current_text or "")  # type: ignore[attr-defined]

    updated = serializers.DateTimeField()


class PromptVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField(
        help_text="Give it as a job's `prompt_version`, or give the prompt's id as `prompt_id` "
        "and this `number` as `version`."
    )
    number = serializers.IntegerField()
    text = serializers.CharField()
    variables = serializers.SerializerMethodField(help_text="The version's placeholders.")
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created = serializers.DateTimeField()

    def get_variables(self, version: PromptVersion) -> list[str]:
        return prompt_templates.variables_of(version.text)


def _project_filter(request: Request) -> int | None:
    value = request.query_params.get("project")
    if value in (None, ""):
        return None
    pk = selectors.id_or_none(value)
    if pk is None:
        raise serializers.ValidationError({"project": ["A valid project id is required."]})
    return pk


class PromptCreateInput(serializers.Serializer):
    project = TeamObjectField(
        lookup=lambda user, pk: selectors.project_get(user=user, project_id=pk), name="project"
    )
    title = serializers.CharField(max_length=200)
    text = prompt_field()


class PromptListApi(ApiView):
    @extend_schema(
        operation_id="prompts_list",
        parameters=[
            OpenApiParameter(
                "project", OpenApiTypes.INT, description="Only this project's prompts."
            ),
            *PAGE_PARAMETERS,
        ],
        responses={200: page_of(PromptSerializer, "PromptPage"), **error_responses(400, 404)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        prompts = selectors.prompt_list(user=request.user)
        project_id = _project_filter(request)
        if project_id is not None:
            prompts = prompts.filter(project_id=project_id)
        return paginated_response(
            request,
            self,
            prompts,
            ordering="created",
            to_data=lambda rows: PromptSerializer(rows, many=True).data,
        )

    @extend_schema(
        operation_id="prompts_create",
        request=PromptCreateInput,
        responses={201: PromptSerializer, **error_responses(400, 403, 413)},
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = PromptCreateInput(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        project = data.validated_data["project"]
        require_role(request.user, project.team_id, Role.EDITOR)
        prompt = services.prompt_create(
            project=project,
            title=data.validated_data["title"],
            text=data.validated_data["text"],
            by=request.user,
        )
        prompt = found(selectors.prompt_get(user=request.user, prompt_id=prompt.pk))
        return Response(PromptSerializer(prompt).data, status=status.HTTP_201_CREATED)


class PromptUpdateInput(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    text = prompt_field(required=False, help_text="New text becomes a new version.")


class PromptDetailApi(ApiView):
    def _prompt(self, request: AuthenticatedRequest, prompt_id: str) -> Prompt:
        return found(selectors.prompt_get(user=request.user, prompt_id=prompt_id))

    @extend_schema(
        operation_id="prompts_retrieve",
        parameters=[id_parameter("prompt_id")],
        responses={200: PromptSerializer, **error_responses(400, 404)},
    )
    def get(self, request: AuthenticatedRequest, prompt_id: str) -> Response:
        return Response(PromptSerializer(self._prompt(request, prompt_id)).data)

    @extend_schema(
        operation_id="prompts_update",
        parameters=[id_parameter("prompt_id")],
        request=PromptUpdateInput,
        responses={200: PromptSerializer, **error_responses(400, 403, 404, 413)},
    )
    def patch(self, request: AuthenticatedRequest, prompt_id: str) -> Response:
        prompt = self._prompt(request, prompt_id)
        require_role(request.user, prompt.project.team_id, Role.EDITOR)
        data = PromptUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.prompt_update(prompt=prompt, by=request.user, **data.validated_data)
        return Response(PromptSerializer(self._prompt(request, prompt_id)).data)


class PromptVersionListApi(ApiView):
    @extend_schema(
        operation_id="prompts_versions_list",
        parameters=[id_parameter("prompt_id"), *PAGE_PARAMETERS],
        responses={
            200: page_of(PromptVersionSerializer, "PromptVersionPage"),
            **error_responses(400, 404),
        },
    )
    def get(self, request: AuthenticatedRequest, prompt_id: str) -> Response:
        prompt: Any = found(selectors.prompt_get(user=request.user, prompt_id=prompt_id))
        return paginated_response(
            request,
            self,
            selectors.prompt_version_list(prompt=prompt),
            ordering="-number",
            to_data=lambda rows: PromptVersionSerializer(rows, many=True).data,
        )
