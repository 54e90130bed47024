"""Every registered admin model: changelist (plain, searched, filtered) and one change page."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable

import factory
import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.db import models
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import tests.factories as factories_module


def _project_factories() -> dict[type[models.Model], Callable[[], models.Model]]:
    found: dict[type[models.Model], Callable[[], models.Model]] = {}
    for _, cls in inspect.getmembers(factories_module, inspect.isclass):
        if issubclass(cls, factory.django.DjangoModelFactory) and cls._meta.model is not None:
            found.setdefault(cls._meta.model, cls)
    return found


def _third_party_builders() -> dict[str, Callable[[], models.Model]]:
    """Models registered by Django and django-celery-beat (no factory in tests/factories)."""
    from django_celery_beat import models as beat

    def periodic_task() -> models.Model:
        interval = beat.IntervalSchedule.objects.create(every=30, period="seconds")
        return beat.PeriodicTask.objects.create(
            name="admin-test", task="deliveries.reconcile", interval=interval
        )

    return {
        "auth.user": lambda: User.objects.create_user("someone", password="x"),
        "auth.group": lambda: Group.objects.create(name="operators"),
        "django_celery_beat.intervalschedule": lambda: beat.IntervalSchedule.objects.create(
            every=10, period="seconds"
        ),
        "django_celery_beat.crontabschedule": lambda: beat.CrontabSchedule.objects.create(),
        "django_celery_beat.solarschedule": lambda: beat.SolarSchedule.objects.create(
            event="sunrise", latitude=38.7, longitude=-9.1
        ),
        "django_celery_beat.clockedschedule": lambda: beat.ClockedSchedule.objects.create(
            clocked_time=timezone.now() + dt.timedelta(days=1)
        ),
        "django_celery_beat.periodictask": periodic_task,
    }


def _build(model: type[models.Model]) -> models.Model:
    project = _project_factories()
    if model in project:
        return project[model]()
    label = model._meta.label_lower
    builders = _third_party_builders()
    assert label in builders, f"{label} is registered in the admin but has no factory"
    return builders[label]()


REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model", "model_admin"), REGISTERED, ids=[m._meta.label for m, _ in REGISTERED]
)
def test_changelist_and_change_page_render(
    staff: Client, model: type[models.Model], model_admin: admin.ModelAdmin
) -> None:
    obj = _build(model)
    meta = model._meta
    changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")

    listing = staff.get(changelist)
    change = staff.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk]))

    assert listing.status_code == 200
    assert change.status_code == 200
    assert str(obj.pk) in listing.content.decode() or listing.context["cl"].result_count >= 1
    if model.__module__.startswith("apps."):
        assert model_admin.search_fields, f"{meta.label} admin is not searchable"
        assert model_admin.list_filter, f"{meta.label} admin has no filters"
    searched = staff.get(changelist, {"q": "x"})
    assert searched.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model", "model_admin"), REGISTERED, ids=[m._meta.label for m, _ in REGISTERED]
)
def test_every_list_filter_choice_renders(
    staff: Client, model: type[models.Model], model_admin: admin.ModelAdmin
) -> None:
    _build(model)
    meta = model._meta
    changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
    cl = staff.get(changelist).context["cl"]

    for spec in cl.filter_specs:
        for choice in spec.choices(cl):
            query = choice["query_string"]
            response = staff.get(changelist + query)
            assert response.status_code == 200, f"{meta.label} filter {query}"


# Shown as read-only inlines of the delivery (or notification) page instead of pages of their own.
INLINE_ONLY = {"deliveries.DeliveryEvent", "deliveries.Attempt", "deliveries.FanOut"}


def test_every_project_model_is_registered() -> None:
    from django.apps import apps

    project = [m for m in apps.get_models() if m.__module__.startswith("apps.")]
    missing = [
        m._meta.label
        for m in project
        if m not in admin.site._registry and m._meta.label not in INLINE_ONLY
    ]

    assert missing == []
