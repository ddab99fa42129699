"""The book's model zoo: pre-trained models, trained once and cached.

For example::

    from minigpt.zoo import pretrained

    name = "shakespeare-char"  # or "shakespeare-bpe"
    model, tokenizer, history = pretrained(name)

The first call trains the preset on the CPU (a progress bar shows it; the
pre-training chapter shows how long it took, from
``history["train_seconds"]``) and saves it under
``minigpt.data.cache_dir() / "zoo"``; later calls load it from there. Training
is deterministic: the same code and corpus give the same weights, run after
run.

``history`` is :func:`minigpt.train.train`'s history (``step``, ``lr``,
``train_loss``, ``val_step``, ``val_loss``) plus

- ``samples``: ``[{"step": s, "text": ...}, ...]`` text generated from the
  same prompt and the same random numbers at several points of training;
- ``corpus``: the corpus it was trained on; ``train_seconds``,
  ``train_cpu_seconds`` and ``torch_threads``: the wall and CPU time training
  took when it ran, and with how many threads.

The cache key covers the preset, the SHA-256 of the corpus text and a hash of
minigpt's own code (model, attention, sampling, tokenizer, training, zoo and
the shared mechanics in ``common``; comments and docstrings left out), so a
model trained by older code is never silently reused.
``pretrained(name, retrain=True)`` trains again regardless.

Writes are safe when two processes ask for the same model at once: the first
takes a lock file and trains, the second waits for it and then loads, and the
checkpoint folder is written under a temporary name and moved into place
(``os.replace``), so a reader never sees half a model.

Every preset names its corpus; the book's presets train on Tiny Shakespeare,
which ships with minigpt, so the zoo needs no network.
"""

import ast
import contextlib
import hashlib
import json
import re
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from minigpt import checkpoint, data
from minigpt.common import seeded_rng
from minigpt.encoder import Encoder, EncoderConfig, MaskedLMBatches
from minigpt.model import GPT, GPTConfig
from minigpt.scaling import training_flops
from minigpt.tasks.incontext import MappingBatches, MappingTask
from minigpt.tokenizer import CharTokenizer, train_bpe
from minigpt.train import TrainConfig, train

__all__ = [
    "SOURCE_FILES",
    "Preset",
    "PRESETS",
    "BERT_SPECIAL_TOKENS",
    "code_digest",
    "source_hash",
    "cache_key",
    "model_dir",
    "pretrained",
    "training_speed",
    "build_tokenizer",
]

TOKENIZERS = ("char", "bpe")
ARCHITECTURES = ("gpt", "encoder")
#: The special tokens an encoder preset adds to its tokenizer, BERT's.
BERT_SPECIAL_TOKENS = ("[CLS]", "[SEP]", "[MASK]", "[PAD]")
# Settings the zoo fixes itself: CPU in float32 so every machine trains the
# same weights.
ZOO_TRAIN_SETTINGS = {
    "device": "cpu",
    "dtype": "float32",
    "out_dir": None,
    "checkpoint_interval": 0,
    "compile": False,
}
#: The files whose code decides what a trained model is; editing any of them
#: retrains.
SOURCE_FILES = (
    "attention.py",
    "common.py",
    "model.py",
    "sampling.py",
    "tokenizer.py",
    "train.py",
    "zoo.py",
    "interp.py",
    "tasks/incontext.py",
    "encoder.py",
)


