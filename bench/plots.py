"""Pictures a person would rather look at than numbers (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def sample_grid(samples: np.ndarray, path: Path, title: str, real: np.ndarray | None = None) -> None:
    """8x8 image grid for image data; a scatter over the real points for 2-D data."""
    fig = plt.figure(figsize=(5, 5), dpi=100)
    if samples.ndim == 2 and samples.shape[1] == 2:
        ax = fig.add_subplot()
        if real is not None:
            ax.scatter(*real[:2000].T, s=2, c="tab:orange", alpha=0.3, label="real")
        ax.scatter(*samples.T, s=4, c="tab:blue", label="generated")
        ax.legend(loc="upper right", fontsize=7)
        ax.set_aspect("equal")
    else:
        side = int(np.sqrt(samples[0].size))
        imgs = samples[:64].reshape(-1, side, side)
        n = int(np.ceil(np.sqrt(len(imgs))))
        canvas = np.ones((n * (side + 2), n * (side + 2)))
        for i, im in enumerate(imgs):
            r, c = divmod(i, n)
            canvas[r * (side + 2) + 1 : r * (side + 2) + 1 + side, c * (side + 2) + 1 : c * (side + 2) + 1 + side] = im
        ax = fig.add_subplot()
        ax.imshow(canvas, cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
    ax.set_title(title, fontsize=9)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
