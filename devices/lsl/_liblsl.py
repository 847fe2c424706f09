"""liblsl's own logging, lowered before any LSL call.

liblsl logs through its own logger to stderr: while a followed stream is gone it prints an
ERR line every second, which buries PainMon's log (the LSL source reports lost streams in
its health, once). liblsl reads its configuration once, lazily, at its first use, so
:func:`quiet_liblsl` must run before that; the CLI and this package's facade call it.

The level is liblsl's: -3 fatal only (PainMon's default), -2 errors, -1 warnings, 0 info,
up to 9 for debugging. ``PAINMON_LSL_LOG_LEVEL`` sets another; a site configuration named by
``LSLAPICFG`` (liblsl's own variable) is left alone.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

LOG_LEVEL_ENV = "PAINMON_LSL_LOG_LEVEL"
DEFAULT_LEVEL = -3
_done = False


def quiet_liblsl(level: int | None = None) -> bool:
    """Set liblsl's log level (before its first use); True if it was set now. Idempotent."""
    global _done
    if _done or os.environ.get("LSLAPICFG"):
        return False
    if level is None:
        text = os.environ.get(LOG_LEVEL_ENV, "")
        try:
            level = int(text) if text else DEFAULT_LEVEL
        except ValueError:
            log.warning("%s=%r is not an integer; using %d", LOG_LEVEL_ENV, text, DEFAULT_LEVEL)
            level = DEFAULT_LEVEL
    try:
        import pylsl

        pylsl.set_config_content(f"[log]\nlevel = {int(level)}\n")
    except (ImportError, NotImplementedError, OSError) as exc:  # an old liblsl: keep its default
        log.debug("cannot set liblsl's log level: %s", exc)
        return False
    _done = True
    return True
