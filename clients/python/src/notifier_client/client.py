"""The two clients: the same calls (calls.py), run over httpx's sync or async transport.

Each public method is made from its call builder by `_sync`/`_async` (`_sync_pages`/
`_async_pages` for an iterator over every page), so the signatures, the requests and the
reading of answers exist once; what differs here is only sending, sleeping and looping.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Concatenate, ParamSpec, TypeVar

import httpx
from typing_extensions import Self

from notifier_client import calls
from notifier_client._core import Call, Page, RetryPolicy, Settings, result

P = ParamSpec("P")
T = TypeVar("T")


def _sync(build: Callable[P, Call[T]]) -> Callable[Concatenate[NotifierClient, P], T]:
    @functools.wraps(build)
    def method(self: NotifierClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.execute(build(*args, **kwargs))

    return method


def _sync_pages(
    build: Callable[P, Call[Page[T]]],
) -> Callable[Concatenate[NotifierClient, P], Iterator[T]]:
    @functools.wraps(build)
    def method(self: NotifierClient, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        call = build(*args, **kwargs)
        while True:
            page = self.execute(call)
            yield from page.results
            if page.cursor is None:
                return
            call = call.with_cursor(page.cursor)

    method.__doc__ = f"Every item of every page of `{build.__name__}`, fetched as needed."
    return method


def _async(
    build: Callable[P, Call[T]],
) -> Callable[Concatenate[AsyncNotifierClient, P], Awaitable[T]]:
    @functools.wraps(build)
    async def method(self: AsyncNotifierClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.execute(build(*args, **kwargs))

    return method


def _async_pages(
    build: Callable[P, Call[Page[T]]],
) -> Callable[Concatenate[AsyncNotifierClient, P], AsyncIterator[T]]:
    @functools.wraps(build)
    async def method(
        self: AsyncNotifierClient, /, *args: P.args, **kwargs: P.kwargs
    ) -> AsyncIterator[T]:
        call = build(*args, **kwargs)
        while True:
            page = await self.execute(call)
            for item in page.results:
                yield item
            if page.cursor is None:
                return
            call = call.with_cursor(page.cursor)

    method.__doc__ = f"Every item of every page of `{build.__name__}`, fetched as needed."
    return method


class _Api:
    """The configuration both clients take."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        """`base_url`: where the service answers, e.g. `https://notify.example.com` (the client
        adds `/api/v1`). `retry`: how 429, 503 and connection errors are retried."""
        try:
            httpx.URL(base_url)
        except httpx.InvalidURL as exc:  # a wrong argument, as the calls' own ValueErrors
            raise ValueError(f"base_url {base_url!r} is not a URL: {exc}") from exc
        self.settings = Settings(base_url, api_key, timeout, retry or RetryPolicy())


class NotifierClient(_Api):
    """The synchronous client. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout=timeout, retry=retry)
        self._http = httpx.Client(transport=transport, **self.settings.client_options())

    def execute(self, call: Call[T]) -> T:
        """Run `call`, retrying as the retry policy says; its answer or its typed error."""
        request = self.settings.build(self._http, call)
        retrying = self.settings.retrying(call)
        wait: float | None
        while True:
            try:
                response = self._http.send(request)
            except httpx.HTTPError as exc:
                wait = retrying.after_error(request, exc)
            else:
                wait = retrying.after_response(response)
                if wait is None:
                    return result(call, response)
            time.sleep(wait)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    send = _sync(calls.send)
    send_bulk = _sync(calls.send_bulk)
    get_notification = _sync(calls.get_notification)
    list_notifications = _sync(calls.list_notifications)
    iter_notifications = _sync_pages(calls.list_notifications)
    list_deliveries = _sync(calls.list_deliveries)
    iter_deliveries = _sync_pages(calls.list_deliveries)
    cancel_notification = _sync(calls.cancel_notification)
    upsert_recipient = _sync(calls.upsert_recipient)
    get_recipient = _sync(calls.get_recipient)
    erase_recipient = _sync(calls.erase_recipient)
    recipient_token = _sync(calls.recipient_token)
    get_preferences = _sync(calls.get_preferences)
    set_preferences = _sync(calls.set_preferences)
    preferences_link = _sync(calls.preferences_link)
    register_device = _sync(calls.register_device)
    remove_device = _sync(calls.remove_device)
    put_topic = _sync(calls.put_topic)
    get_topic = _sync(calls.get_topic)
    delete_topic = _sync(calls.delete_topic)
    list_topics = _sync(calls.list_topics)
    iter_topics = _sync_pages(calls.list_topics)
    add_subscribers = _sync(calls.add_subscribers)
    remove_subscribers = _sync(calls.remove_subscribers)
    list_subscribers = _sync(calls.list_subscribers)
    iter_subscribers = _sync_pages(calls.list_subscribers)
    list_dead_letters = _sync(calls.list_dead_letters)
    iter_dead_letters = _sync_pages(calls.list_dead_letters)
    replay_dead_letter = _sync(calls.replay_dead_letter)
    replay_dead_letters = _sync(calls.replay_dead_letters)


class AsyncNotifierClient(_Api):
    """The asyncio client: the same methods as NotifierClient, awaited (`iter_*` are async
    iterators). Use as an async context manager, or await `aclose()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout=timeout, retry=retry)
        self._http = httpx.AsyncClient(transport=transport, **self.settings.client_options())

    async def execute(self, call: Call[T]) -> T:
        """Run `call`, retrying as the retry policy says; its answer or its typed error."""
        request = self.settings.build(self._http, call)
        retrying = self.settings.retrying(call)
        wait: float | None
        while True:
            try:
                response = await self._http.send(request)
            except httpx.HTTPError as exc:
                wait = retrying.after_error(request, exc)
            else:
                wait = retrying.after_response(response)
                if wait is None:
                    return result(call, response)
            await asyncio.sleep(wait)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    send = _async(calls.send)
    send_bulk = _async(calls.send_bulk)
    get_notification = _async(calls.get_notification)
    list_notifications = _async(calls.list_notifications)
    iter_notifications = _async_pages(calls.list_notifications)
    list_deliveries = _async(calls.list_deliveries)
    iter_deliveries = _async_pages(calls.list_deliveries)
    cancel_notification = _async(calls.cancel_notification)
    upsert_recipient = _async(calls.upsert_recipient)
    get_recipient = _async(calls.get_recipient)
    erase_recipient = _async(calls.erase_recipient)
    recipient_token = _async(calls.recipient_token)
    get_preferences = _async(calls.get_preferences)
    set_preferences = _async(calls.set_preferences)
    preferences_link = _async(calls.preferences_link)
    register_device = _async(calls.register_device)
    remove_device = _async(calls.remove_device)
    put_topic = _async(calls.put_topic)
    get_topic = _async(calls.get_topic)
    delete_topic = _async(calls.delete_topic)
    list_topics = _async(calls.list_topics)
    iter_topics = _async_pages(calls.list_topics)
    add_subscribers = _async(calls.add_subscribers)
    remove_subscribers = _async(calls.remove_subscribers)
    list_subscribers = _async(calls.list_subscribers)
    iter_subscribers = _async_pages(calls.list_subscribers)
    list_dead_letters = _async(calls.list_dead_letters)
    iter_dead_letters = _async_pages(calls.list_dead_letters)
    replay_dead_letter = _async(calls.replay_dead_letter)
    replay_dead_letters = _async(calls.replay_dead_letters)
