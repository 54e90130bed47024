from __future__ import annotations

from django.urls import path

from apps.webhooks.api import views

urlpatterns = [
    path("webhook-endpoints", views.EndpointListView.as_view(), name="webhook-endpoints"),
    path(
        "webhook-endpoints/<str:endpoint_id>",
        views.EndpointView.as_view(),
        name="webhook-endpoint",
    ),
    path(
        "webhook-endpoints/<str:endpoint_id>/rotate-secret",
        views.RotateSecretView.as_view(),
        name="webhook-endpoint-rotate-secret",
    ),
    path(
        "webhook-endpoints/<str:endpoint_id>/test",
        views.TestView.as_view(),
        name="webhook-endpoint-test",
    ),
    path(
        "webhook-endpoints/<str:endpoint_id>/messages",
        views.MessageListView.as_view(),
        name="webhook-endpoint-messages",
    ),
    path(
        "webhook-endpoints/<str:endpoint_id>/messages/<str:message_id>/replay",
        views.MessageReplayView.as_view(),
        name="webhook-message-replay",
    ),
]
