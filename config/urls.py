from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path

from videos.portal.forms import SignInForm

# Stored files (clips, posters, source images) have no public URL, in development either: they
# are served by the membership-checked views in `videos.media`.
urlpatterns: list[URLPattern | URLResolver] = [
    path("admin/", admin.site.urls),
    path("api/", include("videos.api.urls")),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            authentication_form=SignInForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("videos.urls")),
    path("", include("videos.portal.urls")),
]

handler500 = "videos.api.errors.server_error"
