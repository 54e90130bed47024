from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from apps.deliveries import webhooks
from apps.ops.analytics_page import analytics_view
from apps.ops.dashboard import dashboard_view
from apps.ops.health import healthz, readyz
from apps.ops.views import metrics_view

api_v1 = [
    path("", include("apps.analytics.api.urls")),
    path("", include("apps.deliveries.api.urls")),
    path("", include("apps.inbox.api.urls")),
    path("", include("apps.preferences.api.urls")),
    path("", include("apps.recipients.api.urls")),
    path("", include("apps.templates.api.urls")),
    path("", include("apps.topics.api.urls")),
    path("", include("apps.webhooks.api.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html"),
        name="redoc",
    ),
    path("admin/dashboard/", dashboard_view, name="ops-dashboard"),
    path("admin/analytics/", analytics_view, name="ops-analytics"),
    path("admin/", admin.site.urls),
    path("demo/", include("apps.ops.demo_urls")),
    path("", include("apps.preferences.urls")),
    path("webhooks/sendgrid", webhooks.sendgrid_events, name="webhook-sendgrid"),
    path("webhooks/twilio/status", webhooks.twilio_status, name="webhook-twilio-status"),
]

if settings.BENCH_ENDPOINTS:  # the ceiling `make bench` compares the API with
    urlpatterns.append(path("bench/", include("apps.benchmarks.urls")))

handler404 = "apps.core.views.not_found"
handler500 = "apps.core.views.server_error"