@dataclass(frozen=True)
class Preset:
    """A recipe for a zoo model: corpus, tokenizer, model size, training.

    ``model``: GPTConfig fields except ``vocab_size`` (which the tokenizer
    decides); ``train``: TrainConfig fields (device, dtype, out_dir,
    checkpoint_interval and compile are fixed by the zoo, and the seed is
    ``seed``); ``vocab_size``: the BPE vocabulary (``tokenizer="bpe"`` only);
    ``sample_steps``: the steps at which a sample of ``sample_tokens`` tokens
    after ``sample_prompt`` is recorded in the history (0 = before training).

    ``task``: instead of a corpus, the arguments of
    :class:`minigpt.tasks.incontext.MappingTask` plus ``max_examples``; the
    model trains on :class:`~minigpt.tasks.incontext.MappingBatches` of
    in-context prompts (``tokenizer`` and ``corpus`` None), and the history
    records ``MappingBatches.probe`` before training and at every
    evaluation.

    ``architecture="encoder"``: a BERT-style
    :class:`~minigpt.encoder.Encoder` (``model`` holds EncoderConfig
    fields) trained to fill in masked tokens
    (:class:`~minigpt.encoder.MaskedLMBatches`) with the tokenizer plus
    :data:`minigpt.zoo.BERT_SPECIAL_TOKENS`; it records no samples.
    """

    name: str
    tokenizer: str | None
    model: dict
    train: dict
    corpus: str | None = "tinyshakespeare"
    vocab_size: int | None = None
    val_fraction: float = 0.1
    seed: int = 0
    sample_steps: tuple[int, ...] = ()
    sample_prompt: str = "\n"
    sample_tokens: int = 200
    task: dict | None = None
    architecture: str = "gpt"
    description: str = field(default="", compare=False)

    def __post_init__(self):
        if not re.fullmatch(r"[A-Za-z0-9._-]+", self.name):
            raise ValueError(
                f"Preset name {self.name!r} names a cache folder: use only "
                "letters, digits, '.', '_', '-'"
            )
        if self.task is not None:
            self._check_task()
        else:
            self._check_corpus()
        fixed = sorted(
            set(self.train) & (set(ZOO_TRAIN_SETTINGS) | {"progress", "seed"})
        )
        if fixed:
            raise ValueError(
                f"Preset {self.name!r}: the zoo sets {fixed} itself (the "
                "seed is Preset.seed); "
                "remove them from train"
            )
        if "vocab_size" in self.model:
            raise ValueError(
                f"Preset {self.name!r}: leave vocab_size out of model; the "
                "tokenizer decides it"
            )
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"Preset {self.name!r}: architecture must be one of "
                f"{ARCHITECTURES}, got {self.architecture!r}"
            )
        if self.architecture == "encoder" and (
            self.task is not None or self.sample_steps
        ):
            raise ValueError(
                f"Preset {self.name!r}: an encoder trains on a corpus and "
                "does not generate: leave task and sample_steps out"
            )
        # fail now, not after the tokenizer is trained
        self.model_config(vocab_size=1)
        config = self.train_config()
        bad = [s for s in self.sample_steps if not 0 <= s <= config.max_iters]
        if bad:
            raise ValueError(
                f"Preset {self.name!r}: sample_steps {bad} lie outside "
                f"0..max_iters={config.max_iters}"
            )

    def _check_corpus(self) -> None:
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(
                f"Preset {self.name!r}: tokenizer must be one of "
                f"{TOKENIZERS}, got {self.tokenizer!r}"
            )
        if self.tokenizer == "bpe" and not (
            isinstance(self.vocab_size, int) and self.vocab_size >= 257
        ):
            raise ValueError(
                f"Preset {self.name!r}: a BPE preset needs vocab_size >= 257 "
                f"(256 bytes + end-of-text), got {self.vocab_size!r}"
            )
        if self.tokenizer == "char" and self.vocab_size is not None:
            raise ValueError(
                f"Preset {self.name!r}: vocab_size={self.vocab_size} is for "
                "BPE; a character "
                "tokenizer takes its vocabulary from the corpus: leave "
                "vocab_size=None"
            )
        if self.corpus not in data.NAMES:
            raise ValueError(
                f"Preset {self.name!r}: unknown corpus {self.corpus!r}; "
                f"choose one of {data.NAMES}"
            )

    def _check_task(self) -> None:
        if self.tokenizer is not None or self.corpus is not None:
            raise ValueError(
                f"Preset {self.name!r} trains on a task: set tokenizer=None "
                f"and corpus=None, got {self.tokenizer!r} and {self.corpus!r}"
            )
        if self.vocab_size is not None or self.sample_steps:
            raise ValueError(
                f"Preset {self.name!r} trains on a task, whose ids need no "
                "tokenizer and whose history records probes, not samples: "
                "leave vocab_size and sample_steps out"
            )
        source = self.batch_source()
        needed = 2 * source.max_examples + 1
        if self.model.get("block_size", 0) < needed:
            raise ValueError(
                f"Preset {self.name!r}: prompts with max_examples="
                f"{source.max_examples} are {needed} tokens long; use "
                f"block_size >= {needed}"
            )

    def batch_source(self) -> MappingBatches:
        """The batch source of a preset with a ``task``."""
        arguments = dict(self.task)
        max_examples = arguments.pop("max_examples", 8)
        return MappingBatches(MappingTask(**arguments), max_examples)

    def gpt_config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig(vocab_size=vocab_size, **self.model)

    def model_config(self, vocab_size: int) -> GPTConfig | EncoderConfig:
        """The config of the preset's architecture."""
        if self.architecture == "encoder":
            return EncoderConfig(vocab_size=vocab_size, **self.model)
        return self.gpt_config(vocab_size)

    def train_config(self, progress: bool = False) -> TrainConfig:
        return TrainConfig(
            **self.train,
            **ZOO_TRAIN_SETTINGS,
            seed=self.seed,
            progress=progress,
        )

    def to_dict(self) -> dict:
        """Everything that decides the trained weights.

        The description is left out: it does not change them.
        """
        values = asdict(self)
        values.pop("description")
        values["sample_steps"] = list(self.sample_steps)
        return values


