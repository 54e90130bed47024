"""Parsing of template sources with the two engines `render` uses, once per process and source.

Its own module so that what reads compiled templates without rendering them
(notifier/render_bound.py) and `render` itself (notifier/rendering.py) share one parse and one
cache, and rendering.py can own the decision to skip a render (`render_check`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.template import Engine, TemplateSyntaxError

from notifier.template_library import instrument
from notifier.template_limits import RenderError

_LIBRARY = "notifier.template_library"
_TEXT = Engine(autoescape=False, builtins=[_LIBRARY])
_HTML = Engine(autoescape=True, builtins=[_LIBRARY])


class TemplateError(RenderError):
    """A template source that does not parse."""


@lru_cache(maxsize=1024)
def _compile(engine: Engine, source: str) -> Any:
    """Parse once per process and source: template versions are immutable, and a compiled
    Django template renders safely from several threads (each render has its own Context;
    the budget is per thread)."""
    try:
        template = engine.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(str(exc)) from exc
    instrument(template.nodelist)
    return template


def compiled(source: str, *, html: bool) -> Any:
    """`source` parsed as `render` renders it (HTML autoescaped), once per process and source;
    TemplateError when it does not parse."""
    return _compile(_HTML if html else _TEXT, source)
