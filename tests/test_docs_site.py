"""The built documentation site, read in a real headless browser at the widths people read it at.

The site is built with ``mkdocs build --strict`` into a temporary directory, served
on loopback, and every page is loaded in Chromium (driven by Playwright, with
Debian's ``/usr/bin/chromium``, a new empty profile and no network services) at
1366, 1024, 768 and 390 px. What each page must show there:

- Nothing cut off on the right. An element whose content is wider than its box
  passes only if it scrolls sideways itself (``overflow-x: auto``/``scroll``):
  its content is then reachable, not lost. That is how code blocks and wide
  tables behave. An API signature must fit without scrolling (the site wraps
  signatures, which scrolled would hide the parameters and the return type),
  and the page itself never scrolls sideways.
- No empty box: no element that paints a border, a background or a shadow
  with nothing in it (no text, no image, no ``::before``/``::after`` content),
  such as the symbol badges before the API headings were; no admonition
  without a body.
- Highlighted code: every code block was highlighted by Pygments at build
  time, and a block in a language Pygments colours (Python, shell, JSON...)
  shows tokens in a colour other than the block's own (its stylesheet loaded).
- No private name in the API reference: headings, signatures, the navigation,
  tooltips, anchors and links of the reference pages name no ``_private``
  object (prose may, to say that such modules are private).
- No request leaves loopback: the site works offline (the theme's default
  highlight.js from a CDN is what this caught).

Screenshots of the pages that break a rule go to the test's temporary
directory (named in the failure), never into the repository.

Skipped, with the reason, without mkdocs, Playwright or Chromium
(``apt-get install chromium``); ``NITRO_ATTEST_REQUIRE_BROWSER=1`` turns the
missing browser into a failure, for CI.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = (1366, 1024, 768, 390)
HEIGHT = 900
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_ENV = "NITRO_ATTEST_REQUIRE_BROWSER"
#: A dotted name of the package with a private part: nitro_attest._chain, nitro_attest.kms._key_policy.
PRIVATE_PATH = re.compile(r"\bnitro_attest(?:\.\w+)*\._(?!_)\w*")
#: A private identifier in a heading or a signature: _load_shipped_root, _Omit (not __init__).
PRIVATE_NAME = re.compile(r"(?<![\w.])_(?!_)[A-Za-z0-9]\w*")
#: ``pip install ARGS`` as a page writes it (up to the end of its code span, table cell or line).
PIP_INSTALL = re.compile(r"(?P<pip>[\w./-]*pip3?) install (?P<arguments>[^`|\n]*)")
#: What installs this package: the checkout, with or without extras (``.``, ``'.[redis]'``, ``-e '.[docs]'``).
FROM_CHECKOUT = re.compile(r"""^(?:-e )?(?:\.|'\.\[[\w,-]+\]')(?: |$)""")


# Runs in the page: what it breaks of the rules above, each finding a short description of the element.
_PAGE_CHECKS = """
() => {
  const main = document.querySelector('div[role="main"]');
  const describe = (el) => {
    const names = typeof el.className === 'string' ? el.className.trim().split(/\\s+/).filter(Boolean) : [];
    const classes = names.map((name) => '.' + name).join('');
    const text = (el.innerText || el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 70);
    return `<${el.tagName.toLowerCase()}${classes}> "${text}"`;
  };
  const scrollsSideways = (style) => style.overflowX === 'auto' || style.overflowX === 'scroll';
  const cutOff = [], wideSignatures = [], emptyBoxes = [], plainCode = [];
  for (const el of [main, ...main.querySelectorAll('*')]) {
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.display === 'inline' || style.display === 'contents') continue;
    if (el.scrollWidth > el.clientWidth + 1) {
      const wide = `${describe(el)} is ${el.scrollWidth}px wide in ${el.clientWidth}px`;
      if (el.closest('.doc-signature')) wideSignatures.push(wide);
      else if (!scrollsSideways(style)) cutOff.push(wide);
    }
  }
  const page = document.documentElement.scrollWidth;
  if (page > window.innerWidth) cutOff.push(`the page is ${page}px wide in a ${window.innerWidth}px window`);
  const pseudo = (el, which) => {
    const content = getComputedStyle(el, which).content;
    return content !== 'none' && content !== 'normal' && content !== '""';
  };
  for (const el of main.querySelectorAll('*')) {
    if (['HR', 'BR', 'WBR', 'IMG', 'INPUT'].includes(el.tagName)) continue;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || style.visibility === 'hidden') continue;
    const painted = ['Top', 'Right', 'Bottom', 'Left'].some((side) => parseFloat(style[`border${side}Width`]) > 0)
      || (style.backgroundColor !== 'rgba(0, 0, 0, 0)' && style.backgroundColor !== 'transparent')
      || style.boxShadow !== 'none';
    if (!painted || el.innerText.trim() !== '' || el.querySelector('img, svg, canvas, video, iframe, input')) continue;
    if (pseudo(el, '::before') || pseudo(el, '::after')) continue;
    emptyBoxes.push(describe(el));
  }
  for (const admonition of main.querySelectorAll('.admonition')) {
    const body = [...admonition.children].filter((child) => !child.classList.contains('admonition-title'));
    if (!body.some((child) => child.innerText.trim() !== '')) emptyBoxes.push(`${describe(admonition)} has no body`);
  }
  const coloured = /language-(python|py|pycon|console|sh|bash|shell|json|toml|ini|yaml|c)\\b/;
  let highlighted = 0;
  for (const pre of main.querySelectorAll('pre')) {
    const block = pre.closest('.highlight');
    if (block === null) { plainCode.push(`${describe(pre)} was not highlighted by Pygments`); continue; }
    const code = pre.querySelector('code') || pre;
    const base = getComputedStyle(code).color;
    const tokens = [...code.querySelectorAll('span[class]')].filter((span) => getComputedStyle(span).color !== base);
    if (tokens.length) highlighted += 1;
    else if (coloured.test(block.className)) plainCode.push(`${describe(pre)} (${block.className}): no coloured token`);
  }
  const names = [...main.querySelectorAll('.doc-heading, .doc-signature'),
                 ...document.querySelectorAll('.wy-menu-vertical a')].map((el) => el.innerText);
  const attributes = [];
  for (const el of document.querySelectorAll('[title], [href], [id]')) {
    for (const name of ['title', 'href', 'id']) if (el.hasAttribute(name)) attributes.push(el.getAttribute(name));
  }
  return {cutOff, wideSignatures, emptyBoxes, plainCode, highlighted, names, attributes};
}
"""


@dataclass(frozen=True)
class PageReport:
    page: str  # relative to the site, e.g. "reference/verify/"
    width: int
    cut_off: tuple[str, ...]
    wide_signatures: tuple[str, ...]
    empty_boxes: tuple[str, ...]
    plain_code: tuple[str, ...]
    highlighted: int  # code blocks with coloured tokens
    names: tuple[str, ...]  # text of the API headings, signatures and navigation links
    attributes: tuple[str, ...]  # every title, href and id

    @property
    def where(self) -> str:
        return f"{self.page or '/'} at {self.width}px"


@dataclass(frozen=True)
class SiteReport:
    pages: tuple[PageReport, ...]
    requests: tuple[str, ...]
    origin: str  # http://127.0.0.1:PORT/
    screenshots: Path


def _missing_browser(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{REQUIRE_ENV} is set but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings_handlers.python") is None:
        pytest.skip("mkdocs and mkdocstrings[python] are not installed (pip install -e '.[docs]')")
    directory = tmp_path_factory.mktemp("docs") / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(directory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return directory


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Requests are recorded by the browser; the server's log would only fill pytest's output."""


