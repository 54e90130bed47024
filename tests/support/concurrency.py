"""POST from several threads at once, each with its own client and database connection."""

from __future__ import annotations

import threading
from typing import Any

from django.db import connections
from rest_framework.test import APIClient


def post_together(
    raw_key: str, url: str, bodies: list[dict[str, Any]], **headers: str
) -> list[tuple[int, Any, bool]]:
    """POST each body from its own thread, all released at once by a barrier. Returns
    (status, JSON body, Idempotent-Replayed) per request, in the order they finished."""
    barrier = threading.Barrier(len(bodies))
    results: list[tuple[int, Any, bool]] = []
    lock = threading.Lock()

    def post(body: dict[str, Any]) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        try:
            barrier.wait(timeout=60)
            response = client.post(url, body, format="json", **headers)
            replayed = response.headers.get("Idempotent-Replayed") == "true"
            with lock:
                results.append((response.status_code, response.json(), replayed))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results
