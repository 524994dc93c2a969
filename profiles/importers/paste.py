"""Undo what pasting does to a command's output, and split a file holding several commands' outputs.

A capture reaches us through a ticket, a mail or a forum post, not as the
tool wrote it: CRLF line ends, markdown fences and inline backticks, the
shell prompt and the command line itself (``$ lspci -nn``, ``[root@web01 ~]#
dmidecode -t system``), trailing backslashes, a timestamp a logging terminal
or ``dmesg -T``/journalctl put before each line, and several outputs one
after the other.  :func:`sections` returns the pieces, each with the command
that produced it when the paste shows one (the sniffers in forms.py use it as
a strong hint) and the line number it started at, so errors can point into
the original file.  Line *wraps* are form-specific (a wrapped lspci header
and a wrapped dmidecode value look different); each reader undoes them with
:func:`join_wrapped`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

#: commands whose output we read; a prompt line naming one starts a new section
TOOLS = ("lspci", "dmidecode", "lshw", "ip", "ls", "ll", "dmesg", "journalctl", "cat", "grep", "ifconfig",
         "hostnamectl", "systemctl", "inxi", "hwinfo", "tree")
#: a command alone on a line, without a prompt (``lspci -vvv`` pasted above its output)
_BARE_COMMAND = re.compile(
    r"^(?:sudo\s+)?(?:\./|/\S*/)?(?P<cmd>(?:lspci|dmidecode|lshw|hostnamectl|systemctl|inxi|hwinfo|dmesg|journalctl)"
    r"(?:\s+(?:-[\w-]+(?:=\S+)?|[\w./*:][\w./*:-]*))*)\s*$")   # disjoint alternatives: no backtracking blow-up
_PROMPT = re.compile(
    r"^(?:(?:\[[^\]\n]{1,60}\]|[\w.@:~/-]{1,60})\s?)?[$#%>]\s*(?:sudo\s+(?:-\S+\s+)*)?"
    rf"(?P<cmd>(?:/\S*/)?(?:{'|'.join(TOOLS)})\b.*)$")
#: a user prompt (``$ uname -a``, ``me@web01:~$ …``, ``[root@web01 ~]# …``) running any other command
_ANY_PROMPT = re.compile(r"^(?:\$|[\w.-]+@[\w.-]+:\S*[$#]|\[[\w.-]+@[\w.-]+ [^\]]*\][$#]) ?(?P<cmd>\S.*)$")
#: ``# dmidecode 3.2`` is dmidecode's own first line, not a root prompt running it
_DMIDECODE_HEADER = re.compile(r"^# dmidecode \d+\.\d+")
_FENCE = re.compile(r"^\s*(?:```|~~~)\s*[\w+-]*\s*$")
_TIMESTAMP = re.compile(
    r"^(?:\[\s*\d+\.\d+\]\s?"                                   # dmesg: [    0.000000]
    r"|\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\]\s?"   # dmesg -T
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\s+"   # ISO
    r"|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\s+)")              # syslog: Dec  3 12:00:00
_JOURNAL_HOST = re.compile(r"^[\w.-]+ kernel: ")


@dataclass(frozen=True)
class Section:
    """One command's output (or a run of lines with no command shown)."""

    text: str
    first_line: int            # 1-based line of the original file the text starts at
    command: str | None = None  # the command line shown before it, if any
    kernel_log: bool = False   # its lines carried dmesg/journal timestamps


#: a mail archive's quoted-printable: ``=3D`` for ``=``, ``=20`` for a space, ``=`` at a line end (soft break)
_QP_ESCAPE = re.compile(r"=(?:3D|20|09|0A|E2|C2|A0)", re.IGNORECASE)
_QP_SOFT = re.compile(r"=\r?\n")


def undo_quoted_printable(text: str) -> tuple[str, bool]:
    """``text`` with a mail's quoted-printable encoding undone, when it carries some (and whether it did).

    A capture never holds ``=3D`` or a line ending in a lone ``=`` by itself, so either is the mark."""
    if not (_QP_ESCAPE.search(text) and (_QP_SOFT.search(text) or len(_QP_ESCAPE.findall(text)) >= 2)):
        return text, False
    import quopri

    raw = quopri.decodestring(text.replace("\r\n", "\n").encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "replace"), True


