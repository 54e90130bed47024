from __future__ import annotations

from django.urls import path

from apps.templates.api import views

urlpatterns = [
    path("templates", views.TemplateListCreateView.as_view(), name="templates"),
    path("templates/<slug:key>", views.TemplateDetailView.as_view(), name="template-detail"),
    path(
        "templates/<slug:key>/versions",
        views.TemplateVersionListView.as_view(),
        name="template-versions",
    ),
    path(
        "templates/<slug:key>/versions/<int:number>",
        views.TemplateVersionDetailView.as_view(),
        name="template-version",
    ),
]
