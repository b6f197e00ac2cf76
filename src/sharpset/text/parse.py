"""How a response's markdown is read: line kinds, fenced code and inline spans, line based.

A deliberately small subset of CommonMark/GFM (the reading :mod:`sharpset.text.shape`'s columns and
:func:`markdown_stripped` share):

1. ``\\r\\n`` and ``\\r`` become ``\\n``; the text is split into lines (a final ``\\n`` ends the last
   line; it does not add an empty one).
2. **Fenced code**: a line of 3+ backticks or tildes (<= 3 spaces indent) opens a block; a line of
   the same character, at least as long, with nothing else closes it. A fence never closed runs to
   the end of the text and sets ``shape_unterminated_fence``. Nothing inside a block is looked at
   again (``# comment`` is not a heading, ``- x`` is not a bullet, ``I`` is not first person).
   Indented (4-space) code blocks are *not* recognised: LLM answers indent nested list items far
   more often than they indent code.
3. Every other non-blank line gets one kind, first match wins: ATX heading (``#``..``######`` then a
   space or end of line), table separator row (``|---|:--:|``, needs a ``|``, directly under a line
   with a ``|`` -- that line becomes the table header), table row (a line with ``|`` right after a
   table line), setext underline (``===`` or ``---`` directly under a plain text line -- that line
   becomes a heading), horizontal rule (3+ ``-``, ``*`` or ``_``, spaces allowed), bullet item
   (``-``, ``*``, ``+`` then whitespace, or ``•``, after any indent), numbered item (``1.``, ``1)``,
   ``(1)``, ``(a)``, ``(iv)``, ``a)`` then whitespace, after any indent; ``a.``/``A.`` are *not*
   items, too often initials), block quote (``>``), else plain text.
"""

from __future__ import annotations

import re

# Line kinds and block regexes (compiled once)
BLANK, FENCE, CODE, HEADING, SETEXT, RULE, BULLET, NUMBERED, TABLE, TABLE_SEP, QUOTE, TEXT = range(12)

_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_ATX = re.compile(r" {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r" {0,3}(?:=+|-+)[ \t]*$")
_RULE = re.compile(r" {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$")
_TABLE_SEP = re.compile(r"[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_BULLET = re.compile(r"([ \t]*)(?:[-*+][ \t]+|•[ \t]*)(\S.*)")
_NUMBERED = re.compile(
    r"([ \t]*)(?:\d{1,3}[.)]|\((?:\d{1,3}|[A-Za-z]|[ivxlcIVXLC]{1,5})\)|[a-z]\))[ \t]+(\S.*)")
_QUOTE = re.compile(r" {0,3}>[ \t]?(.*)")

# Inline markdown, applied in this order: code spans, links/images, bold, italic. Span lengths are
# bounded and the link parts possessive so that a line full of unmatched markers costs O(line), not
# O(line^2) (a 12k-char line of "[a](" took 5 s before): longer spans are simply not recognised.
_INLINE_CODE = re.compile(r"(`+)(?!`)(.{1,1000}?)(?<!`)\1(?!`)")
_LINK = re.compile(r"(!?)\[([^\]\n]{0,500}+)\]"  # [text] or ![alt]
                   r"\([ \t]*+<?(?:[^()\s<>]|\([^()\s]*+\))*+>?"  # (url, one level of parens allowed
                   r"(?:[ \t]+(?:\"[^\"\n]*+\"|'[^'\n]*+'))?[ \t]*\)")  # optional "title")
_AUTOLINK = re.compile(r"<(?:https?|ftp|mailto):[^>\s]+>")
_BOLD = re.compile(r"\*\*(?=\S)(.{1,500}?)(?<=\S)\*\*|(?<!\w)__(?=\S)(.{1,500}?)(?<=\S)__(?!\w)")
_ITALIC = re.compile(r"(?<![*\w\\])\*(?=[^\s*])(.{1,500}?)(?<=[^\s*\\])\*(?![*\w])"
                     r"|(?<![\w\\])_(?=[^\s_])(.{1,500}?)(?<=[^\s_\\])_(?!\w)")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])")


