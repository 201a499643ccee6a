"""Transformed worlds: the same images with other input statistics, for training one architecture on each.

    world = transform(cifar10("train"), blur=1.5, grayscale=True)       # a blurry, colourless world
    world = transform(train, classes=["cat", "dog"])                     # a world of two categories
    world = transform(train, class_weights={"cat": 5.0}, key=key)        # cats five times as common

Every world keeps the image shape and the [0, 1] range, so a model and its probes work unchanged.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import numpy as np
from scipy import ndimage

from ..validation import ArgumentError, check_choice, check_count, check_finite, check_key, check_number
from .datasets import Dataset


def radial_amplitude(images, n_bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean Fourier amplitude of ``images`` (N, H, W, C) by spatial frequency (cycles/pixel, ``n_bins`` radial
    bins over [0, 0.5], by default min(H, W) // 2 of them, each 0.5 / n_bins wide): ``(frequencies,
    amplitudes)``, without the DC term. Natural images fall as ~1/f."""
    x = check_finite("images", images, ndim=4).astype(np.float64)
    if n_bins is not None:
        n_bins = check_count("n_bins", n_bins)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    amp = np.abs(np.fft.fft2(x, axes=(1, 2))).mean(axis=(0, 3))
    h, w = amp.shape
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    f = np.hypot(fy, fx)
    n_bins = n_bins or min(h, w) // 2
    edges = np.linspace(0, 0.5, n_bins + 1)
    idx = np.digitize(f.ravel(), edges) - 1
    ok = (idx >= 0) & (idx < n_bins) & (f.ravel() > 0)
    sums = np.bincount(idx[ok], amp.ravel()[ok], n_bins)
    counts = np.bincount(idx[ok], minlength=n_bins)
    keep = counts > 0
    return ((edges[:-1] + edges[1:]) / 2)[keep], sums[keep] / counts[keep]


def spectral_slope(images) -> float:
    """Log-log slope of :func:`radial_amplitude` (≈ −1 for natural images, ≈ 0 for white noise)."""
    f, a = radial_amplitude(images)
    return float(np.polyfit(np.log(f), np.log(a), 1)[0])


def _whiten(x: np.ndarray) -> np.ndarray:
    """Divide every image's spectrum by the set's mean amplitude spectrum (a flat, "white" spectrum), then map
    back to the set's mean and contrast, clipped to [0, 1]."""
    mean = x.mean(axis=(1, 2), keepdims=True)
    f = np.fft.fft2(x - mean, axes=(1, 2))
    amp = np.abs(f).mean(axis=0, keepdims=True)
    white = np.real(np.fft.ifft2(f / np.maximum(amp, 1e-8 * amp.max()), axes=(1, 2)))
    white *= (x - mean).std() / max(white.std(), 1e-12)
    return np.clip(white + mean, 0, 1)


def transform(ds: Dataset, *, blur: float | None = None, grayscale: bool = False, whiten: bool = False,
              classes: Sequence[str] | None = None, class_weights: Mapping[str, float] | None = None,
              key=None) -> Dataset:
    """A dataset with other input statistics (applied in this order):

    - ``classes``: keep only these categories (labels and class names unchanged, so a 10-way readout can be
      probed on all of them);
    - ``class_weights``: re-weight the categories by resampling the same number of images with replacement,
      each image drawn with probability ∝ its class's weight (default 1; needs ``key``);
    - ``grayscale``: luminance (0.299 R + 0.587 G + 0.114 B) in every channel;
    - ``blur``: Gaussian blur of standard deviation ``blur`` pixels (reflecting borders);
    - ``whiten``: a flat amplitude spectrum (:func:`_whiten`; :func:`spectral_slope` goes from ≈ −1 to ≈ 0).

    Raises :class:`~insilico.validation.ArgumentError` for an unknown or empty list of classes, a class weight
    that is negative or not finite, weights that leave every image at 0, a missing ``key``, or a NaN/negative
    ``blur``.
    """
    if not isinstance(ds, Dataset):
        raise ArgumentError(f"ds must be an insilico.data.Dataset; got {type(ds).__name__}")
    if blur is not None:
        blur = check_number("blur", blur, low=0)
    grayscale, whiten = check_choice("grayscale", grayscale, (False, True)), check_choice("whiten", whiten,
                                                                                         (False, True))
    if key is not None:
        check_key("key", key)
        if class_weights is None:
            raise ArgumentError("key is used only to resample by class_weights; got a key without class_weights "
                                "(nothing else here is random)")
    x, y = np.asarray(ds.x, np.float32), np.asarray(ds.y)
    names = list(ds.class_names)
    parts = []

    def index(what, c):
        return names.index(check_choice(what, c, names))

    if classes is not None:
        classes = [classes] if isinstance(classes, str) else list(classes)
        if not classes:
            raise ArgumentError(f"classes must name at least one class of {ds.name}; valid: {', '.join(names)}")
        keep = np.isin(y, [index("classes", c) for c in classes])
        if not keep.any():
            raise ArgumentError(f"classes {classes} select no images of {ds.name}")
        x, y = x[keep], y[keep]
        parts.append(f"classes={','.join(classes)}")
    if class_weights is not None:
        if key is None:
            raise ArgumentError("key must be a PRNG key when class_weights is given (re-weighting categories "
                                "resamples images): pass key=jax.random.key(...)")
        check_key("key", key)
        if not hasattr(class_weights, "items"):
            raise ArgumentError(f"class_weights must map class names to weights; got {type(class_weights).__name__}")
        w = np.ones(len(names))
        for c, v in class_weights.items():
            w[index("class_weights", c)] = check_number(f"class_weights[{c!r}]", v, low=0)
        if w[y].sum() == 0:
            raise ArgumentError(f"class_weights give weight 0 to every image of {ds.name}: at least one class "
                                "present must have a weight > 0")
        p = w[y] / w[y].sum()
        idx = np.asarray(jax.random.choice(key, len(y), (len(y),), replace=True, p=p))
        x, y = x[idx], y[idx]
        parts.append("reweighted")
    if grayscale:
        if x.shape[-1] == 3:
            x = np.repeat((x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None], 3, axis=-1)
        parts.append("grayscale")
    if blur:
        x = ndimage.gaussian_filter(x, sigma=(0, blur, blur, 0), mode="reflect").astype(np.float32)
        parts.append(f"blur={blur}")
    if whiten:
        x = _whiten(x.astype(np.float64)).astype(np.float32)
        parts.append("whitened")
    return Dataset(x, y.astype(np.int32), ds.class_names, f"{ds.name} [{'; '.join(parts) or 'unchanged'}]")
