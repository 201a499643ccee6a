"""Stimuli as the model takes them — resized by a stated method, grey and colour converted one stated way — and
the splits that keep site selection apart from scoring: half the stimuli (stratified by category) or half the
neurons, drawn from a PRNG key."""
from __future__ import annotations

import jax
import numpy as np

from ..validation import ArgumentError, check_choice, check_count, check_finite, check_key, check_number

__all__ = ["RESIZE_METHODS", "prepare_images", "split_stimuli", "split_neurons"]

#: resize method -> how it is done (the text the scorecard prints)
RESIZE_METHODS = {
    "antialiased-bilinear": "skimage.transform.resize(order=1, anti_aliasing=True): Gaussian prefilter, then "
                            "bilinear (as insilico.data.objects92 and experiments/v4_encoding.py)",
    "area": "skimage.transform.resize_local_mean: each output pixel the mean of the input pixels it covers",
    "bilinear": "skimage.transform.resize(order=1, anti_aliasing=False): bilinear, no prefilter",
}
CHANNELS_RULE = ("colour images for a grey model: mean of R, G and B (as objects92(channels=1)); grey images for "
                 "a colour model: the grey channel repeated in R, G and B")


def prepare_images(images, shape, bounds=(0.0, 1.0), method: str = "antialiased-bilinear") -> tuple[np.ndarray, str]:
    """``images`` (N, h, w, c) in [0, 1] as the model's input ``shape`` (H, W, C) within its pixel ``bounds``:
    resized by ``method`` (one of :data:`RESIZE_METHODS`; nothing is done when the sizes agree) and converted
    between grey and colour by :data:`CHANNELS_RULE`. Returns (float32 images, a sentence saying what was done)."""
    from skimage.transform import resize, resize_local_mean

    method = check_choice("resize", method, RESIZE_METHODS)
    x = check_finite("images", images, ndim=4).astype(np.float32)
    if x.min() < 0 or x.max() > 1:
        raise ArgumentError(f"images must have pixels in [0, 1]; got values from {x.min():g} to {x.max():g}"
                            + (" (8-bit images? divide by 255)" if x.max() > 1 and x.max() <= 255 else ""))
    if not isinstance(shape, (tuple, list)) or len(shape) != 3:
        raise ArgumentError(f"shape must be the model's input (height, width, channels); got {shape!r}")
    h, w, c = (check_count(f"shape[{i}]", v) for i, v in enumerate(shape))
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ArgumentError(f"bounds must be the model's pixel range (low, high); got {bounds!r}")
    lo, hi = (check_number(f"bounds[{i}]", b) for i, b in enumerate(bounds))
    if not lo < hi:
        raise ArgumentError(f"bounds must be (low, high) with low < high; got {bounds!r}")
    done = []
    if x.shape[1:3] != (h, w):
        if method == "area":
            x = np.stack([resize_local_mean(im, (h, w), channel_axis=-1) for im in x]).astype(np.float32)
        else:
            x = np.stack([resize(im, (h, w), order=1, anti_aliasing=method == "antialiased-bilinear")
                          for im in x]).astype(np.float32)
        done.append(f"resized from {np.shape(images)[1]}x{np.shape(images)[2]} to {h}x{w} px by {method} "
                    f"({RESIZE_METHODS[method]})")
    if x.shape[-1] != c:
        if x.shape[-1] == 3 and c == 1:
            x = x.mean(-1, keepdims=True)
            done.append("colour averaged to grey (mean of R, G, B)")
        elif x.shape[-1] == 1 and c == 3:
            x = np.repeat(x, 3, -1)
            done.append("grey repeated in R, G and B")
        else:
            raise ArgumentError(f"images have {x.shape[-1]} channels and the model takes {c}: only grey <-> colour "
                                f"(1 <-> 3) is converted")
    lo, hi = float(lo), float(hi)
    if (lo, hi) != (0.0, 1.0):
        x = (lo + (hi - lo) * x).astype(np.float32)
        done.append(f"pixels mapped from [0, 1] to the model's [{lo}, {hi}]")
    return np.clip(x, lo, hi), ("; ".join(done) or "shown as they are (the model's size and channels)")


def split_stimuli(n: int, key, groups=None) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint sorted index sets (selection, held-out) of ``n`` stimuli, each half of every group in
    ``groups`` (n,) (an odd group gives its extra stimulus to the held-out half), drawn with ``key``."""
    check_key("key", key)
    n = check_count("n (stimuli to split)", n, minimum=2)
    groups = np.zeros(n, int) if groups is None else np.asarray(groups)
    if groups.shape != (n,):
        raise ArgumentError(f"groups must give one group per stimulus ({n}); got shape {groups.shape}")
    if groups.dtype.kind == "f" and not np.isfinite(groups).all():
        raise ArgumentError(f"groups must be finite labels; got NaN or inf at stimulus "
                            f"{int(np.flatnonzero(~np.isfinite(groups))[0])}")
    sel = []
    for k, g in enumerate(np.unique(groups)):
        idx = np.flatnonzero(groups == g)
        perm = idx[np.asarray(jax.random.permutation(jax.random.fold_in(key, k), len(idx)))]
        sel.append(perm[:len(idx) // 2])
    selection = np.sort(np.concatenate(sel))
    if not selection.size:
        raise ArgumentError(f"groups leave the selection half empty (every group holds one stimulus: "
                            f"{len(np.unique(groups))} groups of {n} stimuli); a site would be chosen on nothing")
    return selection, np.setdiff1d(np.arange(n), selection)


def split_neurons(n: int, key) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint sorted halves (selection, held-out) of ``n`` neurons (the held-out half takes an odd one),
    drawn with ``key``."""
    check_key("key", key)
    n = check_count("n (neurons to split)", n, minimum=2)
    perm = np.asarray(jax.random.permutation(key, n))
    return np.sort(perm[:n // 2]), np.sort(perm[n // 2:])
