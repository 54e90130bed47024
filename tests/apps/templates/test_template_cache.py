"""The per-process cache of current template versions (apps/templates/cache.py): never stale
after a save, in this process or another one, and the database when Redis is down."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from apps.clients import auth
from apps.core.broker import redis_client, service_client
from apps.deliveries.models import Notification
from apps.templates.cache import (
    GENERATION_KEY,
    TemplateVersions,
    generation_read,
    template_versions,
)
from apps.templates.models import Template, TemplateVersion
from apps.templates.services import template_metadata_save, template_save, templates_delete
from tests.factories import TemplateVariantFactory, TemplateVersionFactory

URL = "/api/v1/notifications"
BODY = {"recipient": "user-1", "template": "order_shipped", "variables": {"order_id": "A-1"}}
NEW_VARIANTS = [{"channel": "email", "subject": "Hi {{ name }}", "body": "Now {{ coupon }}"}]


def _dead_redis_url() -> str:
    """A port nothing listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def _save(demo: dict[str, Any], capture: Callable[..., Any]) -> TemplateVersion:
    with capture(execute=True):  # the save commits: its after-commit token is set too
        _, version = template_save(
            client=demo["client"], key="order_shipped", variants=NEW_VARIANTS
        )
    return version


@pytest.mark.django_db
def test_a_save_in_one_process_is_seen_by_the_next_request_of_another(
    demo: dict[str, Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    other_process = TemplateVersions()  # its own entries, as another web process has
    before = other_process.current(client=demo["client"], key="order_shipped")
    with CaptureQueriesContext(connection) as cached:
        assert other_process.current(client=demo["client"], key="order_shipped") is before
    assert len(cached) == 0  # served from the process's copy

    saved = _save(demo, django_capture_on_commit_callbacks)

    after = other_process.current(client=demo["client"], key="order_shipped")
    assert before is not None
    assert after is not None
    assert (before.number, after.pk) == (1, saved.pk)
    assert sorted(after.variables) == ["coupon", "name"]


@pytest.mark.django_db(transaction=True)
def test_what_another_process_reads_while_a_save_commits_is_not_kept_after_it(
    demo: dict[str, Any],
) -> None:
    other_process = TemplateVersions()
    assert other_process.current(client=demo["client"], key="order_shipped") is not None
    seen: list[TemplateVersion | None] = []

    def other_request() -> None:  # its own thread, so its own database connection
        try:
            seen.append(other_process.current(client=demo["client"], key="order_shipped"))
        finally:
            connection.close()

    with transaction.atomic():
        _, saved = template_save(client=demo["client"], key="order_shipped", variants=NEW_VARIANTS)
        # between the save's first token and its commit: the old version, under the new token
        reader = threading.Thread(target=other_request)
        reader.start()
        reader.join()
    assert seen[0] is not None
    assert seen[0].number == 1

    after = other_process.current(client=demo["client"], key="order_shipped")

    assert after is not None
    assert after.pk == saved.pk


@pytest.fixture
def staff(db: None) -> Client:
    browser = Client()
    browser.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    return browser


def _admin_form(template: Template, variants: list[dict[str, str]], **extra: str) -> dict[str, str]:
    return {
        "client": str(template.client_id),
        "key": template.key,
        "category": template.category,
        "default_priority": template.default_priority,
        "variables": "[]",
        "variants": json.dumps(variants),
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        **extra,
    }


def _current_variants(template: Template) -> list[dict[str, str]]:
    version = template.versions.order_by("-number").first()
    assert version is not None
    fields = ("channel", "locale", "subject", "title", "body", "html")
    return [{f: getattr(v, f) for f in fields} for v in version.variants.order_by("id")]


@pytest.mark.django_db
def test_a_metadata_only_save_in_the_admin_is_seen(demo: dict[str, Any], staff: Client) -> None:
    other_process = TemplateVersions()
    assert other_process.current(client=demo["client"], key="order_shipped") is not None
    template = demo["template"]
    url = reverse("admin:templates_template_change", args=[template.pk])

    saved = staff.post(
        url, _admin_form(template, _current_variants(template), default_priority="high")
    )

    assert saved.status_code == 302
    version = other_process.current(client=demo["client"], key="order_shipped")
    assert version is not None
    assert (version.number, version.template.default_priority) == (1, "high")


@pytest.mark.django_db
def test_new_variants_saved_in_the_admin_are_what_the_api_uses_next(
    api: APIClient, demo: dict[str, Any], staff: Client
) -> None:
    assert api.post(URL, BODY, format="json").status_code == 202  # version 1 cached
    template = demo["template"]
    url = reverse("admin:templates_template_change", args=[template.pk])

    saved = staff.post(url, _admin_form(template, NEW_VARIANTS))

    assert saved.status_code == 302
    response = api.post(URL, {**BODY, "variables": {"name": "Ada"}}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["variables"] == ["missing variable 'coupon'"]


@pytest.mark.django_db
def test_a_deleted_template_is_not_served(api: APIClient, demo: dict[str, Any]) -> None:
    other_process = TemplateVersions()
    assert other_process.current(client=demo["client"], key="order_shipped") is not None
    template = demo["template"]

    assert templates_delete(templates=Template.objects.filter(pk=template.pk)) == 1

    assert other_process.current(client=demo["client"], key="order_shipped") is None
    response = api.post(URL, BODY, format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["template"] == ["unknown template 'order_shipped'"]


@pytest.mark.django_db
def test_the_admin_deletes_no_template_so_the_cached_one_stays_true(
    demo: dict[str, Any], staff: Client
) -> None:
    """Versions are read-only in the admin, so it refuses to delete a template with them: the
    delete path is `templates_delete` (no API deletes templates)."""
    template = demo["template"]

    page = staff.post(
        reverse("admin:templates_template_delete", args=[template.pk]), {"post": "yes"}
    )

    assert page.status_code == 403
    assert Template.objects.filter(pk=template.pk).exists()


@pytest.mark.django_db
def test_a_metadata_only_save_through_the_service_is_seen(demo: dict[str, Any]) -> None:
    other_process = TemplateVersions()
    assert other_process.current(client=demo["client"], key="order_shipped") is not None
    template = demo["template"]
    template.default_priority = "high"

    template_metadata_save(template=template)

    version = other_process.current(client=demo["client"], key="order_shipped")
    assert version is not None
    assert version.template.default_priority == "high"


@pytest.mark.django_db
def test_the_api_never_serves_the_version_before_a_save(
    api: APIClient, demo: dict[str, Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    assert api.post(URL, BODY, format="json").status_code == 202
    with CaptureQueriesContext(connection) as warm:
        assert api.post(URL, BODY, format="json").status_code == 202
    assert not any("templates_template" in q["sql"] for q in warm.captured_queries)

    put = api.put("/api/v1/templates/order_shipped", {"variants": NEW_VARIANTS}, format="json")
    assert put.status_code == 200
    service_client().set("unrelated", "1")  # nothing but the save moved the token
    response = api.post(URL, {**BODY, "variables": {"name": "Ada"}}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"]["variables"] == ["missing variable 'coupon'"]
    accepted = api.post(URL, {**BODY, "variables": {"name": "Ada", "coupon": "X"}}, format="json")
    assert accepted.status_code == 202
    notification = Notification.objects.get(id=accepted.json()["id"])
    assert notification.template_version.number == 2


@pytest.mark.django_db
def test_redis_down_reads_the_database_and_keeps_nothing_it_could_not_check(
    demo: dict[str, Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    dead = redis_client(_dead_redis_url(), timeout=0.5, fail_fast=True)
    redis_up = {"yes": True}
    this_process = TemplateVersions(lambda: service_client() if redis_up["yes"] else dead)
    assert this_process.current(client=demo["client"], key="order_shipped") is not None

    token = service_client().get(GENERATION_KEY)

    redis_up["yes"] = False
    saved = _save(demo, django_capture_on_commit_callbacks)  # the other processes' Redis is up
    read_while_down = this_process.current(client=demo["client"], key="order_shipped")
    assert read_while_down is not None
    assert read_while_down.pk == saved.pk

    # Redis comes back from a snapshot taken before the save: the token it had then
    service_client().set(GENERATION_KEY, token)
    redis_up["yes"] = True
    again = this_process.current(client=demo["client"], key="order_shipped")
    assert again is not None
    assert again.pk == saved.pk


@pytest.mark.django_db
def test_a_save_while_redis_is_down_fails_before_it_commits(demo: dict[str, Any]) -> None:
    with override_settings(REDIS_URL=_dead_redis_url()), pytest.raises(redis.ConnectionError):
        template_save(client=demo["client"], key="order_shipped", variants=NEW_VARIANTS)

    assert list(demo["template"].versions.values_list("number", flat=True)) == [1]


@pytest.mark.django_db
def test_the_api_answers_a_save_while_redis_is_down_with_503(
    api: APIClient, demo: dict[str, Any], settings: Any
) -> None:
    settings.REDIS_URL = _dead_redis_url()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}

    put = api.put("/api/v1/templates/order_shipped", {"variants": NEW_VARIANTS}, format="json")

    assert put.status_code == 503
    assert put.json()["code"] == "unavailable"
    assert demo["template"].versions.count() == 1


@pytest.mark.django_db
def test_a_version_written_by_the_factories_is_seen(demo: dict[str, Any]) -> None:
    other_process = TemplateVersions()
    assert other_process.current(client=demo["client"], key="order_shipped") is not None

    version = TemplateVersionFactory(template=demo["template"], number=99)
    TemplateVariantFactory(version=version, channel="email")

    current = other_process.current(client=demo["client"], key="order_shipped")
    assert current is not None
    assert (current.number, [v.channel for v in current.variants.all()]) == (99, ["email"])


@pytest.mark.django_db
def test_a_token_read_earlier_in_the_request_is_used_and_trusted_only_for_its_entries(
    demo: dict[str, Any],
    django_capture_on_commit_callbacks: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The API throttle reads the token in its own Redis call (`generation_read`): the cache
    then asks Redis nothing, and an entry made under another token is read again."""
    this_process = TemplateVersions()
    before = this_process.current(client=demo["client"], key="order_shipped")
    token = service_client().get(GENERATION_KEY)
    gets: list[object] = []
    real_get = redis.Redis.get
    monkeypatch.setattr(redis.Redis, "get", lambda self, *a: gets.append(a) or real_get(self, *a))

    with generation_read(token), CaptureQueriesContext(connection) as cached:
        assert this_process.current(client=demo["client"], key="order_shipped") is before
    assert (len(cached), gets) == (0, [])

    saved = _save(demo, django_capture_on_commit_callbacks)
    with generation_read(service_client().execute_command("GET", GENERATION_KEY)):
        after = this_process.current(client=demo["client"], key="order_shipped")
    assert after is not None
    assert after.pk == saved.pk
    with generation_read(token):  # a request that read the token before the save: its entry
        assert this_process.current(client=demo["client"], key="order_shipped") is not before
    assert gets == []


@pytest.mark.django_db
def test_the_api_reads_the_token_with_the_throttle_and_sees_a_save_at_once(
    api: APIClient, demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert api.post(URL, BODY, format="json").status_code == 202
    gets: list[object] = []
    real_get = redis.Redis.get
    monkeypatch.setattr(redis.Redis, "get", lambda self, *a: gets.append(a) or real_get(self, *a))
    put = api.put("/api/v1/templates/order_shipped", {"variants": NEW_VARIANTS}, format="json")
    assert put.status_code == 200

    accepted = api.post(URL, {**BODY, "variables": {"name": "Ada", "coupon": "X"}}, format="json")

    assert accepted.status_code == 202, accepted.content
    assert Notification.objects.get(id=accepted.json()["id"]).template_version.number == 2
    assert gets == []  # the token came with the throttle's call


def test_the_throttle_and_the_template_cache_use_one_redis_client() -> None:
    """The token the throttle reads stands for the cache's own read only if both ask the same
    Redis: a save sets it through `service_client` (apps.templates.cache), the throttle's Lua
    call reads it through its bucket's client. Should they part, a request would trust entries
    against a token from another Redis."""
    bucket = auth._key_bucket("shared-client-test", 10, 60)
    cache_client = template_versions._connect()

    assert bucket._script.registered_client is auth._throttle_redis()
    assert auth._throttle_redis() is cache_client
    assert cache_client is service_client(fail_fast=True)
