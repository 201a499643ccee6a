"""Every site of a model scored against neural data in bounded memory: per-site reductions run inside the compiled
forward pass (:func:`insilico.engine.fold`, one compiled step per batch shape) and accumulate over stimulus batches.

- :func:`project_sites`: each site projected to ``dims`` components inside the pass — random Gaussian (drawn from
  the key block by block inside the step, never stored) or PCA fitted exactly on reference images in one pass.
- :func:`site_rdms`: exact RDMs from Gram blocks: an *anchor* block of stimuli keeps its rows while the later
  stimuli stream past (one pass when the budget holds every stimulus's rows); ``dims=`` projects first (approximate).
- :func:`encoding_scores`: per-fold XᵀX, Xᵀ1, XᵀY of each site's projected features reduced inside the pass, then
  ridge with nested cross-validation from those moments (:mod:`insilico.analysis.sufficient`).
- :func:`preflight`: the peak memory a reduction will need and the batch size that fits a budget.
The forward pass and projections run in float32 (inside ``jax.enable_x64(False)``); moments and Gram blocks are
accumulated in float64, so scores equal the same algebra on the recorded features to float64 rounding.
"""
from __future__ import annotations

import resource
import warnings
from dataclasses import asdict, dataclass
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import electrode as el
from ..analysis import projection as proj
from ..analysis import sufficient as suf
from ..analysis.encoding import ALPHAS
from ..engine import Stream, fold, map_batches
from ..engine.memory import largest_intermediate, struct
from ..validation import ArgumentError, check_choice, check_count, check_key, check_positive
from ._stream_steps import features, gram_step, moments_step, reference_step

__all__ = ["Preflight", "preflight", "project_sites", "site_rdms", "encoding_scores", "random_matrix", "SiteDict"]

random_matrix, CHUNK = proj.random_matrix, proj.CHUNK
PROJECTIONS, REDUCERS = ("pca", "random"), ("rdm", "projection", "encoding")


class SiteDict(dict):
    """{site: array} with ``attrs`` (settings, memory estimate, measured peak)."""
    attrs: dict


# ------------------------------------------------------------------------------- inside the compiled step
class _Source:
    """Images as an array (checked at once) or any sequence with ``len`` and slicing (checked batch by batch)."""

    def __init__(self, subject, images, purpose: str, name: str = "images"):
        self.subject, self.purpose, self.images, self.name = subject, purpose, images, name
        self.checked = hasattr(images, "dtype") and hasattr(images, "shape")
        if self.checked:
            el.validate(subject, images, in_bounds=True, purpose=purpose, name=name)
        elif not (hasattr(images, "__len__") and hasattr(images, "__getitem__")) or not len(images):
            raise ArgumentError(f"{name} must be an array (N, H, W, C) or a non-empty sequence of images with len() "
                                f"and slicing; got {type(images).__name__}")
        self.n = len(images)

    def batches(self, start: int, stop: int, size: int, extras=(), pads=()):
        """(images, *extras) for stimuli start..stop in batches of ``size``, the last padded (extras by ``pads``)."""
        for i in range(start, stop, size):
            j = min(i + size, stop)
            x = np.asarray(self.images[i:j], np.float32)
            if not self.checked:
                el.validate(self.subject, x, in_bounds=True, purpose=self.purpose, name=f"{self.name}[{i}:{j}]")
            parts = [x] + [np.asarray(e[i:j]) for e in extras]
            if j - i < size:
                fill = [np.zeros((size - j + i, *x.shape[1:]), x.dtype)] + [
                    np.full((size - j + i, *e.shape[1:]), p, e.dtype) for e, p in zip(extras, pads)]
                parts = [np.concatenate([a, b]) for a, b in zip(parts, fill)]
            yield tuple(parts) if extras else parts[0]


def _sites(subject, sites, purpose):
    el.validate(subject, purpose=purpose)
    sites = list(subject.sites) if sites is None else [sites] if isinstance(sites, str) else list(sites)
    if not sites:
        raise ArgumentError("sites is empty; name at least one site (or None for every site)")
    el.validate(subject, sites=sites, purpose=purpose)
    return sites


