from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from datasets_app.api import DatasetViewSet
from jobs.api import CatalogModelViewSet, JobViewSet
from jobs.compare_api import JobCompareView
from jobs.merge_api import MergeJobView
from jobs.sweep_api import SweepViewSet
from ops.api import OpsView
from serving.api import EvaluationViewSet, GenerationViewSet
from studio import accounts, api, views
from usage.api import UsageView

router = SimpleRouter()
router.register("datasets", DatasetViewSet, basename="api-dataset")
router.register("models", CatalogModelViewSet, basename="api-model")
router.register("jobs", JobViewSet, basename="api-job")
router.register("sweeps", SweepViewSet, basename="api-sweep")
router.register("tokens", api.TokenViewSet, basename="api-token")
router.register("evaluations", EvaluationViewSet, basename="api-evaluation")
router.register("generations", GenerationViewSet, basename="api-generation")

api_v1 = [
    path("me/", api.MeView.as_view(), name="api-me"),
    path("me/password/", api.PasswordView.as_view(), name="api-me-password"),
    path("ops/", OpsView.as_view(), name="api-ops"),
    path("usage/", UsageView.as_view(), name="api-usage"),
    # Before the router, whose jobs/{job_id}/ would read "compare" or "merge" as an id.
    path("jobs/compare/", JobCompareView.as_view(), name="api-job-compare"),
    path("jobs/merge/", MergeJobView.as_view(), name="api-job-merge"),
    *router.urls,
]

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("status/", views.system_status, name="system-status"),
    path("healthz", views.healthz, name="healthz"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<uuid:token_id>/revoke/", views.revoke, name="token-revoke"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/password/", accounts.password_change, name="password-change"),
    path("", include("datasets_app.urls")),
    path("", include("jobs.urls")),
    path("", include("serving.urls")),
    path("", include("ops.urls")),
    path("", include("usage.urls")),
    path("ops/audit/", include("audit.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("v1/", include("serving.openai.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI's start-up script comes as a file of its own (?script), and
    # its page has no <style> block: the Content-Security-Policy allows neither.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="studio/api_docs.html"
        ),
        name="api-docs",
    ),
]

# JSON under /api/, the usual pages elsewhere.
handler400 = "studio.api_errors.bad_request"
handler404 = "studio.api_errors.page_not_found"
handler500 = "studio.api_errors.server_error"
