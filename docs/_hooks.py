"""Build-time helpers of the documentation site (not part of the package, not published).

Two things, both wired in ``mkdocs.yml``:

- an MkDocs hook (``hooks:``) that renders the repository's ``CHANGELOG.md`` as
  the page ``changelog.md``, so the changelog has one source of truth;
- a Griffe extension (``plugins: mkdocstrings: ... extensions:``) that lets the
  package's docstrings keep their Sphinx/PEP 257 conventions (read by IDEs and
  ``help()``) and still render as Markdown in the API reference:
  ``:func:`verify``` and friends become cross-references, ``>>>`` examples
  become code blocks, a paragraph ending in ``::`` ends in ``:`` before its
  (already Markdown) indented literal block, and an attribute documented by
  ``#:`` comments above it (Sphinx's convention) gets them as its docstring.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

# ----------------------------------------------------------------------------- MkDocs hook

_CHANGELOG_PAGE = "changelog.md"


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Any) -> str:
    """``docs/changelog.md`` is a placeholder: its page shows ``CHANGELOG.md`` from the repository root."""
    if page.file.src_uri != _CHANGELOG_PAGE:
        return markdown
    changelog = Path(config["docs_dir"]).parent / "CHANGELOG.md"
    # Links written for the repository (``docs/cli.md``) point at the site's pages.
    return re.sub(r"\]\(docs/", "](", changelog.read_text(encoding="utf-8"))


def on_config(config: Any) -> Any:
    """Rebuild the site when ``CHANGELOG.md`` changes under ``mkdocs serve``."""
    changelog = str(Path(config["docs_dir"]).parent / "CHANGELOG.md")
    if changelog not in config["watch"]:
        config["watch"].append(changelog)
    return config


# ----------------------------------------------------------------------------- Griffe extension

try:
    import griffe
except ImportError:  # MkDocs loads this file as a hook module too; Griffe is only needed by mkdocstrings.
    griffe = None  # type: ignore[assignment]

# :func:`name`, :class:`~pkg.Name`, :py:meth:`Policy.any_of` ...
_ROLE = re.compile(r":(?:py:)?(?P<role>func|meth|class|exc|mod|data|attr|obj|const):`(?P<tilde>~?)(?P<target>[^`]+)`")
_CALLABLE_ROLES = frozenset({"func", "meth"})
_PACKAGE = "nitro_attest"


def _resolve(obj: Any, target: str) -> str | None:
    """The full path of ``target`` as seen from ``obj``'s scope, or None (a builtin, another package)."""
    if target == _PACKAGE or target.startswith(_PACKAGE + "."):
        return target
    head, _, rest = target.partition(".")
    try:
        path = obj.resolve(head)
    except (griffe.NameResolutionError, AttributeError, KeyError):
        return None
    if not path.startswith(_PACKAGE):
        return None
    return f"{path}.{rest}" if rest else path


def _role(obj: Any, match: re.Match[str]) -> str:
    target = match["target"]
    shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
    if match["role"] in _CALLABLE_ROLES:
        shown += "()"
    path = _resolve(obj, target)
    if path is None:
        return f"`{shown}`"
    # An optional cross-reference: a link when the target is in the reference, plain code otherwise.
    return f'<autoref identifier="{html.escape(path)}" optional><code>{html.escape(shown)}</code></autoref>'


def _doctest_blocks(text: str) -> str:
    """Wraps each ``>>>`` example (prompt lines and their output, up to a blank line) in a pycon fence."""
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.lstrip().startswith(">>>") and (index == 0 or not lines[index - 1].strip()):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}```pycon")
            while index < len(lines) and lines[index].strip():
                out.append(lines[index])
                index += 1
            out.append(f"{indent}```")
            continue
        out.append(line)
        index += 1
    return "\n".join(out)


_LITERAL_MARKER = re.compile(r"(?m)(\S)::$")


def markdown_docstring(obj: Any, text: str) -> str:
    """``text`` (a docstring in this package's conventions) as Markdown for mkdocstrings."""
    text = _ROLE.sub(lambda match: _role(obj, match), text)
    text = _doctest_blocks(text)
    # reST "paragraph::" introduces the indented literal block after it; Markdown only needs the indent.
    return _LITERAL_MARKER.sub(r"\1:", text)


def comment_docstring(obj: Any) -> str | None:
    """The ``#:`` comment lines right above an attribute's assignment, joined; None when there are none."""
    if obj.lineno is None or obj.filepath is None:
        return None
    lines = Path(obj.filepath).read_text(encoding="utf-8").splitlines()
    comments: list[str] = []
    index = obj.lineno - 2
    while index >= 0 and lines[index].lstrip().startswith("#:"):
        comments.insert(0, lines[index].lstrip()[2:].strip())
        index -= 1
    return "\n".join(comments) or None


if griffe is not None:

    class SphinxRolesToMarkdown(griffe.Extension):
        """Rewrites every docstring of the package with :func:`markdown_docstring` once it is loaded."""

        def on_object(self, *, obj: Any, loader: Any, **kwargs: Any) -> None:
            if not obj.path.startswith(_PACKAGE):
                return
            if obj.docstring is None and obj.is_attribute:
                text = comment_docstring(obj)
                if text is not None:
                    obj.docstring = griffe.Docstring(text, parent=obj)
            if obj.docstring is not None:
                obj.docstring.value = markdown_docstring(obj, obj.docstring.value)
