"""Where PainMon looks for its bundled assets and user-supplied weights."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def assets_dir() -> Path:
    """The bundled ``assets/`` folder (override with ``PAINMON_ASSETS``)."""
    return Path(os.environ.get("PAINMON_ASSETS", REPO_ROOT / "assets"))


def default_model_path() -> Path:
    """The bundled default PainMon model (fusion head + encoder weights + metadata)."""
    return Path(os.environ.get("PAINMON_MODEL", assets_dir() / "models" / "painmon-default.pt"))


def user_data_dir() -> Path:
    """Per-user folder for downloaded weights and caches (``PAINMON_HOME`` or ~/.painmon)."""
    return Path(os.environ.get("PAINMON_HOME", Path.home() / ".painmon"))


def released_encoder_path() -> Path | None:
    """The released ``Tiny-BioMoE.pth`` if the user has put it in a documented place.

    Checked in order: ``$PAINMON_ENCODER``, ``~/.painmon/Tiny-BioMoE.pth``,
    ``assets/models/Tiny-BioMoE.pth``. Returns None when none exists.
    """
    candidates = []
    if "PAINMON_ENCODER" in os.environ:
        candidates.append(Path(os.environ["PAINMON_ENCODER"]))
    candidates += [user_data_dir() / "Tiny-BioMoE.pth", assets_dir() / "models" / "Tiny-BioMoE.pth"]
    for path in candidates:
        if path.is_file():
            return path
    return None


def sample_sessions_dir() -> Path:
    """The bundled sample recordings (``assets/sessions``): where File > Open starts."""
    return assets_dir() / "sessions"


def recordings_dir() -> Path:
    """Where new recordings and exports are suggested: ``$PAINMON_RECORDINGS``, else
    ``~/Documents/PainMon`` when there is a Documents folder, else ``~/painmon-recordings``
    (never inside the installed package, which may be read-only or replaced on update)."""
    if os.environ.get("PAINMON_RECORDINGS"):
        return Path(os.environ["PAINMON_RECORDINGS"]).expanduser()
    documents = Path.home() / "Documents"
    return documents / "PainMon" if documents.is_dir() else Path.home() / "painmon-recordings"


def inside_package(path: str | os.PathLike) -> bool:
    """Whether ``path`` lies in PainMon's own folder (the checkout or the installed package)."""
    try:
        Path(path).resolve().relative_to(REPO_ROOT)
    except ValueError:
        return False
    return True
