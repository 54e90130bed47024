"""`<notifier-bell>` inside React 19 and Vue 3 apps, as docs/inbox.md shows them: the app hands
the element its token (React 19 and Vue set it as a property), listens for
`notifier:token-expired` and answers it with a fresh token, and the bell goes live and shows a
message sent through the API. Headless Chromium, the product's page on its own origin, a real
uvicorn process and a real Celery worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from rest_framework.test import APIClient

from tests.browser.test_bell import send
from tests.browser.test_bell_element import demo_token
from tests.support.asgi import AsgiServer
from tests.support.npm_packages import npm_file
from tests.support.product_site import ProductSite

pytestmark = [pytest.mark.browser, pytest.mark.pipeline]

JS = "text/javascript; charset=utf-8"
# React 19 ships CommonJS only (no browser build): the page loads its files through a
# twelve-line require(), as a bundler would link them.
REACT = {
    "react": ("react", "19.3.1", "cjs/react.production.js"),
    "scheduler": ("scheduler", "0.27.0", "cjs/scheduler.production.js"),
    "react-dom": ("react-dom", "19.3.1", "cjs/react-dom.production.js"),
    "react-dom/client": ("react-dom", "19.3.1", "cjs/react-dom-client.production.js"),
}
REQUIRE = """<script>
  const modules = {};
  function define(name, body) { modules[name] = {body: body, module: null}; }
  function require(name) {
    const entry = modules[name];
    if (!entry) { throw new Error("no module " + name); }
    if (!entry.module) {
      entry.module = {exports: {}};
      entry.body(entry.module, entry.module.exports, require);
    }
    return entry.module.exports;
  }
</script>"""

REACT_APP = """
const React = require("react");
const { createRoot } = require("react-dom/client");

// docs/inbox.md's component, with React.createElement for the JSX
function Bell({ token, onTokenExpired }) {
  const ref = React.useRef(null);
  React.useEffect(() => {
    const bell = ref.current;
    bell.addEventListener("notifier:token-expired", onTokenExpired);
    return () => bell.removeEventListener("notifier:token-expired", onTokenExpired);
  }, [onTokenExpired]);
  return React.createElement("notifier-bell", { ref, server: SERVER, token });
}

function App() {
  const [token, setToken] = React.useState("not-a-token");
  const refresh = React.useCallback(() => { window.expired += 1; setToken(FRESH); }, []);
  return React.createElement(Bell, { token, onTokenExpired: refresh });
}

createRoot(document.getElementById("app")).render(React.createElement(App));
"""

VUE_APP = """
const app = Vue.createApp({
  data() { return { token: "not-a-token", server: SERVER }; },
  methods: { refreshToken() { window.expired += 1; this.token = FRESH; } },
  template: `<notifier-bell :server="server" :token="token"
                            @notifier:token-expired="refreshToken" />`,
});
app.config.compilerOptions.isCustomElement = (tag) => tag === "notifier-bell";
app.mount("#app");
"""


def page_html(server: AsgiServer, fresh: str, scripts: str, app: str) -> str:
    constants = f"const SERVER = {json.dumps(server.url)}; const FRESH = {json.dumps(fresh)};"
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Product</title></head>'
        '<body><div id="app"></div>'
        f'<script src="{server.url}/static/notifier/bell.js"></script>{scripts}'
        f"<script>window.expired = 0; {constants}\n{app}</script></body></html>"
    )


@pytest.fixture
def product() -> Iterator[ProductSite]:
    site = ProductSite()
    yield site
    site.stop()


@pytest.fixture
def server(seeded: dict[str, Any], product: ProductSite) -> Iterator[AsgiServer]:
    proc = AsgiServer(env={"WEBSOCKET_ALLOWED_ORIGINS": product.origin}, name="bell-apps")
    yield proc
    proc.stop()


def react_page(server: AsgiServer, product: ProductSite, fresh: str) -> None:
    scripts = [REQUIRE]
    for name, (package, version, path) in REACT.items():
        url = f"/npm/{name.replace('/', '-')}.js"
        body = npm_file(package, version, path)
        product.files[url] = (
            JS,
            b"define(%b, function (module, exports, require) {\n%b\n});"
            % (json.dumps(name).encode(), body),
        )
        scripts.append(f'<script src="{url}"></script>')
    product.page = page_html(server, fresh, "".join(scripts), REACT_APP)


def vue_page(server: AsgiServer, product: ProductSite, fresh: str) -> None:
    product.files["/npm/vue.js"] = (JS, npm_file("vue", "3.5.45", "dist/vue.global.prod.js"))
    product.page = page_html(server, fresh, '<script src="/npm/vue.js"></script>', VUE_APP)


@pytest.mark.parametrize("framework", ["react", "vue"])
def test_the_bell_in_an_app_takes_a_fresh_token_goes_live_and_shows_a_message(
    browser: Browser,
    server: AsgiServer,
    product: ProductSite,
    demo_api: APIClient,
    framework: str,
) -> None:
    fresh = demo_token()
    (react_page if framework == "react" else vue_page)(server, product, fresh)
    page: Page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{product.origin}/")

    # The first token is refused; the app answers the element's event with a fresh one
    bell = page.locator("notifier-bell")
    expect(bell).to_have_attribute("data-state", "live", timeout=15000)
    assert page.evaluate("window.expired") == 1
    assert bell.get_attribute("token") == fresh  # the app's property, mirrored

    send(demo_api, "F-1")
    expect(page.locator(".nb-badge")).to_have_attribute("data-count", "1", timeout=10000)
    assert errors == []
