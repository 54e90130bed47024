from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class TemplatesConfig(AppConfig):
    name = "apps.templates"
    label = "templates"
    verbose_name = "notification templates"

    def ready(self) -> None:
        from apps.templates.cache import template_changed
        from apps.templates.models import Template, TemplateVersion

        # Every write path (the services, the admin's metadata-only save, deletes and their
        # cascades) invalidates the per-process cache of current versions (cache.py).
        for model in (Template, TemplateVersion):
            post_save.connect(template_changed, sender=model, dispatch_uid=f"tcache-s-{model}")
            post_delete.connect(template_changed, sender=model, dispatch_uid=f"tcache-d-{model}")
