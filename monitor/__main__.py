"""``python -m monitor``: the same command line as ``painmon`` (for a checkout without the installed script)."""

import sys

from monitor.cli import main

sys.exit(main())
