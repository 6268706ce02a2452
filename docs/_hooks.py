"""Build-time helpers of the documentation site (not part of the package, not published).

Two things, both wired in ``mkdocs.yml``:

- MkDocs hooks (``hooks:``) that render the repository's ``CHANGELOG.md`` as
  the page ``changelog.md``, so the changelog has one source of truth; write
  ``css/pygments.css`` from the Pygments style that colours the code (the
  site highlights at build time and loads nothing from another host); let
  long API names in headings break after a dot; and give each cross-reference
  the public name it links to as its tooltip;
- a Griffe extension (``plugins: mkdocstrings: ... extensions:``) that lets the
  package's docstrings keep their Sphinx/PEP 257 conventions (read by IDEs and
  ``help()``) and still render as Markdown in the API reference:
  ``:func:`verify``` and friends become cross-references, ``>>>`` examples
  become code blocks, a paragraph ending in ``::`` ends in ``:`` before its
  (already Markdown) indented literal block, and an attribute documented by
  ``#:`` comments above it (Sphinx's convention) gets them as its docstring.
  A value or default written with a private name (``= _DEFAULT_MEMORY``) shows
  what it is instead (``= 512``), or ``...`` / nothing when that is not a
  constant, and a private type alias in an annotation is written out: the
  reference names no private object.
"""

from __future__ import annotations

import ast
import html
import importlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeGuard

from mkdocs.structure.files import File, Files
from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped]

# ----------------------------------------------------------------------------- MkDocs hook

_CHANGELOG_PAGE = "changelog.md"
_PACKAGE = "nitro_attest"


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Any) -> str:
    """``docs/changelog.md`` is a placeholder: its page shows ``CHANGELOG.md`` from the repository root."""
    if page.file.src_uri != _CHANGELOG_PAGE:
        return markdown
    changelog = Path(config["docs_dir"]).parent / "CHANGELOG.md"
    # Links written for the repository (``docs/cli.md``) point at the site's pages.
    return re.sub(r"\]\(docs/", "](", changelog.read_text(encoding="utf-8"))


_PYGMENTS_CSS = "css/pygments.css"
#: Pygments' own default: dark enough on the theme's light grey code background (#f8f8f8).
_PYGMENTS_STYLE = "default"


def on_files(files: Files, *, config: Any) -> Files:
    """Adds ``css/pygments.css`` (listed in ``extra_css``), the rules for the classes Pygments writes."""
    css = HtmlFormatter(style=_PYGMENTS_STYLE).get_style_defs(".highlight")
    files.append(File.generated(config, _PYGMENTS_CSS, content=css))
    return files


# The dotted name in an API heading: <span class="doc doc-object-name ...">nitro_attest.verify</span>.
_OBJECT_NAME = re.compile(r'(<span class="doc doc-object-name[^"]*">)([^<]+)(</span>)')


def on_page_content(content: str, *, page: Any, config: Any, files: Any) -> str:
    """A long API name in a heading may break after each dot (a phone is narrower than the name)."""
    return _OBJECT_NAME.sub(lambda match: match[1] + match[2].replace(".", ".<wbr>") + match[3], content)


# A cross-reference as mkdocs-autorefs writes it: its tooltip names the object where it is defined
# (a private module, nitro_attest.kms._key_policy.parse_key_policy) and the heading's markup around it.
_AUTOREF = re.compile(r'<a class="autorefs autorefs-internal" title="[^"]*" href="(?P<href>[^"#]*#(?P<id>[^"]+))"')


# The tooltip of a name the reference does not document (a private helper named in an annotation or a docstring).
_PRIVATE_TITLE = re.compile(r' title="[^"]*\b' + re.escape(_PACKAGE) + r'(?:\.\w+)*\._(?!_)\w*[^"]*"')


def on_post_page(output: str, *, page: Any, config: Any) -> str:
    """Each cross-reference's tooltip is the public name it links to (its anchor); none names a private one."""
    output = _AUTOREF.sub(
        lambda match: f'<a class="autorefs autorefs-internal" title="{match["id"]}" href="{match["href"]}"', output
    )
    return _PRIVATE_TITLE.sub("", output)


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


#: A value shown as what it evaluates to: literals only, so the reference shows no object's repr.
_LITERAL_TYPES = (bool, int, float, str, bytes)


def _nodes(expr: Any) -> Iterator[Any]:
    """``expr`` and every expression inside it (Griffe's ``iterate`` yields one level; a name, itself)."""
    yield expr
    if isinstance(expr, griffe.Expr):
        for child in expr.iterate(flat=False):
            if child is not expr:
                yield from _nodes(child)


def _names_private(expr: Any) -> bool:
    return any(isinstance(node, griffe.ExprName) and node.name.startswith("_") for node in _nodes(expr))


