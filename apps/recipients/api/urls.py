from __future__ import annotations

from django.urls import path

from apps.recipients.api import views

urlpatterns = [
    path("recipients/<str:external_id>", views.RecipientView.as_view(), name="recipient"),
    path(
        "recipients/<str:external_id>/preferences",
        views.PreferencesView.as_view(),
        name="recipient-preferences",
    ),
    path(
        "recipients/<str:external_id>/devices",
        views.DevicesView.as_view(),
        name="recipient-devices",
    ),
    path(
        "recipients/<str:external_id>/devices/<str:token>",
        views.DeviceView.as_view(),
        name="recipient-device",
    ),
    path(
        "recipients/<str:external_id>/token",
        views.RecipientTokenView.as_view(),
        name="recipient-token",
    ),
]
