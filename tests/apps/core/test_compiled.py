"""CompiledQuery: a queryset compiled once and run with new values answers what the queryset
itself answers, and the recipients read of every POST is compiled once per shape."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.db.models.sql.compiler import SQLCompiler
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.core.compiled import CompiledQuery
from apps.recipients.models import Preference, Recipient
from apps.recipients.selectors import _for_sending, recipients_for_sending
from apps.recipients.services import suppression_create
from tests.factories import ApiClientFactory, DeviceFactory, PreferenceFactory, RecipientFactory


def _by_client(key: object, client_id: int, name: str) -> QuerySet[Recipient]:
    return Recipient.objects.filter(client_id=client_id, name=name).select_related("preference")


@pytest.mark.django_db
def test_a_compiled_query_answers_as_its_queryset_with_each_calls_values() -> None:
    one, two = ApiClientFactory(), ApiClientFactory()
    ada = RecipientFactory(client=one, name="Ada")
    PreferenceFactory(recipient=ada, channels={"sms": False})
    RecipientFactory(client=one, name="Grace")
    bob = RecipientFactory(client=two, name="Ada")
    compiled = CompiledQuery(_by_client, kinds=(int, str))

    first = compiled.run("k", one.pk, "Ada")
    second = compiled.run("k", two.pk, "Ada")
    none = compiled.run("k", one.pk, "Nobody")

    assert [r.pk for r in first] == [ada.pk]
    assert [r.pk for r in second] == [bob.pk]
    assert none == []
    with CaptureQueriesContext(connection) as queries:
        assert first[0].preference.channels == {"sms": False}  # select_related: no query
        with pytest.raises(Preference.DoesNotExist):
            second[0].preference  # noqa: B018 - known absent, also without a query
    assert queries.captured_queries == []
    assert first[0].created_at.tzinfo is not None  # Django's converters applied


@pytest.mark.django_db
def test_a_value_that_does_not_reach_the_sql_as_one_parameter_is_refused() -> None:
    """`__in` with a list makes a parameter per element: the list's sentinel never appears."""

    def by_ids(key: object, ids: list[str]) -> QuerySet[Recipient]:
        return Recipient.objects.filter(external_id__in=ids)

    with pytest.raises(ValueError, match="did not reach the SQL"):
        CompiledQuery(by_ids, kinds=(list,)).run("k", ["a", "b"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    "volatile",
    [
        lambda: {"created_at__lt": timezone.now()},
        lambda: {"created_at__date": timezone.now().date()},
    ],
    ids=["datetime", "date"],
)
def test_a_date_or_time_frozen_into_the_plan_is_refused(volatile: Any) -> None:
    """Anything not a call's value is compiled once: a "now" would stay the first call's."""

    def since(key: object, client_id: int) -> QuerySet[Recipient]:
        return Recipient.objects.filter(client_id=client_id, **volatile())

    with pytest.raises(ValueError, match="frozen at the first compile"):
        CompiledQuery(since, kinds=(int,)).run("k", 1)


def _compilations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = SQLCompiler.as_sql

    def counting(self: SQLCompiler, *args: Any, **kwargs: Any) -> Any:
        seen.append(self.query.model.__name__ if self.query.model else "")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SQLCompiler, "as_sql", counting)
    return seen


@pytest.mark.django_db
def test_the_recipients_read_is_compiled_once_per_set_of_channels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = ApiClientFactory()
    for i in range(3):
        RecipientFactory(client=client, external_id=f"r-{i}")
    _for_sending.forget()  # whatever earlier tests compiled in this thread
    recipients_for_sending(client=client, external_ids=["r-0"], channels=["email", "sms"])
    compiled = _compilations(monkeypatch)

    for ids in (["r-0"], ["r-1", "r-2"], ["r-2", "nobody"]):
        found, _ = recipients_for_sending(
            client=client, external_ids=ids, channels=["email", "sms"]
        )
        assert sorted(r.external_id for r in found) == sorted(set(ids) - {"nobody"})
    assert compiled == []
    recipients_for_sending(client=client, external_ids=["r-0"], channels=["email"])
    assert compiled == ["Recipient"]  # another shape: compiled once more


@pytest.mark.django_db
def test_the_compiled_recipients_read_keeps_every_rule_of_the_orm_one() -> None:
    client, other = ApiClientFactory(), ApiClientFactory()
    live = RecipientFactory(client=client, external_id="live", phone="+14155550100")
    PreferenceFactory(recipient=live, quiet_start=dt.time(22), quiet_end=dt.time(7))
    RecipientFactory(client=client, external_id="erased", erased_at=timezone.now())
    RecipientFactory(client=other, external_id="elsewhere")
    device = DeviceFactory(recipient=live)
    assert suppression_create(client=client, channel="sms", address="+14155550100", reason="t")
    ids = ["live", "erased", "elsewhere", "missing"]

    found, suppressed = recipients_for_sending(
        client=client, external_ids=ids, channels=["email", "sms", "push"]
    )

    assert [r.external_id for r in found] == ["live"]
    assert suppressed == {(live.pk, "sms")}
    with CaptureQueriesContext(connection) as queries:
        assert found[0].preference.quiet_start == dt.time(22)
        assert [d.pk for d in found[0].devices.all()] == [device.pk]  # prefetched for push
    assert queries.captured_queries == []
