from django.urls import path

from videos import media, views

urlpatterns = [
    path("healthz/", views.health, name="health"),
    path("ops/status/", views.operations_status, name="operations-status"),
    path("metrics", views.metrics, name="metrics"),
    path("callbacks/kie/<uuid:job_id>/<str:token>/", views.kie_callback, name="kie-callback"),
    path("clips/<str:token>/", views.clip_by_link, name="clip-link"),
    path("files/jobs/<uuid:job_id>/clip/", media.job_clip, name="job-clip"),
    path("files/jobs/<uuid:job_id>/poster/", media.job_poster, name="job-poster"),
    path("files/jobs/<uuid:job_id>/source-image/", media.job_source_image, name="job-source-image"),
]
