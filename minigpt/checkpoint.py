"""Checkpoints: a folder of safetensors and JSON that never needs unpickling.

``save(path, model, tokenizer, train_state)`` writes the folder ``path``::

    config.json              format, model config, step, which files follow
    model.safetensors        the weights (tied weights stored once)
    tokenizer.json           the tokenizer, when one is given
    train_state.safetensors  optimizer moments, RNG states (as uint8) ...
    train_state.json         ... and the rest: step, train config, history,
                             optimizer scalars

``load(path)`` gives back ``(model, tokenizer, train_state)``; the model is a
:class:`~minigpt.model.GPT` or, when one was saved, a BERT-style
:class:`~minigpt.encoder.Encoder` (``config.json`` names which). Loading reads
only tensors and JSON, so a checkpoint from elsewhere cannot run code on your
machine (``torch.load`` unpickles, and unpickling can run anything).

The folder is written next to ``path`` under a temporary name and then moved
into place with ``os.replace`` (:func:`minigpt.common.atomic_path`), so a
crash mid-save leaves the previous checkpoint intact rather than half a new
one.
"""

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from minigpt.common import atomic_path, seeded_rng
from minigpt.encoder import Encoder, EncoderConfig
from minigpt.model import GPT, GPTConfig

__all__ = [
    "CheckpointError",
    "save",
    "load",
    "load_into",
    "read_config",
]

FORMAT = "minigpt-checkpoint"
VERSION = 1
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
TOKENIZER = "tokenizer.json"
STATE_TENSORS = "train_state.safetensors"
STATE_JSON = "train_state.json"
#: The kinds of model a checkpoint holds: its class and its config's class.
MODEL_KINDS = {"gpt": (GPT, GPTConfig), "encoder": (Encoder, EncoderConfig)}


class CheckpointError(ValueError):
    """A missing or truncated checkpoint, or one of another configuration."""


def _kind_of(model) -> str:
    for kind, (cls, _) in MODEL_KINDS.items():
        if isinstance(model, cls):
            return kind
    raise TypeError(
        f"a checkpoint holds a minigpt GPT or Encoder, got "
        f"{type(model).__name__}"
    )


def _config_of(meta: dict):
    """The model config in config.json, as its dataclass (a checkpoint from
    before encoders existed holds a GPT)."""
    _, config_cls = MODEL_KINDS[meta.get("model_kind", "gpt")]
    return config_cls.from_dict(meta["model_config"])


def save(
    path,
    model: GPT | Encoder,
    tokenizer=None,
    train_state: dict | None = None,
) -> Path:
    """Write the checkpoint folder ``path``.

    It holds ``model`` and, when given, ``tokenizer`` and ``train_state``.
    ``train_state`` is any nest of dicts, lists and tuples holding tensors and
    JSON scalars, such as :func:`minigpt.train.train_state` returns. An
    existing checkpoint at ``path`` is replaced; any other existing folder is
    refused.
    """
    path = Path(path)
    kind = _kind_of(model)
    if path.exists() and not _is_checkpoint(path) and any(path.iterdir()):
        raise CheckpointError(
            f"{path} exists and is not a minigpt checkpoint; refusing to "
            "replace it. "
            f"Choose an empty or new folder."
        )
    with atomic_path(path) as tmp:
        tmp.mkdir()
        save_model(model, str(tmp / WEIGHTS))
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "model_kind": kind,
            "model_config": model.config.to_dict(),
            "tokenizer": None,
            "train_state": train_state is not None,
            "step": None if train_state is None else train_state.get("step"),
        }
        if tokenizer is not None:
            tokenizer.save(tmp / TOKENIZER)
            meta["tokenizer"] = TOKENIZER
        if train_state is not None:
            tensors: dict[str, torch.Tensor] = {}
            skeleton = _to_json(train_state, "state", tensors)
            save_file(tensors, str(tmp / STATE_TENSORS))
            (tmp / STATE_JSON).write_text(json.dumps(skeleton))
        (tmp / CONFIG).write_text(json.dumps(meta, indent=2) + "\n")
    return path


def load(path, device="cpu") -> tuple[GPT | Encoder, object, dict | None]:
    """Read the checkpoint folder ``path``.

    Returns ``(model, tokenizer or None, train_state or None)``.
    """
    path = Path(path)
    meta = read_config(path)
    # the weights are replaced below: leave the caller's random state alone
    config = _config_of(meta)
    model_cls = GPT if isinstance(config, GPTConfig) else Encoder
    with seeded_rng():
        model = model_cls(config)
    _load_weights(model, path / WEIGHTS)
    model.to(device)
    tokenizer = None
    if meta["tokenizer"]:
        from minigpt.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(path / meta["tokenizer"])
    state = None
    if meta["train_state"]:
        tensors = _read_safetensors(path / STATE_TENSORS)
        state = _from_json(_read_json(path / STATE_JSON), tensors)
    return model, tokenizer, state


