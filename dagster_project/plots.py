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
