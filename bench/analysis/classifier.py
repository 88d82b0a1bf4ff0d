"""A small MNIST classifier in NumPy that scores generated digits (used by bench.analysis.quality).

A 784-128-10 ReLU MLP whose 128 hidden activations are the feature space of the Frechet
distance. It is trained once, deterministically (fixed seed, fixed shuffles, Adam with
weight decay), on 4,000 of the 5,000 embedded MNIST images; the other 1,000 are held out.
The weights are committed in bench/assets/mnist_mlp.npz, together with the held-out
accuracy they reach. `python -m bench.analysis.classifier` retrains, rewrites the file and prints
that accuracy: 0.950 on the 1,000 held-out images.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.core import data as datasets

ASSET = Path(__file__).resolve().parent / "assets" / "mnist_mlp.npz"
HIDDEN, SEED, N_TEST = 128, 0, 1000
EPOCHS, BATCH, LR, WEIGHT_DECAY = 30, 64, 1e-3, 1e-4


@dataclass(frozen=True)
class Classifier:
    w1: np.ndarray  # (784, HIDDEN)
    b1: np.ndarray
    w2: np.ndarray  # (HIDDEN, 10)
    b2: np.ndarray
    test_accuracy: float  # on the held-out split, recorded when trained

    def features(self, x: np.ndarray) -> np.ndarray:
        """Penultimate-layer activations, (N, HIDDEN)."""
        return np.maximum(x.reshape(len(x), -1).astype(np.float32) @ self.w1 + self.b1, 0)

    def probs(self, x: np.ndarray) -> np.ndarray:
        return _softmax(self.features(x) @ self.w2 + self.b2)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.probs(x), axis=1)


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def split(n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: a seeded permutation (the embedded set is sorted by label)."""
    perm = np.random.default_rng([seed, 1]).permutation(n)
    return np.sort(perm[N_TEST:]), np.sort(perm[:N_TEST])


def train(x: np.ndarray, y: np.ndarray, seed: int = SEED) -> dict[str, np.ndarray]:
    """Minibatch Adam on softmax cross-entropy; every random draw comes from `seed`."""
    rng = np.random.default_rng([seed, 2])
    p = {"w1": rng.normal(0, np.sqrt(2 / x.shape[1]), (x.shape[1], HIDDEN)), "b1": np.zeros(HIDDEN),
         "w2": rng.normal(0, np.sqrt(2 / HIDDEN), (HIDDEN, 10)), "b2": np.zeros(10)}
    p = {k: v.astype(np.float32) for k, v in p.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    t = 0
    for _ in range(EPOCHS):
        order = rng.permutation(len(x))
        for i in range(0, len(x), BATCH):
            xb, yb = x[order[i : i + BATCH]], y[order[i : i + BATCH]]
            t += 1
            for k, g in _grads(p, xb, yb).items():
                g = g + WEIGHT_DECAY * p[k]
                m[k] = 0.9 * m[k] + 0.1 * g
                v[k] = 0.999 * v[k] + 0.001 * g * g
                p[k] -= LR * (m[k] / (1 - 0.9**t)) / (np.sqrt(v[k] / (1 - 0.999**t)) + 1e-8)
    return p


def _grads(p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    h = np.maximum(x @ p["w1"] + p["b1"], 0)
    d_logits = _softmax(h @ p["w2"] + p["b2"])
    d_logits[np.arange(len(y)), y] -= 1
    d_logits /= len(y)
    d_h = (d_logits @ p["w2"].T) * (h > 0)
    return {"w1": x.T @ d_h, "b1": d_h.sum(0), "w2": h.T @ d_logits, "b2": d_logits.sum(0)}


def accuracy(clf: Classifier, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(clf.predict(x) == y))


@functools.lru_cache(maxsize=1)
def load(path: Path = ASSET) -> Classifier:
    with np.load(path) as f:
        return Classifier(f["w1"], f["b1"], f["w2"], f["b2"], float(f["test_accuracy"]))


def main() -> None:
    ds = datasets.load_embedded_mnist()
    tr, te = split(len(ds.x))
    p = train(ds.x[tr], ds.labels[tr])
    acc = accuracy(Classifier(**p, test_accuracy=float("nan")), ds.x[te], ds.labels[te])
    ASSET.parent.mkdir(exist_ok=True)
    np.savez(ASSET, **p, test_accuracy=np.float64(acc))
    print(f"held-out accuracy {acc:.4f} on {len(te)} images; weights in {ASSET}")


if __name__ == "__main__":
    main()