# nanoGPT's CPU Shakespeare size and budget, shared by the book's presets
SMALL = {
    "block_size": 64,
    "n_layer": 4,
    "n_head": 4,
    "n_embd": 128,
    "dropout": 0.0,
}
BUDGET = {"max_iters": 2000, "batch_size": 12, "eval_interval": 250}
SAMPLE_STEPS = (0, 100, 250, 500, 1000, 2000)

#: The book's presets by name: ``PRESETS["shakespeare-char"]``,
#: ``PRESETS["shakespeare-bpe"]``, ``PRESETS["shakespeare-char-llama"]``,
#: ``PRESETS["shakespeare-char-bert"]``, ``PRESETS["incontext-mapping"]``.
PRESETS = {
    p.name: p
    for p in (
        Preset(
            name="shakespeare-char",
            description="characters of Tiny Shakespeare; nanoGPT's CPU model "
            "size (4 layers, 4 heads, width 128)",
            tokenizer="char",
            model=dict(SMALL),
            train=dict(BUDGET),
            sample_steps=SAMPLE_STEPS,
        ),
        Preset(
            name="shakespeare-bpe",
            description="byte-level BPE tokens (vocabulary 1024) of Tiny "
            "Shakespeare; 4 layers, 4 heads, width 128",
            tokenizer="bpe",
            vocab_size=1024,
            model=dict(SMALL),
            train=dict(BUDGET),
            sample_steps=SAMPLE_STEPS,
        ),
        Preset(
            name="shakespeare-char-llama",
            description="characters of Tiny Shakespeare; the Llama layout "
            "(rotary positions, RMSNorm, SwiGLU, no biases, untied head) "
            "with shakespeare-char's size and parameter count",
            tokenizer="char",
            model={
                **SMALL,
                "bias": False,
                "positions": "rotary",
                "norm_layer": "rmsnorm",
                "mlp": "swiglu",
                # 3 x 128 x 345 per MLP: the 809,856 parameters of
                # shakespeare-char exactly
                "intermediate_size": 345,
                "tie_embeddings": False,
            },
            train=dict(BUDGET),
            sample_steps=SAMPLE_STEPS,
        ),
        Preset(
            name="shakespeare-char-bert",
            description="characters of Tiny Shakespeare, masked-language-"
            "model training of a BERT-layout encoder (post-LN, not causal) "
            "with shakespeare-char's size and budget",
            tokenizer="char",
            architecture="encoder",
            model=dict(SMALL),
            # post-LN stalls above the unigram loss at the GPTs' 4e-3; at
            # 1e-3 it leaves the unigram plateau near step 1000 (the BERT
            # chapter shows the plateau)
            train={**BUDGET, "learning_rate": 1e-3, "min_lr": 1e-4},
        ),
        Preset(
            name="incontext-mapping",
            description="in-context prompts 'key value ... key' whose "
            "mapping is new in every prompt (minigpt.tasks.incontext); "
            "2 layers, 4 heads, width 64",
            tokenizer=None,
            corpus=None,
            task={
                "n_keys": 32,
                "n_values": 32,
                "held_out_every": 4,
                "max_examples": 8,
            },
            model={
                "block_size": 17,
                "n_layer": 2,
                "n_head": 4,
                "n_embd": 64,
                "dropout": 0.0,
            },
            train={
                "max_iters": 4000,
                "batch_size": 64,
                "learning_rate": 3e-3,
                "min_lr": 3e-4,
                "eval_interval": 100,
            },
        ),
    )
}


def _preset(name) -> Preset:
    if isinstance(name, Preset):
        return name
    if name not in PRESETS:
        raise ValueError(
            f"unknown zoo model {name!r}; choose one of {', '.join(PRESETS)} "
            "(or pass a minigpt.zoo.Preset of your own)"
        )
    return PRESETS[name]


