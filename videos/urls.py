from django.urls import path

from videos import views

urlpatterns = [
    path("healthz/", views.health, name="health"),
    path("callbacks/kie/<uuid:job_id>/<str:token>/", views.kie_callback, name="kie-callback"),
    path("clips/<str:token>/", views.clip_by_link, name="clip-link"),
]
