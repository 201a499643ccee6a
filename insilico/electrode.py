"""The electrode: record from any named site of a pure Flax model and perturb any unit, with edits as data.

A *site* is the output of a submodule call chosen by the subject's selector (:mod:`insilico.selectors`), named
by its module path joined by ``/`` (``conv2``, ``stage2/block1``, ``logits``) — in any Linen or NNX model.
Recording and editing happen in an interceptor entered *inside* the traced function
(:mod:`insilico.interception`), so :func:`forward` is pure and composes with ``jit``, ``vmap``, ``grad``,
``lax.scan`` and ``shard_map``. :func:`run` is the checked, compiled entry: it compiles once per (model,
recorded sites, edited sites, shapes), and new weights or edit *values* never retrace.

An :class:`Edit` acts on a site's activation ``x`` as::

    y = clamp_mask * clamp_value + (1 - clamp_mask) * (gain * x + bias) + noise_std * eps,  eps ~ N(0, 1)

with every field broadcast over the site's unit axes (``(C,)`` edits channels of an (H, W, C) map;
``(H, W, C)`` edits single units). For a 0/1 mask this is ``where(mask, value, gain * x + bias)``; a dense
blend keeps it differentiable w.r.t. every field and vmap-friendly (no scatter).

Example:

>>> import jax.numpy as jnp
>>> from insilico import zoo
>>> subject = zoo.load("cifar_convnet")
>>> images = jnp.full((2, 32, 32, 3), 0.5)
>>> logits, rec = record(subject, images, ["conv2", "fc1"])
>>> rec["conv2"].shape
(2, 16, 16, 64)
>>> mask = jnp.zeros(128).at[7].set(1)                       # unit 7 of conv3
>>> logits, rec = run(subject, images, edits={"conv3": lesion(mask)}, record=["conv3"])
>>> float(abs(rec["conv3"][..., 7]).max())
0.0
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from .edits import Edit, check_fields, clamp, gain, identity, lesion, mean_ablation, noise, unit_edits
from .engine.fold import fold
from .interception import Tap, apply
from .models import relu_gradient_override, relu_override_state
from .types import (
    Activations,
    Images,
    Outputs,
    PRNGKey,
    SampledActivations,
    SampledOutputs,
    SiteShapes,
    UnitArray,
)
from .validation import (
    ArgumentError,
    InputError,
    SiteError,
    UnknownNameError,
    check_choice,
    check_count,
    check_finite,
    check_images,
    check_key,
    check_sites,
    check_subject,
)

if TYPE_CHECKING:
    from jax.typing import ArrayLike

    from .subject import Subject

__all__ = ["Edit", "identity", "lesion", "mean_ablation", "clamp", "gain", "noise", "unit_edits",
           "forward", "validate", "run", "record", "sample", "list_sites", "site_means", "lesion_synapses",
           "synapse_paths", "parameter", "SiteError", "InputError", "ArgumentError"]


def _site_plan(subject):
    """(base names of modules called more than once, methods other than ``__call__`` to look at)."""
    repeated = {n[:n.rindex("@")] for n, _ in subject.modules if "@" in n and n[n.rindex("@") + 1:].isdigit()}
    methods = frozenset(subject.selector.methods) - {"__call__"} if subject.selector is not None else frozenset()
    return frozenset(repeated), methods


def forward(subject: Subject, x: Images, edits: Mapping[str, Edit] | None = None,
            record: Sequence[str] | str | None = (), key: PRNGKey | None = None,
            given: Mapping[str, Activations] | None = None) -> tuple[Outputs, dict[str, Activations]]:
    """The electrode's pure core: ``subject`` on images ``x`` (N, H, W, C) with ``edits`` applied at their sites,
    recording ``record`` (a name, names, or None for every site). Returns ``(output, {site: activation})``.

    Unjitted and unchecked — call it inside your own ``jit``, ``vmap``, ``grad``, ``lax.scan`` or ``shard_map``
    (check arguments once beforehand with :func:`validate`; :func:`run` is the checked, compiled entry). The
    subject is a pytree, so pass it as an argument of the compiled function: new weights then never retrace.
    ``key``: PRNG key for noise edits (``fold_in(key, i)`` for the i-th edited site in sorted order) and for
    stochastic units (see :func:`insilico.interception.apply`). ``given``: ``{site: activation}`` computed
    earlier for these images (by a forward pass with the same key and no edits before that site): the site's
    output is taken from it — edits then apply to it — so the compiler drops whatever the model computed only
    to reach that site. A lesion sweep passes the first lesioned site's activation, computed once for all lesions.
    """
    edits = dict(edits or {})
    given = dict(given or {})
    if record is None:
        names = tuple(subject.sites)
    else:
        names = (record,) if isinstance(record, str) else tuple(record)
    keys = {} if key is None else {name: jax.random.fold_in(key, i) for i, name in enumerate(sorted(edits))}
    wanted = set(names)
    recorded = {}

    def on_site(name, y):
        if name in given:
            y = jnp.asarray(given[name], y.dtype)
        if name in edits:
            y = edits[name].apply(y, keys.get(name)).astype(y.dtype)
        if name in wanted:
            recorded[name] = y
        return y

    repeated, methods = _site_plan(subject)
    tap = Tap(sites=frozenset(edits) | frozenset(given) | wanted, repeated=repeated, methods=methods, on_site=on_site)
    out = apply(subject, x, tap, key)
    missing = [n for n in names if n not in recorded]
    if missing:
        raise SiteError(f"site(s) {missing} of {subject.name} were not reached by the forward pass; valid: "
                        f"{', '.join(subject.sites)}")
    return out, {name: recorded[name] for name in names}


def _run(subject, x, edits, key, override, record):
    if override is None:
        return forward(subject, x, edits, record, key)
    with relu_gradient_override(override):
        return forward(subject, x, edits, record, key)


_jit_run = jax.jit(_run, static_argnums=(5,))


def list_sites(model, variables: dict | None, input_shape: tuple[int, int, int], sites=None) -> SiteShapes:
    """Ordered ``{site: unit shape}`` of ``model`` for inputs of shape (H, W, C), without computing anything
    (``sites``: a selector, as in :func:`insilico.subject.make_subject`)."""
    from .subject import InputSpec, make_subject

    return make_subject("model", model, variables, InputSpec(input_shape), sites=sites).sites


def _check_edits(subject, edits: Mapping):
    if not isinstance(edits, Mapping):
        raise TypeError(f"edits must be a mapping {{site: Edit}}; got {type(edits).__name__}")
    check_sites(subject, edits, "an edit")
    for name, e in edits.items():
        if not isinstance(e, Edit):
            raise TypeError(f"edit for site {name!r} must be an insilico.electrode.Edit; got {type(e).__name__}")
        fields = {f: np.shape(getattr(e, f)) for f in ("clamp_mask", "clamp_value", "gain", "bias", "noise_std")}
        if len(set(fields.values())) != 1:           # applied field by field: another shape would act per image
            raise ValueError(f"edit for site {name!r} must have fields of one shape (the constructors make them so: "
                             f"lesion, clamp, gain, ...); got {fields}")
        site_shape = tuple(subject.sites[name])
        try:
            ok = jnp.broadcast_shapes(e.shape, site_shape) == site_shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"edit for site {name!r} has shape {e.shape}, which does not broadcast over the "
                             f"site's unit shape {site_shape}; use (C,) = ({site_shape[-1]},) for channels, "
                             f"{site_shape} for single units, and jax.vmap for a leading sweep axis")
        check_fields(name, e)


def validate(subject: Subject, images: Images | None = None, *, sites: Sequence[str] | str | None = (),
             edits: Mapping | None = None, in_bounds: bool = False, purpose: str = "recording",
             name: str = "input") -> None:
    """Check what a probe is about to compute with and raise an error that names the bad argument, its value and
    what is valid: ``subject`` (a :class:`~insilico.subject.Subject`), ``sites`` (names, recurrent and repeated
    calls explained, modules that are not sites named), ``edits`` (types and shapes), ``images`` (float dtype,
    (N, H, W, C) of the input spec, N ≥ 1, finite; with ``in_bounds`` inside the pixel bounds). ``purpose`` and
    ``name`` word the messages. Values of traced arrays are not checked (shapes are); the values of concrete
    edits are (masks in [0, 1], finite values, noise scales ≥ 0). Returns None."""
    check_subject(subject)
    if sites is not None:
        check_sites(subject, (sites,) if isinstance(sites, str) else tuple(sites), purpose)
    if edits is not None:
        _check_edits(subject, edits)
    if images is not None:       # a traced batch (jit, vmap, grad) has no values to bound: only its shape is checked
        check_images(subject, images, name, in_bounds)


def run(subject: Subject, x: Images, edits: Mapping[str, Edit] | None = None,
        record: Sequence[str] | str | None = (), key: PRNGKey | None = None,
        variables: dict | None = None) -> tuple[Outputs, dict[str, Activations]]:
    """Run ``subject`` on images ``x`` (N, H, W, C) with ``edits`` applied, recording ``record`` sites.

    Args:
        edits: ``{site: Edit}``. record: site names to keep (a name, a list, or None for every site).
        key: PRNG key, required when an edit adds noise. variables: override ``subject.variables`` (e.g.
        synaptic lesions from :func:`lesion_synapses`, vmappable).
    Returns: ``(output, {site: activation (N, *unit_shape)})``; only requested sites are returned.
    Checked (:func:`validate`) and compiled once per (model, recorded sites, edited sites, shapes): new weights
    and edit values never retrace. Pixels must lie inside ``subject.input_spec.bounds`` (``InputError``
    otherwise). Inside your own traced function, use :func:`forward`.
    """
    edits, record_sites = _prepare(subject, x, edits, record)
    _check_noise_key(edits, key)
    if variables is not None:
        subject = subject.replace(variables=variables)
    out, rec = _jit_run(subject, x, edits, key, relu_override_state(), record_sites)
    return out, {name: rec[name] for name in (subject.sites if record_sites is None else record_sites)}


def _prepare(subject, x, edits, record) -> tuple[dict, tuple | None]:
    """Check a call's images (in bounds), sites and edits; ``(edits as a dict, recorded sites or None)``."""
    if edits is not None and not isinstance(edits, Mapping):
        raise TypeError(f"edits must be a mapping {{site: Edit}}; got {type(edits).__name__}")
    edits = dict(edits or {})
    try:
        record_sites = None if record is None else (record,) if isinstance(record, str) else tuple(record)
    except TypeError:
        record_sites = (record,)
    if record_sites is not None and not all(isinstance(r, str) for r in record_sites):
        raise ArgumentError(f"record must be a site name, a sequence of site names or None (every site); got "
                            f"{record!r:.80}")
    validate(subject, x, sites=record_sites or (), edits=edits, in_bounds=True, purpose="recording")
    return edits, record_sites