_AST_LOCK = threading.Lock()  # see code_digest


def code_digest(source: str) -> str:
    """SHA-256 of the syntax tree of Python ``source``, without docstrings.

    Editing a comment or a docstring keeps the digest; any change to what the
    code does changes it. One thread at a time: CPython 3.11's ``ast.parse``
    can fail with "AST constructor recursion depth mismatch" when two threads
    parse at once (two first uses of the zoo in threads did).
    """
    with _AST_LOCK:
        tree = ast.parse(source)
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (
                isinstance(body, list)
                and body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
        return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def source_hash() -> str:
    """One digest of the code of the files in :data:`SOURCE_FILES`.

    Those are minigpt's files that decide a trained model.
    """
    digests = {
        name: code_digest(
            (Path(__file__).parent / name).read_text(encoding="utf-8")
        )
        for name in SOURCE_FILES
    }
    return hashlib.sha256(
        json.dumps(digests, sort_keys=True).encode()
    ).hexdigest()


def cache_key(preset: Preset, corpus_text: str | None) -> str:
    """The hex digest that names a trained model.

    It covers the preset, the corpus's SHA-256 (None for a task preset) and
    minigpt's source hash.
    """
    payload = {
        "preset": preset.to_dict(),
        "corpus_sha256": None
        if corpus_text is None
        else hashlib.sha256(corpus_text.encode("utf-8")).hexdigest(),
        "source_sha256": source_hash(),
    }
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True).encode()
    ).hexdigest()


def model_dir(preset: Preset, key: str) -> Path:
    """Where the model of ``preset`` with cache key ``key`` lives.

    ``cache_dir()/zoo/<name>-<key[:16]>``.
    """
    return data.cache_dir() / "zoo" / f"{preset.name}-{key[:16]}"