def clean_lines(text: str) -> list[str]:
    """CRLF/CR, NUL and other control characters, markdown inline backticks, trailing backslashes
    (a markdown line break after the closing backtick: ``\u0060-[0000:00]-+-00.0\u0060 \\``)."""
    text, _ = undo_quoted_printable(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    lines = []
    for line in text.split("\n"):
        line = "".join(ch for ch in line if ch == "\t" or ch >= " ")
        if line.rstrip().endswith("\\") and not line.rstrip().endswith("\\\\"):
            line = line.rstrip()[:-1].rstrip()
        stripped = line.strip()
        if len(stripped) >= 2 and stripped.startswith("`") and stripped.endswith("`") and "`" not in stripped[1:-1]:
            line = line.replace("`", "", 2) if stripped.count("`") == 2 else line
        elif stripped.count("`") == 1 and not stripped.startswith("```") and (stripped[0] == "`" or stripped[-1] == "`"):
            line = line.replace("`", "", 1)      # inline code a mail client wrapped: its other half is on the next line
        # trailing blanks are kept: a terminal's hard wrap leaves the space it cut at on the first line
        lines.append(line)
    return lines


def _strip_timestamp(line: str) -> tuple[str, bool]:
    match = _TIMESTAMP.match(line)
    if not match:
        return line, False
    rest = line[match.end():]
    journal = _JOURNAL_HOST.match(rest)
    return (rest[journal.end():] if journal else rest), True


def sections(text: str) -> list[Section]:
    """The outputs a pasted file holds, in order, each cleaned of the paste's damage."""
    out: list[Section] = []
    current: list[str] = []
    start, command, stamped, total = 1, None, 0, 0

    def close() -> None:
        nonlocal current, stamped, total
        while current and not current[-1].strip():
            current.pop()
        body = _dedent(current)
        if any(line.strip() for line in body):
            out.append(Section("\n".join(body) + "\n", start, command, kernel_log=total > 0 and stamped * 2 >= total))
        current, stamped, total = [], 0, 0

    for number, line in enumerate(clean_lines(text), 1):
        if _FENCE.match(line):
            continue
        stripped = line.strip().strip("`")
        prompt = None if _DMIDECODE_HEADER.match(stripped) else (_PROMPT.match(stripped)
                                                                  or _ANY_PROMPT.match(stripped)
                                                                  or _BARE_COMMAND.match(stripped))
        if prompt:
            close()
            start, command = number + 1, prompt["cmd"].strip()
            continue
        line, had = _strip_timestamp(line)
        if line.strip():
            total += 1
            stamped += had
        if not current and not line.strip():
            start = number + 1
            continue
        current.append(line)
    close()
    return out


def _dedent(lines: list[str]) -> list[str]:
    """Remove an indentation every line shares (a markdown code block, a quoted mail)."""
    quoted = [ln for ln in lines if ln.strip()]
    if quoted and all(ln.lstrip().startswith(">") for ln in quoted):
        lines = [re.sub(r"^\s*> ?", "", ln) for ln in lines]
    indents = [len(ln) - len(ln.lstrip(" ")) for ln in lines if ln.strip()]
    common = min(indents) if indents else 0
    return [ln[common:] if ln.strip() else "" for ln in lines]


def join_wrapped(lines: list[str], continues: Callable[[str, str], bool]) -> tuple[list[str], list[int]]:
    """Lines with wrapped ones joined back to the line they belong to; also the (0-based) indexes joined.

    ``continues(previous, line)`` says whether ``line`` cannot start a line of the form and so is the
    rest of ``previous``.  A terminal wraps at its width in the middle of a word (joined without a
    space); a mail client at a space it drops: joined with one."""
    out: list[str] = []
    joined: list[int] = []
    physical = ""            # the previous line as it was in the file (its length tells a terminal's wrap)
    for index, line in enumerate(lines):
        if out and line.strip() and out[-1].strip() and continues(out[-1], line):
            previous = out[-1]
            hard = len(physical) >= 79 and not line[:1].isspace()
            out[-1] = previous + line.strip() if hard else previous.rstrip() + " " + line.strip()
            joined.append(index)
        else:
            out.append(line)
        physical = line
    return out, joined