def _check_noise_key(edits: Mapping, key):
    if key is not None:
        check_key("key", key)
    elif any(e.has_noise for e in edits.values()):
        raise ArgumentError(f"noise edits at {[n for n, e in edits.items() if e.has_noise]} need a PRNG key: "
                            "run(..., key=jax.random.key(0)); got key=None")


def record(subject: Subject, x: Images, sites: Sequence[str] | str | None = None
           ) -> tuple[Outputs, dict[str, Activations]]:
    """Record ``sites`` (a name, a list, or None for all) of an intact subject: ``(output, {site: act})``."""
    return run(subject, x, record=sites)


def sample(subject: Subject, x: Images, sites: Sequence[str] | str | None = None, *, n_samples: int,
           key: PRNGKey, edits: Mapping[str, Edit] | None = None, variables: dict | None = None
           ) -> tuple[SampledOutputs, dict[str, SampledActivations]]:
    """Monte-Carlo responses of a stochastic subject (units with ``noise``, or noise edits): ``n_samples``
    independent draws in one vmapped call, ``(outputs (S, N, ...), {site: (S, N, *unit_shape)})``. A
    deterministic subject gives ``n_samples`` identical copies. Same checks as :func:`run`."""
    n_samples = check_count("n_samples", n_samples)
    check_key("key", key)
    edits, record_sites = _prepare(subject, x, edits, sites)
    if variables is not None:
        subject = subject.replace(variables=variables)
    keys = jax.random.split(key, n_samples)
    override = relu_override_state()
    out, rec = jax.vmap(lambda k: _jit_run(subject, x, edits, k, override, record_sites))(keys)
    return out, {name: rec[name] for name in (subject.sites if record_sites is None else record_sites)}