_units = lambda subject, site: int(np.prod(subject.sites[site]))
_max_rss = lambda: int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024    # bytes (Linux: KiB reported)


# ------------------------------------------------------------------------------------------- preflight
@dataclass(frozen=True)
class Preflight:
    """What a streaming reduction holds: ``step_bytes`` (the compiled step at ``batch_size``, from XLA's memory
    analysis), ``state_bytes`` (projections), ``accumulator_bytes`` (twice: a step's input and output are both live),
    ``peak_bytes`` (their sum), ``result_bytes`` (returned, outside the budget), ``groups`` (sites per pass) and
    ``anchor`` (stimuli whose rows :func:`site_rdms` keeps per pass)."""
    batch_size: int
    max_bytes: float
    step_bytes: float
    state_bytes: float
    accumulator_bytes: float
    peak_bytes: float
    result_bytes: float
    groups: tuple
    anchor: int
    notes: tuple

    def attrs(self) -> dict:
        return {f"preflight_{k}": " | ".join(map(", ".join, v)) if k == "groups" else "; ".join(v) if k == "notes"
                else v for k, v in asdict(self).items()}


_STEP_MODEL: dict = {}


def _nbytes(a) -> int:
    return 0 if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key) else int(np.prod(a.shape)) * a.dtype.itemsize


def _step_model(subject, kinds, arrays, batch=None) -> tuple[float, float]:
    """(base, per-image) bytes of the compiled features step: XLA's memory analysis at batches of 1 and 8 (or at
    ``batch`` alone), and 4x the largest intermediate of one image (the analysis can miss convolution workspaces)."""
    used = {s: v for s, kind, _ in kinds if kind != "none" for v in [arrays[s]]}
    args = (struct(subject), jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), used))
    key = (kinds, jax.tree.structure(args), tuple(map(str, jax.tree.leaves(args))), batch)
    if key not in _STEP_MODEL:
        fn = lambda x, s, a: features(x, s, a, kinds)
        xs = [jax.ShapeDtypeStruct((b, *subject.input_spec.shape), np.float32) for b in ((batch,) if batch else (1, 8))]
        stats = [jax.jit(fn).lower(x, *args).compile().memory_analysis() for x in xs]
        per = 4.0 * largest_intermediate(jax.make_jaxpr(fn)(xs[0], *args).jaxpr) / xs[0].shape[0]
        m = [float(st.temp_size_in_bytes + st.output_size_in_bytes) for st in stats if st is not None]
        _STEP_MODEL[key] = ((0.0, max(per, m[0] / batch) if m else per) if batch else
                            (m[0] if m else 0.0, max(per, (m[1] - m[0]) / 7.0) if len(m) == 2 else per))
    return _STEP_MODEL[key]


