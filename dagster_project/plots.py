"""Small matplotlib figures embedded in asset metadata as Markdown images."""

import base64
import io

import matplotlib

matplotlib.use("Agg")  # headless: runs have no display
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def figure_markdown(figure: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f"![{alt}](data:image/png;base64,{encoded})"


def line_plot_markdown(x: np.ndarray, y: np.ndarray, xlabel: str, ylabel: str, title: str) -> str:
    figure, axes = plt.subplots(figsize=(5, 3))
    axes.plot(x, y, linewidth=1.2)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    return figure_markdown(figure, title)


def metrics_figure_markdown(p95: np.ndarray, mean_cosine: np.ndarray) -> str:
    """Scatter of signal against coherence, with the distribution of each."""
    figure, (scatter, signal, coherence) = plt.subplots(1, 3, figsize=(12, 3.4))
    scatter.scatter(p95, mean_cosine, s=4, alpha=0.4, linewidths=0)
    scatter.set_xlabel("p95 (signal)")
    scatter.set_ylabel("mean cosine of the window (coherence)")
    scatter.set_title("signal vs coherence")
    signal.hist(p95[np.isfinite(p95)], bins=50)
    signal.set_xlabel("p95")
    signal.set_title("signal")
    coherence.hist(mean_cosine[np.isfinite(mean_cosine)], bins=50)
    coherence.set_xlabel("mean cosine")
    coherence.set_title("coherence")
    for axes in (scatter, signal, coherence):
        axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure_markdown(figure, "gene metrics")
