from __future__ import annotations

from django.urls import path

from apps.preferences import views

urlpatterns = [
    path("u/<str:token>", views.unsubscribe, name="unsubscribe"),
    path("preferences/<str:token>", views.preference_centre, name="preference-centre"),
]