@pytest.fixture(scope="module")
def origin(site: Path) -> Iterator[str]:
    """The site served on loopback by http.server in a thread."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def _pages(site: Path) -> list[str]:
    """Every page of the site, as the path a reader's browser asks for ("", "reference/verify/", "404.html")."""
    pages = []
    for html in sorted(site.rglob("*.html")):
        relative = html.relative_to(site).as_posix()
        pages.append(relative.removesuffix("index.html"))
    return pages


@pytest.fixture(scope="module")
def report(site: Path, origin: str, tmp_path_factory: pytest.TempPathFactory) -> SiteReport:
    """Every page loaded at every width, once for all the tests below."""
    if importlib.util.find_spec("playwright") is None:
        _missing_browser("Playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.is_file():
        _missing_browser(f"{CHROMIUM} is absent (apt-get install chromium)")
    from playwright.sync_api import Route, sync_playwright  # noqa: PLC0415 (optional: skipped without it)

    profile = tmp_path_factory.mktemp("chromium-profile")
    screenshots = tmp_path_factory.mktemp("screenshots")
    requests: list[str] = []
    reports: list[PageReport] = []

    def only_loopback(route: Route) -> None:
        # Recorded (and asserted on) either way; refused so that the result does not depend on the network.
        if route.request.url.startswith(origin):
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context.on("request", lambda request: requests.append(request.url))
            context.route("**/*", only_loopback)
            page = context.new_page()
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": HEIGHT})
                for path in _pages(site):
                    page.goto(origin + path, wait_until="load")
                    found = page.evaluate(_PAGE_CHECKS)
                    reports.append(
                        PageReport(
                            page=path,
                            width=width,
                            cut_off=tuple(found["cutOff"]),
                            wide_signatures=tuple(found["wideSignatures"]),
                            empty_boxes=tuple(found["emptyBoxes"]),
                            plain_code=tuple(found["plainCode"]),
                            highlighted=found["highlighted"],
                            names=tuple(found["names"]),
                            attributes=tuple(found["attributes"]),
                        )
                    )
                    if found["cutOff"] or found["wideSignatures"] or found["emptyBoxes"] or found["plainCode"]:
                        name = (path.strip("/").replace("/", "_") or "index") + f"-{width}.png"
                        page.screenshot(path=str(screenshots / name), full_page=True)
        finally:
            context.close()
    return SiteReport(tuple(reports), tuple(requests), origin, screenshots)


def _failures(report: SiteReport, field: str) -> str:
    lines = [f"{page.where}: {finding}" for page in report.pages for finding in getattr(page, field)]
    return "\n".join([*lines, f"(screenshots in {report.screenshots})"] if lines else [])


def test_every_page_is_loaded_at_every_width(site: Path, report: SiteReport) -> None:
    assert len(report.pages) == len(_pages(site)) * len(WIDTHS)
    assert {"", "quickstart/", "reference/verify/"} <= {page.page for page in report.pages}


def test_nothing_is_cut_off_on_the_right(report: SiteReport) -> None:
    assert not _failures(report, "cut_off"), _failures(report, "cut_off")


def test_signatures_fit_without_scrolling(report: SiteReport) -> None:
    assert not _failures(report, "wide_signatures"), _failures(report, "wide_signatures")


def test_no_empty_boxes(report: SiteReport) -> None:
    assert not _failures(report, "empty_boxes"), _failures(report, "empty_boxes")


def test_code_is_highlighted_at_build_time(report: SiteReport) -> None:
    assert not _failures(report, "plain_code"), _failures(report, "plain_code")
    quickstart = next(page for page in report.pages if page.page == "quickstart/")
    assert quickstart.highlighted >= 1


def test_the_reference_names_no_private_object(report: SiteReport) -> None:
    private = sorted(
        {
            f"{page.page}: {match}"
            for page in report.pages
            if page.page.startswith("reference/")
            for match in (
                [m for name in page.names for m in PRIVATE_NAME.findall(name)]
                + [m for value in page.attributes for m in PRIVATE_PATH.findall(value)]
            )
        }
    )
    assert not private, "\n".join(private)


def test_no_request_leaves_loopback(report: SiteReport) -> None:
    assert report.requests
    outside = sorted({url for url in report.requests if not url.startswith(report.origin)})
    assert not outside, "\n".join(outside)


class _ExternalAssets(HTMLParser):
    """Collects the scripts and stylesheets a page loads from another host."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        url = attributes.get("src") if tag == "script" else attributes.get("href") if tag == "link" else None
        if url is not None and re.match(r"(?i)(https?:)?//", url):
            self.found.append(f"<{tag}> {url}")


def test_no_page_loads_scripts_or_styles_from_another_host(site: Path) -> None:
    """Without a browser too: every ``<script src>`` and ``<link href>`` of the built site is local."""
    external = []
    for html in sorted(site.rglob("*.html")):
        parser = _ExternalAssets()
        parser.feed(html.read_text(encoding="utf-8"))
        external += [f"{html.relative_to(site)}: {found}" for found in parser.found]
    assert not external, "\n".join(external)
    assert (site / "css" / "pygments.css").read_text(encoding="utf-8").count(".highlight") > 10


def _readme_install() -> list[str]:
    """The commands of the README's "Quick start" block, the project's one way to install it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^## Quick start\n+```\w*\n(?P<commands>.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert block is not None, "README.md has no Quick start code block"
    return block["commands"].splitlines()


def test_the_docs_show_one_install_command_the_readmes() -> None:
    """The quick start shows the README's commands; no page installs the package another way.

    Another page may add an extra or a tool to that install (``.venv/bin/pip install '.[redis]'``), in the
    same ``.venv``, from the checkout: never ``pip install nitro_attest`` (from an index), a bare ``pip``, or
    ``setup.py``.
    """
    commands = _readme_install()
    assert any("pip install" in command for command in commands), commands
    quickstart = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
    assert all(command in quickstart for command in commands), "docs/quickstart.md differs from the README"
    other_ways = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        if page.name == "changelog.md":  # the history says how things were installed then
            continue
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
            where = f"docs/{page.relative_to(ROOT / 'docs').as_posix()}:{number}"
            if "setup.py" in line:
                other_ways.append(f"{where}: {line.strip()}")
            for install in PIP_INSTALL.finditer(line):
                if install["pip"] != ".venv/bin/pip":
                    other_ways.append(f"{where}: {install[0]} (not the quick start's .venv/bin/pip)")
                elif "-r" not in install["arguments"].split() and not FROM_CHECKOUT.match(install["arguments"]):
                    other_ways.append(f"{where}: {install[0]} (not from the checkout)")
    assert not other_ways, "\n".join(other_ways)