def _plan(subject, n, kinds, arrays, reducer, k=1, q=1, batch_size=None, max_bytes=2e9) -> Preflight:
    """Batch size, site groups (greedy, in order, each holding ≤ half the budget) and the RDM anchor."""
    max_bytes = check_positive("max_bytes", 2e9 if max_bytes is None else max_bytes)        # None: 2 GB
    dims = {s: d for s, _, d in kinds}
    state = {s: sum(_nbytes(a) for a in arrays.get(s, ())) for s in dims}
    acc = {s: 2 * 8 * k * (d * d + d + d * q) if reducer == "encoding" else 0 for s, d in dims.items()}
    result = {"encoding": 16 * len(dims) * q * k, "projection": 4 * n * sum(dims.values()),
              "rdm": 8 * n * n * len(dims)}[reducer]
    base, per = _step_model(subject, kinds, arrays, batch_size and check_count("batch_size", batch_size))
    per += {"encoding": sum(8 * (k + 2) * d for d in dims.values()) + 8 * q,     # float64 casts, one-hot products
            "rdm": sum(16 * d for d in dims.values()), "projection": 0}[reducer]
    groups: list[list[str]] = [[]]
    notes: list[str] = []
    for s in dims:
        if groups[-1] and sum(state[t] + acc[t] for t in groups[-1] + [s]) > max_bytes / 2:
            groups.append([])
        groups[-1].append(s)
        if state[s] + acc[s] > max_bytes / 2:
            notes.append(f"site {s} alone holds {(state[s] + acc[s]) / 1e9:.3g} GB (over half of max_bytes)")
    held = max(sum(state[t] + acc[t] for t in g) for g in groups)
    free = max_bytes / 2 if reducer == "rdm" else max_bytes - held
    fit = int(np.clip((free - base) // max(per, 1.0), 1, 256))        # at most the power of two ≥ n: few shapes
    batch_size = min(fit, 1 << (n - 1).bit_length()) if batch_size is None else check_count("batch_size", batch_size)
    step = base + per * batch_size
    anchor = 0
    if reducer == "rdm":                                  # an anchor row: float32 pattern + float64 Gram row, twice
        row = max(sum(2 * (4 * dims[t] + 8 * n) for t in g) for g in groups)
        anchor = int(np.clip((max_bytes - step - held) // row, 1, n))
        acc = {s: 2 * anchor * (4 * dims[s] + 8 * n) for s in dims}
        held = max(sum(state[t] + acc[t] for t in g) for g in groups)
    if step + held > max_bytes:
        notes.append(f"estimated peak {(step + held) / 1e9:.3g} GB exceeds max_bytes {max_bytes / 1e9:.3g} GB")
    return Preflight(batch_size, float(max_bytes), float(step), float(sum(state.values())),
                     float(sum(acc.values())), float(step + held), float(result),
                     tuple(tuple(g) for g in groups), anchor, tuple(notes))


def _kinds(subject, sites, dims, projection, key, n_reference=None, max_bytes=2e9, shapes=False):
    """Static (site, kind, dims) per site and each projection's arrays: random matrices held when they fit a quarter
    of ``max_bytes`` (else a site key: drawn per step), PCA's as shapes until fitted; ``shapes``: shapes only."""
    kinds, arrays = [], {}
    hold = 16 * (dims or 0) * sum(_units(subject, s) for s in sites if _units(subject, s) > (dims or 0)) <= max_bytes
    for s in sites:
        u = _units(subject, s)
        if dims is None or u <= dims:
            kinds.append((s, "none", u))
        elif projection == "random":
            kinds.append((s, "matrix" if hold else "random", dims))
            i = list(subject.sites).index(s)
            arrays[s] = ((jax.random.fold_in(key, i),) if not hold else (jax.ShapeDtypeStruct((u, dims), jnp.float32),)
                         if shapes else (jnp.asarray(proj.random_matrix(key, i, u, dims)),))
        else:
            k = min(dims, n_reference - 1)
            kinds.append((s, "pca", k))
            arrays[s] = (jax.ShapeDtypeStruct((u,), jnp.float32), jax.ShapeDtypeStruct((u, k), jnp.float32))
    return tuple(kinds), arrays


def preflight(subject, n_stimuli: int, sites=None, reducer: str = "encoding", *, dims: int | None = 1000,
              projection: str = "random", n_splits: int = 10, n_neurons: int = 1, n_reference: int = 1000,
              batch_size: int | None = None, max_bytes: float | None = 2e9) -> Preflight:
    """Estimated peak bytes of a streaming ``reducer`` — "rdm" (:func:`site_rdms`), "projection"
    (:func:`project_sites`) or "encoding" (:func:`encoding_scores`) — over ``n_stimuli``, and the batch size that fits
    ``max_bytes`` when ``batch_size`` is None. ``dims=None``: no projection (RDMs)."""
    sites, reducer = _sites(subject, sites, "preflight"), check_choice("reducer", reducer, REDUCERS)
    projection = check_choice("projection", projection, PROJECTIONS)
    dims = None if dims is None else check_count("dims", dims)
    kinds, arrays = _kinds(subject, sites, dims, projection, jax.random.key(0),
                           check_count("n_reference", n_reference, 2), max_bytes or 2e9, True)
    return _plan(subject, check_count("n_stimuli", n_stimuli), kinds, arrays, reducer,
                 check_count("n_splits", n_splits), check_count("n_neurons", n_neurons), batch_size, max_bytes)


# ---------------------------------------------------------------------------------------------- reductions
def _fit_pca(subject, ref, pca, kinds, arrays, batch_size, max_bytes, progress):
    """Fill ``arrays`` with each PCA site's (mean, components) from one streaming pass over ``ref``: B = XᵀQ in
    float64 (Q: Helmert contrasts), then :func:`insilico.analysis.sufficient.pca_from_rotated`."""
    if ref.n < 2:
        raise ArgumentError(f"reference must hold at least 2 images for PCA; got {ref.n}")
    none = tuple((s, "none", _units(subject, s)) for s in pca)
    held = {s: (SimpleNamespace(shape=(d, ref.n), dtype=np.dtype(np.float64)),) for s, _, d in none}
    helm, dims = suf.helmert(ref.n), {s: d for s, _, d in kinds}
    plan = _plan(subject, ref.n, none, held, "projection", batch_size=batch_size, max_bytes=max_bytes)
    for group in plan.groups:
        with jax.enable_x64(True):
            acc = {s: (jnp.zeros((_units(subject, s), ref.n - 1)), jnp.zeros(_units(subject, s))) for s in group}
            batches = ref.batches(0, ref.n, plan.batch_size, (helm, np.ones(ref.n)), (0.0, 0.0))
            acc = fold(reference_step, acc, Stream(batches),
                       subject, tuple(t for t in none if t[0] in group), progress=progress, desc="PCA reference")
            for s, (bm, sm) in acc.items():
                arrays[s] = (np.asarray(sm / ref.n, np.float32), proj.pca_components(bm, dims[s]))
        del acc
    return tuple((s, kind, arrays[s][1].shape[1] if kind == "pca" else d) for s, kind, d in kinds)


def _setup(subject, src, sites, purpose, dims, projection, key, reference, reducer, k, q, batch_size, max_bytes,
           progress):
    """The projections (PCA fitted on ``reference``, default the first ≤ 1,000 stimuli, in one pass) and the plan."""
    reference = src.images[:1000] if reference is None else reference
    kinds, arrays = _kinds(subject, sites, dims, projection, key, len(reference),
                           check_positive("max_bytes", 2e9 if max_bytes is None else max_bytes))
    pca = [s for s, kind, _ in kinds if kind == "pca"]
    if pca:
        source = _Source(subject, reference, f"{purpose} (PCA reference)", "reference")
        kinds = _fit_pca(subject, source, pca, kinds, arrays, batch_size, max_bytes, progress)
    return kinds, arrays, _plan(subject, src.n, kinds, arrays, reducer, k, q, batch_size, max_bytes)


def _attrs(subject, plan, rss_before, **settings) -> dict:
    return {"subject": subject.name, **settings, **plan.attrs(), "max_rss_before_bytes": rss_before,
            "max_rss_after_bytes": _max_rss(), "max_rss_note": "process resident-set high-water mark (ru_maxrss) "
            "before and after the call: host memory, XLA's CPU buffers included, accelerator memory not"}


def _group(kinds, arrays, group):
    return tuple(t for t in kinds if t[0] in group), {s: v for s, v in arrays.items() if s in group}


def project_sites(subject, images, sites=None, *, dims: int = 1000, method: str = "pca", reference=None, key,
                  batch_size: int | None = None, max_bytes: float | None = 2e9, progress: bool = False) -> SiteDict:
    """{site: (stimuli, k) float32}, each site projected inside the forward pass — ``method="random"``: Gaussian,
    scaled 1/√dims, from ``fold_in(key, site index)`` (:func:`random_matrix`), k = dims; "pca": the top principal
    axes of the responses to ``reference`` (default: the first ≤ 1,000 ``images``; centred on their mean; exact,
    one streaming pass), k = min(dims, references − 1) less any of zero variance. Sites with ≤ ``dims`` units
    pass unprojected. ``attrs``: the estimate (:class:`Preflight`) and the measured peak."""
    rss = _max_rss()
    dims, method = check_count("dims", dims), check_choice("method", method, PROJECTIONS)
    check_key("key", key)
    sites, src = _sites(subject, sites, "project_sites"), _Source(subject, images, "project_sites")
    kinds, arrays, plan = _setup(subject, src, sites, "project_sites", dims, method, key, reference, "projection", 1,
                                 1, batch_size, max_bytes, progress)
    out = SiteDict()
    for group in plan.groups:
        gk, ga = _group(kinds, arrays, group)
        rows = map_batches(features, Stream(src.batches(0, src.n, plan.batch_size)), subject, ga, gk,
                           batch_size=plan.batch_size, progress=progress, desc="project_sites")
        out.update({s: rows[s][:src.n] for s in group})
    out.attrs = _attrs(subject, plan, rss, dims=dims, method=method, n_stimuli=src.n)
    return out


def site_rdms(subject, images, sites=None, *, rdm_method: str = "correlation", dims: int | None = None, key=None,
              batch_size: int | None = None, max_bytes: float | None = 2e9, progress: bool = False) -> SiteDict:
    """{site: (n, n) float64 RDM} with :func:`insilico.analysis.rsa.rdm`'s conventions ("correlation": 1 − r;
    "euclidean": squared distance per unit), from Gram blocks accumulated in float64.

    Exact (``dims=None``): an anchor block of stimuli (as many as ``max_bytes`` allows) keeps its rows while the
    later stimuli stream past: about n / (2 · anchor) + 1 passes (one when the anchor holds every stimulus).
    ``dims``: sites with more units are first projected to ``dims`` random Gaussian components (``key``), one pass,
    approximate: inner products kept in expectation, errors of order 1/√dims ("correlation": the patterns are
    centred and scaled per stimulus before the projection and scaled again after it; "euclidean": still per unit
    of the site). A constant pattern gets NaN correlation distances (attrs["constant_stimuli"])."""
    rss = _max_rss()
    rdm_method = check_choice("rdm_method", rdm_method, ("correlation", "euclidean"))
    if dims is not None:
        dims, _ = check_count("dims", dims), check_key("key (for the random projection of dims=...)", key)
    sites, src = _sites(subject, sites, "site_rdms"), _Source(subject, images, "site_rdms")
    check_count("the number of images (site_rdms needs 3 or more)", src.n, 3)
    kinds, arrays, plan = _setup(subject, src, sites, "site_rdms", dims, "random", key, None, "rdm", 1, 1,
                                 batch_size, max_bytes, progress)
    n, m = src.n, plan.anchor
    out, idx, constant = SiteDict(), np.arange(n, dtype=np.int32), {}
    for group in plan.groups:
        gk, ga = _group(kinds, arrays, group)
        gram = {s: np.zeros((n, n)) for s in group}
        for a0 in range(0, n, m):
            with jax.enable_x64(True):
                acc = {s: (jnp.zeros((m, d), jnp.float32), jnp.zeros((m, n))) for s, _, d in gk}
                acc = fold(gram_step, acc, Stream(src.batches(a0, n, plan.batch_size, (idx,), (n + m,))), subject,
                           ga, gk, np.int32(a0), rdm_method, progress=progress, desc=f"site_rdms anchor {a0}")
            for s in group:
                gram[s][a0:a0 + m, a0:] = np.asarray(acc[s][1])[:n - a0, a0:]
        for s, _, _ in gk:                   # per unit of the site (a projection keeps inner products on average)
            out[s] = suf.rdm_from_gram(gram[s], rdm_method, int(np.prod(subject.sites[s])))
            dead = np.flatnonzero(np.isnan(out[s]).sum(1) == n - 1).tolist()
            constant.update({s: dead} if dead else {})
    if constant:
        warnings.warn(f"site_rdms: constant patterns (NaN distances) at {constant}", RuntimeWarning, stacklevel=2)
    out.attrs = _attrs(subject, plan, rss, rdm_method=rdm_method, dims=-1 if dims is None else dims, n_stimuli=n,
                       exact=int(all(kind == "none" for _, kind, _ in kinds)), constant_stimuli=str(constant))
    return out


def encoding_scores(subject, images, responses, sites=None, *, n_splits: int = 10, folds=None, dims: int = 1000,
                    projection: str = "pca", reference=None, alphas=None, key, batch_size: int | None = None,
                    max_bytes: float | None = 2e9, progress: bool = False) -> xr.Dataset:
    """Held-out ridge predictivity of ``responses`` (stimuli, neurons) from every site, from sufficient statistics.

    Stimuli are dealt to ``n_splits`` folds from ``key`` (or ``folds``: one id per stimulus, overriding n_splits).
    Inside the pass each site's features, projected as :func:`project_sites` does, are reduced to per-fold XᵀX, Xᵀ1
    and XᵀY in float64: memory does not grow with the stimuli (beyond ``responses``). Per outer fold, ridge for
    every α (default :data:`~insilico.analysis.encoding.ALPHAS`) from the eigendecomposition of the other folds'
    centred XᵀX, α per neuron by inner CV over those folds, held-out r from the moments
    (:func:`insilico.analysis.sufficient.ridge_scores`). Dataset: ``r``, ``alpha`` (site, neuroid, split),
    ``per_neuron``, ``raw`` (site), ``distribution``; attrs: the formula, the estimate, the measured peak."""
    rss = _max_rss()
    check_key("key", key)
    projection, dims = check_choice("projection", projection, PROJECTIONS), check_count("dims", dims)
    alphas = np.asarray(ALPHAS) if alphas is None else suf.check_alphas(alphas)
    sites, src = _sites(subject, sites, "encoding_scores"), _Source(subject, images, "encoding_scores")
    y, neuroid = suf.check_responses(responses, src.n)
    k_folds, k_proj = jax.random.split(key)
    f = suf.check_folds(folds, src.n, n_splits, k_folds)
    k = int(f.max()) + 1
    kinds, arrays, plan = _setup(subject, src, sites, "encoding_scores", dims, projection, k_proj, reference,
                                 "encoding", k, y.shape[1], batch_size, max_bytes, progress)
    counts, sy, syy = suf.y_moments(y, f, k)
    r, alpha, shapes = {}, {}, {}
    for group in plan.groups:
        gk, ga = _group(kinds, arrays, group)
        with jax.enable_x64(True):
            acc = {s: (jnp.zeros((k, d)), jnp.zeros((k, d, d)), jnp.zeros((k, d, y.shape[1]))) for s, _, d in gk}
            shapes.update({s: [tuple(a.shape) for a in v] for s, v in acc.items()})
            acc = fold(moments_step, acc, Stream(src.batches(0, src.n, plan.batch_size, (y, f), (0.0, k))),
                       subject, ga, gk, k, progress=progress, desc="encoding_scores")
        for s, (sx, sxx, sxy) in acc.items():
            m = suf.FoldMoments(counts, np.asarray(sx), np.asarray(sxx), sy, syy, np.asarray(sxy))
            r[s], alpha[s] = suf.ridge_scores(m, alphas)
        del acc
    batch = [(plan.batch_size, *subject.input_spec.shape), (plan.batch_size, y.shape[1]), (plan.batch_size,)]
    attrs = _attrs(subject, plan, rss, projection=projection, dims=dims, n_splits=k, n_stimuli=src.n,
                   n_alphas=len(alphas), accumulator_shapes=str(shapes), batch_shapes=str(batch),
                   dims_per_site=str({s: d for s, _, d in kinds}))
    return suf.scores_dataset({s: r[s] for s in sites}, {s: alpha[s] for s in sites},
                              np.arange(y.shape[1]) if neuroid is None else neuroid, attrs)