def site_means(subject: Subject, x: Images, sites: Sequence[str] | str, over: str = "images",
               batch_size: int = 256) -> dict[str, UnitArray]:
    """Mean activation per site over a reference set ``x``, for :func:`mean_ablation`.

    ``over="images"``: mean over images, shape = unit shape. ``over="space"``: also over spatial positions,
    shape (C,) — one mean per channel. ``x`` is checked once (as in :func:`run`), then run ``batch_size``
    images at a time.
    """
    check_choice("over", over, ("images", "space"))
    batch_size = check_count("batch_size", batch_size)
    if sites is None:
        raise ArgumentError(f"sites must name one or more sites of {getattr(subject, 'name', 'the subject')}; "
                            "got None")
    names = _prepare(subject, x, None, sites)[1] or ()           # sites is not None: a tuple of names
    if not names:
        raise ArgumentError(f"sites must name one or more sites of {subject.name}; got none. Valid: "
                            f"{', '.join(subject.sites)}")
    zeros = {s: jnp.zeros(subject.sites[s], jnp.float32) for s in names}
    sums = fold(_add_site_sums, zeros, jnp.asarray(x), subject, names, batch_size=batch_size)
    n = np.shape(x)[0]
    means = {s: v / n for s, v in sums.items()}
    if over == "space":
        means = {s: v.reshape(-1, v.shape[-1]).mean(0) for s, v in means.items()}
    return means


