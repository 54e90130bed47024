from __future__ import annotations

from django.urls import path

from apps.topics.api import views

urlpatterns = [
    path("topics", views.TopicListView.as_view(), name="topics"),
    path("topics/<str:key>", views.TopicView.as_view(), name="topic"),
    path("topics/<str:key>/subscribers", views.SubscribersView.as_view(), name="topic-subscribers"),
]
