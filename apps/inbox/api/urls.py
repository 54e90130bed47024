from __future__ import annotations

from django.urls import path

from apps.inbox.api import views

urlpatterns = [
    path("inbox", views.InboxListView.as_view(), name="inbox"),
    path("inbox/unread-count", views.InboxUnreadCountView.as_view(), name="inbox-unread-count"),
    path("inbox/read-all", views.InboxReadAllView.as_view(), name="inbox-read-all"),
    path("inbox/seen", views.InboxSeenView.as_view(), name="inbox-seen"),
    path("inbox/<int:message_id>/read", views.InboxReadView.as_view(), name="inbox-read"),
]
