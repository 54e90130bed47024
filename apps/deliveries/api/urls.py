from __future__ import annotations

from django.urls import path

from apps.deliveries.api import dead_letters, views

urlpatterns = [
    path("notifications", views.NotificationListCreateView.as_view(), name="notifications"),
    path(
        "notifications/<uuid:notification_id>",
        views.NotificationDetailView.as_view(),
        name="notification-detail",
    ),
    path(
        "notifications/<uuid:notification_id>/deliveries",
        views.NotificationDeliveriesView.as_view(),
        name="notification-deliveries",
    ),
    path(
        "notifications/<uuid:notification_id>/cancel",
        views.NotificationCancelView.as_view(),
        name="notification-cancel",
    ),
    path("dead-letters", dead_letters.DeadLetterListView.as_view(), name="dead-letters"),
    path(
        "dead-letters/replay",
        dead_letters.DeadLetterBulkReplayView.as_view(),
        name="dead-letters-replay",
    ),
    path(
        "dead-letters/<int:dead_letter_id>/replay",
        dead_letters.DeadLetterReplayView.as_view(),
        name="dead-letter-replay",
    ),
]
