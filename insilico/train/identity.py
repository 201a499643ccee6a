"""What identifies a training run for resuming it: the model, the config, the objective and a content hash of
the training and test data (:func:`data_fingerprint`), and the check that a checkpoint was written by the same run,
naming what differs when it was not."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, is_dataclass
from pathlib import Path

import numpy as np

from ..engine.fingerprint import describe_static, stable_text
from ..models.spec import model_spec
from .checkpoint import CheckpointError

IDENTITY_FORMAT = 3          # checkpoints' identity records: 2 = data by content hash, objective always recorded;
                             # 3 = classes by module and qualified name, other objects without memory addresses


def data_fingerprint(x, y, name: str | None = None) -> dict:
    """What identifies a dataset for resuming: a sha256 of its images (as float32) and labels (as int32), with
    their shapes; ``name`` is recorded for messages only (two datasets with one name and other content differ,
    one content under two names is the same)."""
    x, y = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.int32)
    h = hashlib.sha256()
    h.update(f"x{x.shape}|y{y.shape}|".encode())
    h.update(memoryview(x).cast("B"))
    h.update(memoryview(y).cast("B"))
    return {"name": name, "images": int(x.shape[0]), "shape": list(x.shape[1:]), "sha256": h.hexdigest()}


def _plain(value):
    """A JSON-able copy (tuples as lists; arrays as lists; other objects as :func:`describe_static` describes them:
    by type, fields and attributes, never by memory address)."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else describe_static(v)))


def _class(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _objective_identity(objective) -> dict:
    if is_dataclass(objective) and not isinstance(objective, type):
        return {"class": _class(objective), "fields": _plain(asdict(objective))}
    return {"class": _class(objective), "repr": describe_static(objective)}


def _model_identity(model) -> dict:
    try:
        return _plain(model_spec(model))
    except ValueError:                                     # a model class outside insilico.models
        return {"class": _class(model), "repr": stable_text(repr(model))}


def _run_identity(model, cfg, objective, train: dict, test: dict | None) -> dict:
    """What a run is, as a checkpoint records it: the model, the config (``cfg``, a TrainConfig), the objective
    and the fingerprints (:func:`data_fingerprint`) of the training and test data (``test`` None when the run
    does not evaluate on test data)."""
    return {"format": IDENTITY_FORMAT, "model": _model_identity(model), "config": _plain(asdict(cfg)),
            "objective": _objective_identity(objective), "train": train, "test": test}


def _describe_data(d) -> str:
    if d is None:
        return "none"
    return f"{d.get('name')!r}, {d.get('images')} images of shape {tuple(d.get('shape', ()))}, sha256 " \
           f"{str(d.get('sha256'))[:12]}"


def _describe_objective(o) -> str:
    if not isinstance(o, dict):
        return repr(o)
    if "fields" in o:
        return f"{o.get('class')}({', '.join(f'{k}={v!r}' for k, v in o['fields'].items())})"
    return o.get("repr", repr(o))


def _differences(stored: dict, now: dict) -> list[str]:
    """What differs between a checkpoint's identity and this run's, one phrase per difference."""
    out = []
    old_model, new_model = stored.get("model") or {}, now["model"]
    if old_model != new_model:
        if old_model.get("class") == new_model.get("class") and "config" in old_model and "config" in new_model:
            a, b = old_model["config"], new_model["config"]
            out += [f"the model's {k} ({a.get(k)!r} in the checkpoint, {b.get(k)!r} now)"
                    for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        else:
            out.append(f"the model ({json.dumps(old_model)} in the checkpoint, {json.dumps(new_model)} now)")
    old_cfg, new_cfg = stored.get("config") or {}, now["config"]
    for k in sorted(set(old_cfg) | set(new_cfg)):
        if old_cfg.get(k) != new_cfg.get(k):
            out.append(f"config.{k} ({old_cfg.get(k)!r} in the checkpoint, {new_cfg.get(k)!r} now)")
    for key, what in (("train", "the training data"), ("test", "the test data")):
        a, b = stored.get(key), now[key]
        if (a or {}).get("sha256") != (b or {}).get("sha256"):
            change = "content differs" if a and b and a.get("name") == b.get("name") else "differs"
            out.append(f"{what}: {change} (checkpoint: {_describe_data(a)}; now: {_describe_data(b)})")
    if stored.get("objective") != now["objective"]:
        out.append(f"the objective ({_describe_objective(stored.get('objective'))} in the checkpoint, "
                   f"{_describe_objective(now['objective'])} now)")
    return out


def _check_resumable(ckpt: Path, stored, identity: dict):
    way_out = "pass resume=False to start over (it is overwritten after the first epoch) or another checkpoint_dir"
    if not isinstance(stored, dict) or stored.get("format") != IDENTITY_FORMAT:
        raise CheckpointError(
            f"{ckpt} was written by an earlier version of insilico that did not record the content of the training "
            f"data and the objective, so resuming it cannot be verified; {way_out}")
    diffs = _differences(stored, identity)
    if diffs:
        raise CheckpointError(f"{ckpt} was written by another training run, so it is not resumed: "
                              + "; ".join(diffs) + f". To train anyway, {way_out}")