def load_into(model: GPT | Encoder, path) -> None:
    """Load the weights at ``path`` into an existing ``model``.

    The model must have the checkpoint's configuration.
    """
    meta = read_config(Path(path))
    # through GPTConfig: a checkpoint from before an option existed holds
    # no key for it, which means its default
    if meta.get("model_kind", "gpt") != _kind_of(model):
        raise CheckpointError(
            f"checkpoint {path} holds a model of kind "
            f"{meta.get('model_kind', 'gpt')!r}, not {_kind_of(model)!r}; "
            "build the model from the checkpoint with "
            f"checkpoint.load({str(path)!r})"
        )
    saved = _config_of(meta).to_dict()
    ours = model.config.to_dict()
    differ = {
        k: (saved.get(k), ours.get(k))
        for k in sorted(set(saved) | set(ours))
        if saved.get(k) != ours.get(k)
    }
    if differ:
        detail = ", ".join(
            f"{k}: checkpoint {a!r} vs model {b!r}"
            for k, (a, b) in differ.items()
        )
        raise CheckpointError(
            f"checkpoint {path} is of another model configuration "
            f"({detail}); "
            "build the model from the checkpoint with "
            f"checkpoint.load({str(path)!r})"
        )
    _load_weights(model, Path(path) / WEIGHTS)


def read_config(path: Path) -> dict:
    """The checkpoint's config.json, checked: ours, of a version we read."""
    if not (path / CONFIG).is_file():
        raise CheckpointError(
            f"no checkpoint at {path}: {CONFIG} is missing; "
            "pass the folder that checkpoint.save() or `python -m minigpt "
            "train` wrote"
        )
    meta = _read_json(path / CONFIG)
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(
            f"{path / CONFIG} is not a {FORMAT} version {VERSION} file "
            f"(format={meta.get('format')!r}, "
            f"version={meta.get('version')!r})"
        )
    return meta


def _is_checkpoint(path: Path) -> bool:
    try:
        read_config(path)
    except CheckpointError:
        return False
    return True


def _read_json(file: Path):
    try:
        return json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{file} is unreadable or truncated ({err}); save the checkpoint "
            "again"
        ) from err


def _read_safetensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(file))
    except (OSError, SafetensorError) as err:
        raise CheckpointError(
            f"{file} is missing, truncated or corrupt ({err}); save the "
            "checkpoint again"
        ) from err


def _load_weights(model: GPT, file: Path) -> None:
    try:
        load_model(model, str(file), strict=True)
    except (OSError, SafetensorError) as err:
        raise CheckpointError(
            f"{file} is missing, truncated or corrupt ({err}); save the "
            "checkpoint again"
        ) from err
    # shapes or names that do not fit the configuration in config.json
    except RuntimeError as err:
        raise CheckpointError(
            f"{file} does not match the model configuration in {CONFIG}: "
            f"{err}"
        ) from err


def _to_json(obj, key: str, tensors: dict):
    """Replace each tensor in ``obj`` by ``{"tensor": key}``.

    The tensor goes into ``tensors``; tuples and int keys are tagged.
    """
    if isinstance(obj, torch.Tensor):
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"tensor": key}
    if isinstance(obj, dict):
        if all(isinstance(k, int) for k in obj) and obj:
            return {
                "int_keys": {
                    str(k): _to_json(v, f"{key}.{k}", tensors)
                    for k, v in obj.items()
                }
            }
        if not all(isinstance(k, str) for k in obj):
            raise TypeError(
                f"train_state dict keys at {key} must all be str or all int, "
                f"got {list(obj)}"
            )
        return {
            "dict": {
                k: _to_json(v, f"{key}.{k}", tensors) for k, v in obj.items()
            }
        }
    if isinstance(obj, (list, tuple)):
        items = [
            _to_json(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)
        ]
        return {"tuple": items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(
        f"train_state value at {key} has type {type(obj).__name__}; "
        f"only tensors, dicts, lists, tuples and JSON scalars can be saved"
    )


def _from_json(obj, tensors: dict):
    """Inverse of :func:`_to_json`."""
    if isinstance(obj, list):
        return [_from_json(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    ((tag, value),) = obj.items()
    if tag == "tensor":
        if value not in tensors:
            raise CheckpointError(
                f"tensor {value!r} named in {STATE_JSON} is missing from "
                f"{STATE_TENSORS}"
            )
        return tensors[value]
    if tag == "tuple":
        return tuple(_from_json(v, tensors) for v in value)
    if tag == "int_keys":
        return {int(k): _from_json(v, tensors) for k, v in value.items()}
    return {k: _from_json(v, tensors) for k, v in value.items()}
