"""The executed notebook of a ``notebook_task`` attempt as a standalone HTML page, for the web
process (the run page's output frame and ``runs/export``): nbconvert's lab template with styles
and images inline, no scripts, the author's HTML cleaned with bleach.

nbformat, nbconvert and bleach are imported where they are used: most requests never render.
"""

from runs.executors.files import read_task_file

# The lab template without the scripts it loads from CDNs (RequireJS, MathJax, Mermaid): the
# page must work offline, and sanitising removes the outputs' scripts anyway.
_HTML_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def render_html(executed_path: str, redact=None) -> str:
    """The executed notebook as a standalone HTML page (styles and images inline, no scripts);
    `redact(outputs)` gives each code cell's outputs as shown (runs/task_logs.py: secret values)."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        template_file="lakeflow_notebook.html.j2",
        extra_loaders=[jinja2.DictLoader({"lakeflow_notebook.html.j2": _HTML_TEMPLATE})],
        embed_images=True,
        # Markdown and text/html outputs are the notebook author's HTML; whoever views the
        # run must not get the author's scripts. nbconvert's own cleaner also escapes <p>,
        # <h1>, <img>, <thead>..., which garbles every markdown cell: ours allows them.
        sanitize_html=True,
        filters={"clean_html": _clean_html},
    )
    text = _read_executed(executed_path).decode("utf-8", "replace")
    try:
        notebook = nbformat.reads(text, as_version=4)
        if redact is not None:
            for cell in notebook.cells:
                if cell.get("cell_type") == "code":
                    cell["outputs"] = redact(cell.get("outputs", []))
        body, _ = exporter.from_notebook_node(notebook)
    except Exception as exc:  # the task may have rewritten its own file: say so, never echo it
        raise NotebookUnreadable(f"the executed notebook is not a notebook this server can render "
                                 f"({type(exc).__name__})") from None
    return body


MAX_RENDERED_NOTEBOOK_BYTES = 64 * 1024 * 1024


class NotebookUnreadable(OSError):
    """The executed notebook is gone, not a regular file, too big or not a notebook."""


def _read_executed(path: str) -> bytes:
    try:
        return read_task_file(path, MAX_RENDERED_NOTEBOOK_BYTES)
    except OSError as exc:  # a symlink the task planted, a directory, too big, gone
        raise NotebookUnreadable(f"the executed notebook cannot be read: {exc.strerror or exc}") from None


_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd",
    "del", "details", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s",
    "small", "span", "strong", "style", "sub", "summary", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "u", "ul",
}  # <style>: pandas puts one before every DataFrame; CSS cannot run code
_ALLOWED_ATTRIBUTES = {
    "*": {"class", "id", "title", "align"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "table": {"border"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "style": {"scoped", "type"},
}


def _clean_html(element) -> str:
    """Keep the markup of documents, tables and images; drop scripts, handlers and frames."""
    import bleach

    text = element.decode() if isinstance(element, bytes) else str(element)
    return bleach.clean(text, tags=_ALLOWED_TAGS, attributes=_allowed_attribute,
                        protocols={"http", "https", "mailto", "data"}, strip=True)


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if name not in _ALLOWED_ATTRIBUTES["*"] | _ALLOWED_ATTRIBUTES.get(tag, set()):
        return False
    # data: URIs are for inline images only (matplotlib figures, embedded markdown images).
    return not (name == "href" and value.strip().lower().startswith("data:"))
