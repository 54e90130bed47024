from __future__ import annotations

from django.urls import path

from apps.benchmarks import views

urlpatterns = [
    path("notifications", views.BareNotificationView.as_view(), name="bench-notifications"),
]
