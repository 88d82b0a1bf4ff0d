"""Pictures a person would rather look at than numbers (matplotlib, headless).

Every function takes plain arrays or DataFrames and writes one PNG; bench.analysis.report finds
the data in run directories. Series are coloured in the order given, and lines
that coincide (backends in parity) are drawn thick to thin so each stays visible.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.core.files import replacing  # noqa: E402

LOSS_PANELS = (("d_loss", "critic loss (d_loss)"), ("w_estimate", "Wasserstein estimate"),
               ("g_loss", "generator loss (g_loss)"))
GRID = 64  # samples shown per grid


def colors(labels: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {lab: cmap(i % 10) for i, lab in enumerate(labels)}


def _width(i: int) -> float:
    return max(0.8, 3.0 - 0.6 * i)


def _grid(n: int, width: float, height: float, max_cols: int = 4) -> tuple[plt.Figure, list[plt.Axes]]:
    """n panels in rows of at most max_cols; the unused cells hidden."""
    cols = min(n, max_cols)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    return fig, list(axes.ravel()[:n])


def _save(fig: plt.Figure, path: Path) -> None:
    with replacing(path) as tmp:  # a full disk leaves the previous picture, not half of one
        fig.savefig(tmp, bbox_inches="tight", dpi=100)
    plt.close(fig)


def _finish(fig: plt.Figure, axes, path: Path, title: str, xlabel: str = "step") -> None:
    """The line plots' common end: axis labels, grid, the legend in the first panel, title, save."""
    for ax in axes:
        ax.set_xlabel(xlabel, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def _is_2d(samples: np.ndarray) -> bool:
    """Points in the plane, not images (whose last axis is a row of pixels or all of them)."""
    return samples.shape[-1] == 2


def _image_shape(pixels: int) -> tuple[int, int, int]:
    """(H, W, C) of a flattened square image: grey if the count is a square, else RGB."""
    for c in (1, 3):
        side = int(round(np.sqrt(pixels / c)))
        if side * side * c == pixels:
            return side, side, c
    raise ValueError(f"{pixels} values are no square grey or RGB image")


def _mosaic(imgs: np.ndarray) -> np.ndarray:
    """(rows, cols, ...) images in [0, 1], square, grey or RGB, flat or HWC, into one
    (H, W, C) canvas with a 1-pixel white border each."""
    rows, cols = imgs.shape[:2]
    h, w, c = _image_shape(int(np.prod(imgs.shape[2:])))
    tiles = np.pad(np.clip(imgs.reshape(rows, cols, h, w, c), 0, 1),
                   ((0, 0), (0, 0), (1, 1), (1, 1), (0, 0)), constant_values=1)
    return tiles.transpose(0, 2, 1, 3, 4).reshape(rows * (h + 2), cols * (w + 2), c)


def _show(ax: plt.Axes, canvas: np.ndarray) -> None:
    ax.imshow(canvas[..., 0] if canvas.shape[-1] == 1 else canvas, cmap="gray", vmin=0, vmax=1)
    ax.axis("off")


def _draw_samples(ax: plt.Axes, samples: np.ndarray, real: np.ndarray | None) -> None:
    """A scatter over the real points for 2-D data, else an 8x8 image grid."""
    if _is_2d(samples):
        if real is not None:
            ax.scatter(*real[:2000].T, s=2, c="tab:orange", alpha=0.3, label="real")
        ax.scatter(*samples[:2000].T, s=4, c="tab:blue", label="generated")
        ax.legend(loc="upper right", fontsize=7)
        ax.set_aspect("equal")
        return
    imgs = samples[:GRID].reshape(len(samples[:GRID]), -1)
    n = int(np.ceil(np.sqrt(len(imgs))))
    imgs = np.concatenate([imgs, np.ones((n * n - len(imgs), imgs.shape[1]))])  # blank tail tiles
    _show(ax, _mosaic(imgs.reshape(n, n, -1)))


def sample_grid(samples: np.ndarray, path: Path, title: str, real: np.ndarray | None = None) -> None:
    """8x8 image grid for image data; a scatter over the real points for 2-D data."""
    fig, ax = plt.subplots(figsize=(5, 5), layout="constrained")
    _draw_samples(ax, samples, real)
    ax.set_title(title, fontsize=9)
    _save(fig, path)


def samples_side_by_side(samples: dict[str, np.ndarray], real: np.ndarray | None, path: Path, title: str) -> None:
    """One panel per backend/mode; for images a first panel of real images, for 2-D data
    the real distribution under every scatter."""
    panels = list(samples.items())
    if real is not None and not _is_2d(real):
        panels.insert(0, ("real", real))
    fig, axes = _grid(len(panels), 3.2, 3.4)
    for ax, (label, s) in zip(axes, panels, strict=True):
        _draw_samples(ax, s, real)
        ax.set_title(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def loss_curves(curves: dict[str, pd.DataFrame], path: Path, title: str) -> None:
    """d_loss, w_estimate, g_loss and mean critic values on real (solid) and fake (dashed)
    against step, every series overlaid; a column with no values gets no panel."""
    def has(col: str) -> bool:
        return any(col in df and df[col].notna().any() for df in curves.values())

    panels = [p for p in LOSS_PANELS if has(p[0])]
    critic = has("d_real")
    n = len(panels) + critic
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False, layout="constrained")
    col = colors(list(curves))
    for i, (label, df) in enumerate(curves.items()):
        for ax, (metric, name) in zip(axes[0][: len(panels)], panels, strict=True):
            ax.plot(df["step"], df[metric], color=col[label], lw=_width(i), label=label)
            ax.set_title(name, fontsize=9)
        if critic:
            ax = axes[0, -1]
            ax.plot(df["step"], df["d_real"], color=col[label], lw=_width(i), label=f"{label} real")
            ax.plot(df["step"], df["d_fake"], color=col[label], lw=_width(i), ls="--", label=f"{label} fake")
            ax.set_title("mean critic value: real (solid), fake (dashed)", fontsize=9)
    _finish(fig, axes[0], path, title)


def quality_curves(curves: dict[str, pd.DataFrame], path: Path, title: str) -> None:
    """One panel per metric: value against training wall-clock seconds, one line per series.
    Each DataFrame has columns wall_s, metric, value."""
    metrics = list(dict.fromkeys(m for df in curves.values() for m in df["metric"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4), squeeze=False, layout="constrained")
    col = colors(list(curves))
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, (label, df) in enumerate(curves.items()):
            d = df[df["metric"] == metric].sort_values("wall_s")
            ax.plot(d["wall_s"], d["value"], marker="o", ms=3, color=col[label], lw=_width(i), label=label)
        ax.set_title(metric, fontsize=9)
    _finish(fig, axes[0], path, title, "training seconds")


def step_times(rows: pd.DataFrame, path: Path, title: str) -> None:
    """Horizontal bars of median ms per step with min/max whiskers; rows has columns
    label, step_ms_median, step_ms_min, step_ms_max. Log axis when the spread is wide."""
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2), layout="constrained")
    y = np.arange(len(rows))[::-1]
    med, hi = rows["step_ms_median"].to_numpy(float), rows["step_ms_max"].to_numpy(float)
    err = np.stack([med - rows["step_ms_min"].to_numpy(float), hi - med])
    ax.barh(y, med, xerr=err, color=list(colors(list(rows["label"])).values()), capsize=3)
    ax.set_yticks(y, rows["label"], fontsize=8)
    for yi, m, h in zip(y, med, hi, strict=True):
        ax.annotate(f"  {m:.3g} ms", (h, yi), va="center", fontsize=8)
    if med.max() / max(med.min(), 1e-9) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("ms per step (median; whiskers min and max over timed blocks)", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def interpolation(paths: dict[str, np.ndarray], path: Path, title: str, real: np.ndarray | None = None) -> None:
    """G(z) along straight lines in z, one panel per series. Each array is (rows, steps,
    *sample_shape): for images one strip per row, for 2-D data one path per row (o = start)."""
    planar = _is_2d(next(iter(paths.values())))
    fig, axes = _grid(len(paths), *((3.6, 3.6) if planar else (8, 2.6)), max_cols=4 if planar else 1)
    for ax, (label, a) in zip(axes, paths.items(), strict=True):
        if planar:
            if real is not None:
                ax.scatter(*real[:2000].T, s=2, c="tab:orange", alpha=0.2)
            for row in a.reshape(len(a), -1, 2):
                ax.plot(*row.T, marker=".", lw=1)
                ax.plot(*row[0], "ko", ms=4)
            ax.set_aspect("equal")
        else:
            _show(ax, _mosaic(a.reshape(*a.shape[:2], -1)))
        ax.set_title(f"{label}: G(z) along lines in z", fontsize=9)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def critic_histograms(weights: dict[str, np.ndarray], clip: float | None, path: Path, title: str) -> None:
    """Histogram of every final critic weight per series, with the clip bounds marked."""
    fig, axes = _grid(len(weights), 3.6, 3)
    for ax, (label, w) in zip(axes, weights.items(), strict=True):
        ax.hist(w, bins=60, color="tab:blue")
        if clip:
            for c in (-clip, clip):
                ax.axvline(c, color="tab:red", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set_title(f"{label}: critic weights" + (f" (clip ±{clip:g})" if clip else ""), fontsize=9)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def horizon_curves(curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], thresholds: tuple[float, ...],
                   path: Path, title: str, baselines: int = 1) -> None:
    """One log-scale panel per quantity (loss, weights): each run's distance from the reference
    against step, the first `baselines` series (the rounding baseline) in grey shades and dashed,
    the thresholds dotted."""
    quantities = list(dict.fromkeys(q for c in curves.values() for q in c))
    fig, axes = plt.subplots(1, len(quantities), figsize=(5.5 * len(quantities), 3.8), squeeze=False,
                             layout="constrained")
    col = colors(list(curves)[baselines:])
    for ax, q in zip(axes[0], quantities, strict=True):
        for i, (label, c) in enumerate(curves.items()):
            steps, dist = c[q]
            keep = dist > 0  # a log axis has no zero: identical values are left out, not drawn at the floor
            style = {"color": str(0.55 * i / max(1, baselines - 1)), "ls": "--", "lw": 1.5} if i < baselines \
                else {"color": col[label], "lw": 1.0}
            ax.plot(steps[keep], dist[keep], label=label, marker="o" if q == "weights" else None, ms=2, **style)
        for th in thresholds:
            ax.axhline(th, color="grey", ls=":", lw=0.8)
        ax.set_yscale("log")
        ax.set_title(f"{q}: relative distance from float64", fontsize=9)
    _finish(fig, axes[0], path, title)


def seed_curves(curves: dict[str, pd.DataFrame], path: Path, title: str) -> None:
    """One panel per metric: its mean over seeds against step, one line per series, with a
    band from the lowest to the highest seed. Each DataFrame has columns seed, step, metric, value."""
    metrics = list(dict.fromkeys(m for df in curves.values() for m in df["metric"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4), squeeze=False, layout="constrained")
    col = colors(list(curves))
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, (label, df) in enumerate(curves.items()):
            g = df[df["metric"] == metric].groupby("step")["value"]
            seeds = df["seed"].nunique()
            ax.plot(g.mean().index, g.mean(), color=col[label], lw=_width(i), label=f"{label} ({seeds} seeds)")
            ax.fill_between(g.min().index, g.min(), g.max(), color=col[label], alpha=0.12)
        ax.set_title(metric, fontsize=9)
    _finish(fig, axes[0], path, title)
