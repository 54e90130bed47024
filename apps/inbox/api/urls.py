from __future__ import annotations

from django.urls import path

from apps.inbox.api import views
from apps.inbox.stream import inbox_stream

urlpatterns = [
    path("inbox", views.InboxListView.as_view(), name="inbox"),
    path("inbox/unread-count", views.InboxUnreadCountView.as_view(), name="inbox-unread-count"),
    path("inbox/read-all", views.InboxReadAllView.as_view(), name="inbox-read-all"),
    path("inbox/seen", views.InboxSeenView.as_view(), name="inbox-seen"),
    path("inbox/stream", inbox_stream, name="inbox-stream"),
    path("inbox/<int:message_id>/read", views.InboxReadView.as_view(), name="inbox-read"),
    path("inbox/<int:message_id>/archive", views.InboxArchiveView.as_view(), name="inbox-archive"),
    path(
        "inbox/<int:message_id>/unarchive",
        views.InboxUnarchiveView.as_view(),
        name="inbox-unarchive",
    ),
]
