from __future__ import annotations

from django.urls import path

from apps.preferences.api import views

urlpatterns = [
    path(
        "recipients/<str:external_id>/preferences-link",
        views.PreferencesLinkView.as_view(),
        name="recipient-preferences-link",
    ),
]