def pretrained(name, retrain: bool = False, progress: bool = True):
    """The zoo model ``name`` as ``(model, tokenizer, history)``.

    Trained on first use and cached. ``name``: ``"shakespeare-char"``,
    ``"shakespeare-bpe"`` (see :data:`PRESETS`) or a :class:`Preset` of your
    own. ``retrain=True`` trains again and replaces the cached copy. The model
    comes back on the CPU in eval mode.
    """
    preset = _preset(name)
    text = None if preset.task else data.load_text(preset.corpus)
    key = cache_key(preset, text)
    path = model_dir(preset, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a second process waits here, then loads
    with _lock(path.with_name(path.name + ".lock")):
        if not retrain:
            cached = _load(path, key)
            if cached is not None:
                return cached
        model, tokenizer, history = _train(preset, text, progress)
        checkpoint.save(
            path,
            model,
            tokenizer,
            {
                "step": history["step"][-1] if history["step"] else 0,
                "key": key,
                "preset": preset.to_dict(),
                "history": history,
            },
        )
    return model.eval(), tokenizer, history


def training_speed(name) -> float:
    """FLOP/s the zoo model ``name`` achieved while it trained here.

    The training FLOPs 6 N D (:func:`minigpt.scaling.training_flops`, N the
    parameters without the embeddings, D the tokens of every optimizer step)
    over the wall time of the run, ``history["train_seconds"]``. The
    pre-training chapter derives it step by step and the FAQ reuses it, so
    the two pages show one measurement of this CPU.
    """
    preset = _preset(name)
    if preset.task is not None or preset.architecture != "gpt":
        raise ValueError(
            f"training_speed counts the FLOPs of a GPT trained on a corpus; "
            f"{preset.name!r} is not one"
        )
    model, _, history = pretrained(preset, progress=False)
    config = preset.train_config()
    tokens = (
        config.max_iters
        * config.batch_size
        * config.grad_accum_steps
        * model.config.block_size
    )
    flops = training_flops(model.num_params(non_embedding=True), tokens)
    return flops / history["train_seconds"]


def _load(path: Path, key: str):
    """The cached (model, tokenizer, history) at ``path``, or None."""
    if not path.exists():
        return None
    try:
        model, tokenizer, state = checkpoint.load(path)
    except checkpoint.CheckpointError as error:
        warnings.warn(
            f"the cached zoo model at {path} is unreadable ({error}); "
            "training it again",
            stacklevel=3,
        )
        return None
    if state is None or state.get("key") != key:
        warnings.warn(
            f"the cached zoo model at {path} has another cache key; training "
            "it again",
            stacklevel=3,
        )
        return None
    return model.eval(), tokenizer, state["history"]


@contextlib.contextmanager
def _lock(file: Path):
    """An exclusive lock on ``file`` across processes (POSIX ``flock``).

    Elsewhere no lock is taken; writes stay atomic.
    """
    try:
        import fcntl
    # Windows: concurrent first use may train twice, but never corrupts the
    # cache
    except ImportError:
        yield
        return
    with open(file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_tokenizer(preset: Preset, text: str):
    """The preset's tokenizer, trained on ``text``.

    Characters, or byte-level BPE of ``preset.vocab_size``.
    """
    if preset.tokenizer == "char":
        return CharTokenizer.from_text(text)
    return train_bpe(text, preset.vocab_size)


def _train(preset: Preset, text: str | None, progress: bool):
    """Train the preset's model on its corpus or on its task."""
    # seed weights and training, leaving the caller's random state alone
    with seeded_rng(preset.seed):
        if preset.task:
            model, tokenizer, history = _train_on_task(preset, progress)
        elif preset.architecture == "encoder":
            model, tokenizer, history = _train_encoder(preset, text, progress)
        else:
            model, tokenizer, history = _train_on_corpus(
                preset, text, progress
            )
    return model.eval(), tokenizer, history


def _timed_train(model: GPT, data, config: TrainConfig, callback) -> dict:
    """:func:`minigpt.train.train`'s history, with its wall and CPU time."""
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    history = train(model, data, config, callback=callback)
    history.update(
        train_seconds=time.perf_counter() - start_wall,
        train_cpu_seconds=time.process_time() - start_cpu,
        torch_threads=torch.get_num_threads(),
    )
    return history


def _train_on_task(preset: Preset, progress: bool):
    """Train on in-context prompts; probes recorded along the way."""
    source = preset.batch_source()
    config = preset.train_config(progress)
    model = GPT(preset.gpt_config(source.task.vocab_size))
    probes = [{"step": 0, **source.probe(model)}]

    def callback(step: int, model: GPT, history: dict) -> None:
        every = config.eval_interval
        if (every and step % every == 0) or step == config.max_iters:
            probes.append({"step": step, **source.probe(model)})

    history = _timed_train(model, source, config, callback)
    history.update(probes=probes, task=dict(preset.task))
    return model, None, history


def _train_encoder(preset: Preset, text: str, progress: bool):
    """Masked-LM training of the preset's encoder on its corpus."""
    tokenizer = build_tokenizer(preset, text).with_special_tokens(
        BERT_SPECIAL_TOKENS
    )
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train_ids, val_ids = data.train_val_split(ids, preset.val_fraction)
    config = preset.model_config(tokenizer.vocab_size)
    source = MaskedLMBatches(
        train_ids,
        val_ids,
        config.block_size,
        tokenizer.special_id("[MASK]"),
        tokenizer.vocab_size,
        special_ids=tuple(
            tokenizer.special_id(t) for t in BERT_SPECIAL_TOKENS
        ),
    )
    model = Encoder(config)
    history = _timed_train(model, source, preset.train_config(progress), None)
    history.update(corpus=preset.corpus)
    return model, tokenizer, history


def _train_on_corpus(preset: Preset, text: str, progress: bool):
    """Tokenize, split, build and train; samples recorded along the way."""
    tokenizer = build_tokenizer(preset, text)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train_ids, val_ids = data.train_val_split(ids, preset.val_fraction)
    prompt = torch.tensor(
        [tokenizer.encode(preset.sample_prompt)], dtype=torch.long
    )
    samples = []

    def record_sample(step: int, model: GPT) -> None:
        # the same random numbers at every step
        generator = torch.Generator().manual_seed(preset.seed)
        out = model.generate(
            prompt, preset.sample_tokens, generator=generator
        )
        samples.append(
            {"step": step, "text": tokenizer.decode(out[0, prompt.size(1) :])}
        )

    def callback(step: int, model: GPT, history: dict) -> None:
        if step in preset.sample_steps:
            record_sample(step, model)

    model = GPT(preset.gpt_config(tokenizer.vocab_size))
    if 0 in preset.sample_steps:
        record_sample(0, model)
    history = _timed_train(
        model, (train_ids, val_ids), preset.train_config(progress), callback
    )
    history.update(samples=samples, corpus=preset.corpus)
    return model, tokenizer, history
