"""PNG plots with matplotlib, without pyplot: safe in background jobs and threads.

Every plot is a :class:`matplotlib.figure.Figure` drawn on its own Agg canvas, so nothing touches
pyplot's global state or a display; :func:`check_plotting` proves that this machine can write a PNG
before a long job starts (and names the missing dependency when it cannot).

>>> check_plotting().startswith("matplotlib ")
True
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from fraudstream.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PNG_SIGNATURE", "check_plotting", "new_figure", "save_png"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GENUINE = "#4C72B0"
FRAUD = "#C44E52"


def check_plotting() -> str:
    """``"matplotlib X.Y.Z (Agg)"`` once a tiny figure has been rendered to a valid PNG;
    :class:`ConfigError` naming the fix when matplotlib is missing or cannot write PNGs."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ConfigError(
            f"plots need matplotlib ({exc}); install it: pip install 'matplotlib>=3.8'"
        ) from exc
    fig = Figure(figsize=(1, 1))
    FigureCanvasAgg(fig)
    fig.add_subplot().plot([0, 1], [0, 1])
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=20)
    except Exception as exc:  # any backend failure means no PNGs
        raise ConfigError(f"matplotlib {matplotlib.__version__} cannot write PNG: {exc}") from exc
    if not buf.getvalue().startswith(PNG_SIGNATURE):
        raise ConfigError(f"matplotlib {matplotlib.__version__} wrote something that is not a PNG")
    return f"matplotlib {matplotlib.__version__} (Agg)"


def new_figure(width: float = 8.0, height: float = 4.5) -> Figure:
    """A figure on its own Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi)
    return path
