from __future__ import annotations

from django.urls import path

from apps.analytics.api import views

urlpatterns = [
    path("analytics", views.AnalyticsView.as_view(), name="analytics"),
]
