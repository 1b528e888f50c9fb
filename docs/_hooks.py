"""MkDocs hook: the docstrings cross-reference in RST (``:func:`name```), which Markdown leaves as ``:func:`` text
before the code span; drop the role so the name reads as code, as in the rest of the pages."""

import re

_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):(?=<code>)")


def on_page_content(html, **kwargs):
    return _ROLE.sub("", html)
