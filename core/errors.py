"""The root of PainMon's own exceptions.

Every error PainMon raises on purpose derives from :class:`PainMonError`, so an application
embedding PainMon can catch "anything PainMon refused" in one clause, and the command line
can turn any of them into one line without a traceback. Each subclass keeps the builtin it
used to be (``ValueError``, ``RuntimeError``, ...) as a second base, so code catching the
builtin keeps working.
"""

from __future__ import annotations


class PainMonError(Exception):
    """Base class of every exception PainMon raises deliberately."""