def _is_constant(expr: Any) -> bool:
    """Names, attributes, literals and arithmetic only: what it evaluates to does not depend on the machine."""
    constant = (str, griffe.ExprName, griffe.ExprAttribute, griffe.ExprBinOp, griffe.ExprUnaryOp)
    return all(isinstance(node, constant) for node in _nodes(expr))


def _runtime(path: str) -> Any:
    """The object at ``path`` (``nitro_attest.testing.TestPKI.create``) in the imported package."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:]:
            found = getattr(found, part)
        return found
    raise ImportError(path)


def _literal(expr: Any, value: Any) -> str | None:
    """``value`` written as Python when ``expr`` is a constant that evaluated to a literal, else None."""
    if _is_constant(expr) and isinstance(value, _LITERAL_TYPES):
        return repr(value)
    return None


def _private_alias(name: Any) -> str | None:
    """What the private type alias ``name`` (``_Document: TypeAlias = "A | B"``) stands for, or None."""
    if not isinstance(name, griffe.ExprName) or not name.name.startswith("_") or not _is_scope(name.parent):
        return None
    alias: Any = name.parent.members.get(name.name)
    if alias is None or alias.is_alias or not alias.is_attribute or str(alias.annotation) != "TypeAlias":
        return None
    written = ast.parse(str(alias.value), mode="eval").body
    # A forward reference ("A | B") stands for its text; anything else (Literal["same", "none"]) for itself.
    if isinstance(written, ast.Constant) and isinstance(written.value, str):
        return written.value
    return str(alias.value)


def _is_scope(parent: object) -> TypeGuard[griffe.Module | griffe.Class]:
    """A name written in a module or a class body (an attribute's own parts have a name as their parent)."""
    return isinstance(parent, (griffe.Module, griffe.Class))


def _expand_aliases(annotation: Any) -> Any:
    """``annotation`` with each private type alias in it written out, so the signature says what it takes."""
    if not isinstance(annotation, griffe.Expr):
        return annotation
    names = {node.name: _private_alias(node) for node in _nodes(annotation) if isinstance(node, griffe.ExprName)}
    aliases = {name: value for name, value in names.items() if value is not None}
    if not aliases:
        return annotation
    scope = next(
        node.parent for node in _nodes(annotation) if isinstance(node, griffe.ExprName) and _is_scope(node.parent)
    )
    if isinstance(annotation, griffe.ExprName):
        text = aliases[annotation.name]
    else:
        text = re.sub(
            r"\b\w+\b", lambda match: f"({aliases[match[0]]})" if match[0] in aliases else match[0], str(annotation)
        )
    # One level: an alias that names itself (a recursive JSON value) stays as it is.
    return griffe.safe_get_annotation(ast.parse(text, mode="eval").body, parent=scope) or annotation


def public_values(obj: Any) -> None:
    """Rewrites the values, defaults and annotations of ``obj``'s public members that name a private object."""
    for member in obj.members.values():
        if member.is_alias:
            continue
        if not member.name.startswith("_") or member.name == "__init__":
            if member.is_attribute:
                member.annotation = _expand_aliases(member.annotation)
                if _names_private(member.value):
                    shown = _is_constant(member.value) and _literal(member.value, _runtime(member.path))
                    member.value = shown or None
            # The reference shows each @overload's signature too.
            for function in [member, *(member.overloads or [])] if member.is_function else []:
                function.returns = _expand_aliases(function.returns)
                for parameter in function.parameters:
                    parameter.annotation = _expand_aliases(parameter.annotation)
                    if _names_private(parameter.default):
                        default = inspect.signature(_runtime(member.path)).parameters[parameter.name].default
                        # "..." is how a stub says "has a default" when that default is no literal.
                        parameter.default = _literal(parameter.default, default) or "..."
        # Private modules too: most public names are defined there and re-exported.
        if member.is_module or member.is_class:
            public_values(member)


if griffe is not None:

    class SphinxRolesToMarkdown(griffe.Extension):
        """Rewrites every docstring of the package with :func:`markdown_docstring` once it is loaded, and
        every value or default that names a private object with :func:`public_values`."""

        def on_package(self, *, pkg: Any, loader: Any, **kwargs: Any) -> None:
            if pkg.path == _PACKAGE:
                public_values(pkg)

        def on_object(self, *, obj: Any, loader: Any, **kwargs: Any) -> None:
            if not obj.path.startswith(_PACKAGE):
                return
            if obj.docstring is None and obj.is_attribute:
                text = comment_docstring(obj)
                if text is not None:
                    obj.docstring = griffe.Docstring(text, parent=obj)
            if obj.docstring is not None:
                obj.docstring.value = markdown_docstring(obj, obj.docstring.value)
