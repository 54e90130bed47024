"""The project's URLs with the bench endpoints on (as BENCH_ENDPOINTS=1 gives)."""

from __future__ import annotations

from django.urls import include, path

from config.urls import handler404, handler500
from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [*project_urlpatterns, path("bench/", include("apps.benchmarks.urls"))]

__all__ = ["handler404", "handler500", "urlpatterns"]