class _Doc:
    """One parsed text: per-line kinds and contents plus the block counts found while parsing."""

    __slots__ = ("lines", "kinds", "content", "indent", "code_blocks", "code_lines", "unterminated")

    def __init__(self, text: str):
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if len(lines) > 1 and not lines[-1]:
            lines.pop()  # a final newline ends the last line; it does not start an empty one
        n = len(lines)
        kinds, content, indent = [BLANK] * n, list(lines), [0] * n
        self.code_blocks = self.code_lines = 0
        self.unterminated = False
        fence = None  # (char, length) of the open fence
        in_table = False
        for i, line in enumerate(lines):
            if fence is not None:
                s = line.strip()
                if (len(line) - len(line.lstrip(" ")) <= 3 and len(s) >= fence[1] and s[0] == fence[0]
                        and s == fence[0] * len(s)):
                    kinds[i], fence = FENCE, None
                else:
                    kinds[i] = CODE
                    self.code_lines += 1
                continue
            if not line.strip():
                in_table = False
                continue
            m = _FENCE_OPEN.match(line)
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                kinds[i], fence, in_table = FENCE, (m.group(1)[0], len(m.group(1))), False
                self.code_blocks += 1
                continue
            prev = kinds[i - 1] if i else BLANK
            if (m := _ATX.match(line)) is not None:
                kinds[i], content[i] = HEADING, m.group(1) or ""
            elif "|" in line and prev == TEXT and "|" in lines[i - 1] and _TABLE_SEP.match(line):
                kinds[i - 1], kinds[i], in_table = TABLE, TABLE_SEP, True
                continue
            elif in_table and "|" in line:
                kinds[i] = TABLE
                continue
            elif prev == TEXT and _SETEXT.match(line):
                kinds[i - 1], kinds[i] = HEADING, SETEXT
            elif _RULE.match(line):
                kinds[i] = RULE
            elif (m := _BULLET.match(line)) is not None:
                kinds[i], content[i], indent[i] = BULLET, m.group(2), len(m.group(1).expandtabs(4))
            elif (m := _NUMBERED.match(line)) is not None:
                kinds[i], content[i], indent[i] = NUMBERED, m.group(2), len(m.group(1).expandtabs(4))
            elif (m := _QUOTE.match(line)) is not None:
                kinds[i], content[i] = QUOTE, m.group(1)
            else:
                kinds[i], content[i] = TEXT, line.strip()
            in_table = False
        if fence is not None:
            self.unterminated = True
        self.lines, self.kinds, self.content, self.indent = lines, kinds, content, indent


def _strip_inline(s: str, *, keep_code: bool, counts: list[int] | None = None) -> str:
    """Remove inline markdown from one line. ``counts`` (if given) gets [code, links, bold, italic] added."""
    if "`" in s:
        s, n = _INLINE_CODE.subn((lambda m: m.group(2).strip()) if keep_code else " ", s)
        if counts is not None:
            counts[0] += n
    if "](" in s:
        found = _LINK.findall(s)
        if counts is not None:
            counts[1] += sum(1 for bang, _ in found if not bang)
        s = _LINK.sub(r"\2", s)
    if "<" in s:
        s, n = _AUTOLINK.subn(lambda m: m.group(0)[1:-1], s)
        if counts is not None:
            counts[1] += n
    if "*" in s or "_" in s:
        s, n = _BOLD.subn(lambda m: m.group(1) or m.group(2), s)
        s, k = _ITALIC.subn(lambda m: m.group(1) or m.group(2), s)
        if counts is not None:
            counts[2] += n
            counts[3] += k
    if "\\" in s:
        s = _ESCAPE.sub(r"\1", s)
    return s


def _table_cells(line: str) -> str:
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|"):
        s = s[:-1]
    return "  ".join(c.strip() for c in s.split("|"))


def _render(doc: _Doc, *, keep_code: bool) -> list[str]:
    out = []
    for kind, line, content in zip(doc.kinds, doc.lines, doc.content):
        if kind == CODE:
            if keep_code:
                out.append(line)
        elif kind in (FENCE, SETEXT, RULE, TABLE_SEP):
            continue
        elif kind == BLANK:
            out.append("")
        elif kind == TABLE:
            out.append(_strip_inline(_table_cells(line), keep_code=True))
        else:
            out.append(_strip_inline(content, keep_code=True))
    return out


def markdown_stripped(text: str, *, keep_code: bool = True) -> str:
    """``text`` with markdown syntax removed and the words kept (for loose IFEval-style checks).

    Removes: fence lines, heading markers (``#`` and setext underlines), horizontal rules, list
    markers (bullets and numbers), ``>`` quote markers, table separator rows and cell pipes, bold /
    italic markers, backslash escapes, and link/image syntax (the link text / alt text stays).
    Inline code keeps its content without backticks. Fenced code content is kept verbatim unless
    ``keep_code=False``. Line structure (blank lines between paragraphs) is preserved.
    """
    return "\n".join(_render(_Doc(text), keep_code=keep_code))