def _add_site_sums(sums, x, subject, sites):
    _, rec = forward(subject, x, record=sites)
    return {s: sums[s] + jnp.sum(rec[s], axis=0) for s in sites}


def _path_name(path) -> str:
    """A parameter's key path as ``"conv2/conv/kernel"`` (the names flax.traverse_util.flatten_dict joins)."""
    return jax.tree_util.keystr(path, simple=True, separator="/")


def synapse_paths(subject: Subject, site: str | None = None) -> list[str]:
    """Parameter paths (``"conv2/conv/kernel"``) of ``subject``, optionally only those inside ``site`` — a time
    step's site of a recurrent network holds only that step's own parameters (its batch norm, say), not the
    weights the steps share; a site with none is an error that names where the parameters are."""
    check_subject(subject)
    if site is not None:
        check_sites(subject, [site], "synapses")
    paths = [_path_name(path) for path, _ in jax.tree_util.tree_flatten_with_path(subject.params)[0]]
    inside = [p for p in paths if site is None or p.startswith(site + "/")]
    if site is not None and not inside:     # e.g. a time step of a recurrent network: its weights are shared
        tops = sorted({p.split("/")[0] for p in paths})
        raise UnknownNameError(f"site {site!r} holds no parameters of its own (a time step's, or a module "
                               f"without weights); the parameters are under {', '.join(tops)}: "
                               f"synapse_paths(subject) lists them all")
    return inside


def parameter(subject: Subject, path: str) -> jax.Array:
    """The parameter array at ``path`` (as in :func:`synapse_paths`; list indices of NNX models included)."""
    paths = synapse_paths(subject)
    if path not in paths:
        raise UnknownNameError(f"unknown parameter path {path!r}; valid: {', '.join(paths)}")
    leaf: Any = subject.params
    for k in path.split("/"):
        leaf = leaf[k] if k in leaf else leaf[int(k)]
    return leaf


def lesion_synapses(variables: dict, masks: Mapping[str, ArrayLike]) -> dict:
    """Weight (synaptic) lesions: multiply parameters by masks; pure and vmappable over the masks.

    ``masks``: ``{param path: multiplicative mask broadcast to the parameter}``, paths as in
    :func:`synapse_paths`. E.g. zero the connections from input channel 3 to every conv2 unit:
    ``lesion_synapses(v, {"conv2/conv/kernel": jnp.ones((3, 3, 32, 1)).at[:, :, 3].set(0)})``.
    """
    if not isinstance(variables, Mapping) or "params" not in variables:
        got = list(variables) if isinstance(variables, Mapping) else type(variables).__name__
        raise ArgumentError(f"variables must be a subject's variables (a mapping with 'params'); got {got}")
    if not isinstance(masks, Mapping):
        raise ArgumentError(f"masks must be a mapping {{param path: mask}}; got {type(masks).__name__}")
    for name, m in masks.items():
        check_finite(f"masks[{name!r}]", m, allow_empty=True)                # traced masks pass unchecked
    shapes = {_path_name(path): np.shape(a) for path, a in jax.tree_util.tree_flatten_with_path(variables["params"])[0]}
    unknown = [m for m in masks if m not in shapes]
    if unknown:
        raise UnknownNameError(f"unknown parameter path(s) {unknown}; valid: {', '.join(sorted(shapes))}")
    for name, m in masks.items():           # a mask must keep its parameter's shape (traced masks have shapes too)
        try:
            fits = np.broadcast_shapes(np.shape(m), shapes[name]) == tuple(shapes[name])
        except ValueError:
            fits = False
        if not fits:
            raise ArgumentError(f"masks[{name!r}] has shape {np.shape(m)}, which does not broadcast to the "
                                f"parameter's {tuple(shapes[name])}; use jax.vmap for a sweep of masks")

    def apply(path, leaf):
        name = _path_name(path)
        return leaf * jnp.asarray(masks[name], leaf.dtype) if name in masks else leaf

    return {**variables, "params": jax.tree_util.tree_map_with_path(apply, variables["params"])}
