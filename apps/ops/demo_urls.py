from __future__ import annotations

from django.urls import path

from apps.ops import demo

urlpatterns = [
    path("bell", demo.bell_demo, name="demo-bell"),
    path("bell/send", demo.bell_demo_send, name="demo-bell-send"),
]
