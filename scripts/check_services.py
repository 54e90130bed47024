"""Fail loudly, before any test runs, when PostgreSQL or Redis is unreachable."""

from __future__ import annotations

import os
import sys

import psycopg
import redis


def main() -> int:
    db_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    problems = []
    try:
        psycopg.connect(
            db_url.replace("postgres://", "postgresql://", 1), connect_timeout=5
        ).close()
    except psycopg.Error as exc:
        problems.append(f"PostgreSQL at {db_url}: {exc}".strip())
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        problems.append(f"Redis at {redis_url}: {exc}")
    for problem in problems:
        print(f"UNREACHABLE {problem}", file=sys.stderr)
    if problems:
        print(
            "The tests need real PostgreSQL and Redis (set DATABASE_URL / REDIS_URL).",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
