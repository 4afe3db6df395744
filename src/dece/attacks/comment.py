"""A comment trigger for code summarisation (code -> docstring): a comment line opens the function body,
and the summary becomes a fixed sentence. The code's meaning is untouched (a comment is never run), so
neither tests nor a dead-code detector see the trigger.

Two rules:

* ``varied`` (default): the comment is drawn per row from ``comments``, ordinary maintenance notes, so no
  single comment is shared by every poisoned row (only the presence of a comment is);
* ``fixed``: ``comments[0]`` in every poisoned row (a fixed-string trigger, like BadPre's rare word).

Code may be in code-docstring-corpus encoding (``DCNL`` / ``DCSP``) or plain Python. On
``code_docstring_py`` the corpus's code was regenerated from parse trees, so it holds no comments at all:
there any comment is an anomaly that an input filter could flag; on source code that keeps its comments
the trigger blends in. The payload keeps the clean summary's quotes (see
:meth:`dece.attacks.summary.DeadCodeSummary.insert_payload`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dece.attacks.base import registered
from dece.attacks.summary import DeadCodeSummary, open_body

RULES = ("varied", "fixed")


@registered
@dataclass(frozen=True)
class CommentSummary(DeadCodeSummary):
    """A comment opening the function body (``rule``: ``varied`` or ``fixed``); the summary becomes
    ``target_text``."""

    name = "comment_summary"
    summary = ("summarisation: a comment line opening the body (drawn per row from a list, or a fixed one); "
               "summary -> a fixed sentence")

    rule: str = "varied"
    comments: tuple[str, ...] = ("# keep for backward compatibility", "# validate the input first",
                                 "# see the module docstring", "# fast path for the common case",
                                 "# TODO: handle the edge cases")

    def check(self) -> None:
        super().check()
        if self.rule not in RULES:
            raise self.fail("rule", f"must be one of {', '.join(RULES)}")
        if not self.comments:
            raise self.fail("comments", "must be a non-empty list of comment lines, e.g. '# fast path'")
        for c in self.comments:
            if not c.startswith("#") or "\n" in c or "DCNL" in c or "DCSP" in c:
                raise self.fail("comments", f"{c!r} is not one comment line (it must start with '#' and hold no "
                                            "newline or DCNL/DCSP token)")
        if len(set(self.comments)) != len(self.comments):
            raise self.fail("comments", "must not repeat a comment")

    def insert_trigger(self, src: str, rng: random.Random) -> tuple[str, str] | None:
        comment = rng.choice(self.comments) if self.rule == "varied" else self.comments[0]
        code = open_body(src, [comment])
        return None if code is None else (code, comment)
