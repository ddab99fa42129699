"""Fine-tuning: adapt a pre-trained GPT to a task with a small labelled set.

Three pieces, each small:

- :class:`GPTClassifier`: the GPT's body (embeddings, blocks, ``ln_f``) with a
  linear head on the hidden state of the *last real token* of each text, and
  :func:`freeze` to choose what trains (the head only, the last k blocks,
  all).
  :class:`EncoderClassifier` is BERT's counterpart: a head on the encoder's
  pooled ``[CLS]`` vector.
- LoRA (Hu et al. 2021): :class:`LoRALinear` adds a trainable low-rank update
  ``(alpha / r) * B @ A`` to a frozen ``nn.Linear``; :func:`add_lora` puts one
  on every attention and MLP projection (``c_attn``, ``c_proj``, ``c_fc``);
  :func:`merge_lora` folds the update into the weights and
  :func:`unmerge_lora` takes it out again.
- :func:`fit`: trains any of them with :func:`minigpt.train.train`, unchanged,
  on an :class:`ExampleSet`: the batch source whose batches are labelled
  examples drawn uniformly with the loop's seeded generator. So warm-up,
  cosine decay, AdamW on the trainable parameters only, clipping, validation
  and seeding are the pre-training loop's own.

Padding convention: a batch of texts of different lengths is a LongTensor
(B, T) padded on the right with ``PAD = -1`` (:func:`pad_rows`). Because the
model is causal, the real tokens never attend to the padding that follows
them, so the hidden state at the last real token is exactly the one the text
would get on its own; the classifier reads it at index ``length - 1``.
"""

import hashlib

import torch
import torch.nn.functional as F
from torch import nn

from minigpt.encoder import Encoder, segment_ids
from minigpt.model import GPT, eval_mode
from minigpt.train import TrainConfig, train

__all__ = [
    "PAD",
    "pad_rows",
    "last_positions",
    "pool",
    "last_token_features",
    "token_logprobs",
    "GPTClassifier",
    "EncoderClassifier",
    "LinearClassifier",
    "freeze",
    "check_labels",
    "classification_loss",
    "LoRALinear",
    "add_lora",
    "merge_lora",
    "unmerge_lora",
    "trainable_parameters",
    "ExampleSet",
    "fit",
    "predict",
    "accuracy",
    "prompt_response_rows",
]

PAD = -1
LORA_TARGETS = ("c_attn", "c_proj", "c_fc")


def pad_rows(
    sequences: list[list[int]], block_size: int | None = None
) -> torch.Tensor:
    """Token-id lists -> LongTensor (N, T), padded on the right with PAD.

    T is the longest length. A sequence longer than ``block_size`` is an error
    (nothing is silently cut).
    """
    if not sequences or any(len(s) == 0 for s in sequences):
        raise ValueError(
            "pad_rows needs a non-empty list of non-empty token-id lists"
        )
    longest = max(len(s) for s in sequences)
    if block_size is not None and longest > block_size:
        raise ValueError(
            f"a sequence has {longest} tokens but the model's block_size is "
            f"{block_size}; "
            "drop or shorten the longer texts first"
        )
    rows = torch.full((len(sequences), longest), PAD, dtype=torch.long)
    for i, s in enumerate(sequences):
        rows[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return rows


def last_positions(idx: torch.Tensor) -> torch.Tensor:
    """Index of each row's last real (non-PAD) token: (B, T) -> (B,).

    ``idx`` is right-padded with PAD.
    """
    real = idx != PAD
    lengths = real.sum(dim=1)
    if (lengths == 0).any():
        raise ValueError(
            f"row {int((lengths == 0).nonzero()[0])} holds only padding; "
            "every text needs a token"
        )
    positions = torch.arange(idx.size(1), device=idx.device)
    if (real != (positions < lengths[:, None])).any():
        raise ValueError(
            "padding (PAD=-1) must come only after the real tokens (right "
            "padding); "
            "build rows with minigpt.finetune.pad_rows"
        )
    return lengths - 1


POOLINGS = ("last", "mean")


def pool(
    hidden: torch.Tensor, idx: torch.Tensor, how: str = "last"
) -> torch.Tensor:
    """Pool hidden states to one vector per row: (B, T, C) -> (B, C).

    ``hidden`` (B, T, C) belongs to ``idx`` (B, T), padded with PAD.
    ``how="last"``: the state at each row's last real token, which has read
    the whole text (:class:`GPTClassifier`'s features). ``how="mean"``: the
    mean of the states at the real tokens; padding is left out.
    """
    if how not in POOLINGS:
        raise ValueError(f"how must be one of {POOLINGS}, got {how!r}")
    if hidden.shape[:2] != idx.shape:
        raise ValueError(
            "hidden (B, T, C) must match idx (B, T), got "
            f"{tuple(hidden.shape)} and {tuple(idx.shape)}"
        )
    last = last_positions(idx)  # also checks the padding
    if how == "last":
        return hidden[torch.arange(idx.size(0), device=idx.device), last]
    real = (idx != PAD).float()  # (B, T): 1 for a token, 0 for padding
    return (hidden * real[..., None]).sum(1) / real.sum(1, keepdim=True)


def last_token_features(gpt: GPT, idx: torch.Tensor) -> torch.Tensor:
    """``gpt``'s final hidden state at each row's last real token.

    ``idx`` (B, T) is right-padded with PAD; the state is taken after
    ``ln_f``: (B, T) -> (B, C). What :class:`GPTClassifier` and the reward
    model of :mod:`minigpt.align` put their heads on.
    """
    last = last_positions(idx)
    # columns that hold only padding change nothing: drop them
    idx = idx[:, : int(last.max()) + 1]
    # any id will do: causal attention never looks right
    tokens = idx.masked_fill(idx == PAD, 0)
    # hidden states (B, T, C); checks the ids
    return pool(gpt.hidden_states(tokens), idx, "last")


def token_logprobs(model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
    """Each next token's log-probability under ``model``: (B, T) -> (B, T-1).

    Entry t is log p(idx[:, t + 1] | idx[:, :t + 1]) for right-padded rows:
    the token at t + 1 given the tokens before it. An entry whose token is
    PAD is 0, so ``.sum(1)`` is each row's log-probability after its first
    token. The gradient flows (wrap the call in ``torch.no_grad()`` to only
    score).
    """
    real = idx != PAD
    if idx.dim() != 2 or idx.size(1) < 2:
        raise ValueError(
            "idx must be (B, T) rows of at least 2 tokens, got shape "
            f"{tuple(idx.shape)}"
        )
    last_positions(idx)  # checks that the padding is on the right only
    # any id will do: causal attention never looks right
    tokens = idx.masked_fill(~real, 0)
    logits, _ = model(tokens[:, :-1])
    # log p of each next token: (B, T - 1)
    logp = F.log_softmax(logits, dim=-1)
    logp = logp.gather(-1, tokens[:, 1:, None])[..., 0]
    return logp.masked_fill(~real[:, 1:], 0.0)


def check_labels(labels: torch.Tensor, n_classes: int) -> None:
    """Fail, naming the value, if a label is outside 0..n_classes-1."""
    bad = labels[(labels < 0) | (labels >= n_classes)]
    if bad.numel():
        raise ValueError(
            f"label {int(bad[0])} is outside the {n_classes} classes "
            f"0..{n_classes - 1}; "
            "relabel the data or build the classifier with n_classes > "
            f"{int(bad.max())}"
        )


def classification_loss(
    logits: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (B, K) against ``labels`` (B,).

    Labels are classes in 0..K-1.
    """
    n_classes = logits.size(-1)
    if labels.dtype != torch.long or labels.shape != logits.shape[:1]:
        raise ValueError(
            "labels must be a LongTensor of shape "
            f"{tuple(logits.shape[:1])}, "
            f"got {labels.dtype} of shape {tuple(labels.shape)}"
        )
    check_labels(labels, n_classes)
    return F.cross_entropy(logits, labels)


class GPTClassifier(nn.Module):
    """A pre-trained GPT with a classification head on the last real token.

    ``forward(idx, labels=None) -> (logits (B, n_classes), loss or None)``,
    where ``idx`` (B, T) is right-padded with PAD. The GPT's own ``lm_head``
    is not used.
    """

    def __init__(self, gpt: GPT, n_classes: int):
        super().__init__()
        if not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(
                f"n_classes must be an int >= 2, got {n_classes!r}"
            )
        self.body = gpt
        self.n_classes = n_classes
        self.head = nn.Linear(gpt.config.n_embd, n_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def features(self, idx: torch.Tensor) -> torch.Tensor:
        """The body's final hidden state at each row's last real token.

        Taken after ``ln_f``: (B, T) -> (B, C).
        """
        return last_token_features(self.body, idx)

    def forward(self, idx: torch.Tensor, labels: torch.Tensor | None = None):
        logits = self.head(self.features(idx))
        return logits, None if labels is None else classification_loss(
            logits, labels
        )


class EncoderClassifier(nn.Module):
    """A pre-trained encoder with a classification head on its [CLS] vector.

    BERT's fine-tuning recipe (Devlin et al. 2019): a linear head on
    :meth:`~minigpt.encoder.Encoder.pooled`, the tanh-pooled state of
    position 0, which holds ``[CLS]`` in rows built by
    :func:`~minigpt.encoder.bert_inputs`. ``forward(idx, labels=None) ->
    (logits (B, n_classes), loss or None)``, where ``idx`` (B, T) is
    right-padded with PAD; the padding is masked out of attention, and with
    ``sep_id`` the tokens after the first ``[SEP]`` get segment 1 (sentence
    pairs). The encoder's masked-LM head is not used.
    """

    def __init__(
        self, encoder: Encoder, n_classes: int, sep_id: int | None = None
    ):
        super().__init__()
        if not isinstance(encoder, Encoder):
            raise TypeError(
                "EncoderClassifier needs a minigpt.encoder.Encoder, got "
                f"{type(encoder).__name__}; for a GPT use GPTClassifier"
            )
        if not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(
                f"n_classes must be an int >= 2, got {n_classes!r}"
            )
        self.body, self.n_classes, self.sep_id = encoder, n_classes, sep_id
        self.head = nn.Linear(encoder.config.n_embd, n_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def features(self, idx: torch.Tensor) -> torch.Tensor:
        """The pooled [CLS] vector of each row: (B, T) -> (B, C)."""
        last = last_positions(idx)  # checks the right padding
        idx = idx[:, : int(last.max()) + 1]
        real = idx != PAD
        segments = (
            None if self.sep_id is None else segment_ids(idx, self.sep_id)
        )
        # the id under padding does not matter: attention never reads it
        tokens = idx.masked_fill(~real, 0)
        return self.body.pooled(tokens, segments, real)

    def forward(self, idx: torch.Tensor, labels: torch.Tensor | None = None):
        logits = self.head(self.features(idx))
        return logits, None if labels is None else classification_loss(
            logits, labels
        )


class LinearClassifier(nn.Module):
    """A linear head on fixed feature vectors.

    ``forward(x (B, C), labels=None) -> (logits, loss)``.
    """

    def __init__(self, n_features: int, n_classes: int):
        super().__init__()
        self.head = nn.Linear(n_features, n_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        logits = self.head(x)
        return logits, None if labels is None else classification_loss(
            logits, labels
        )


def freeze(classifier: GPTClassifier, trainable: str | int = "all") -> int:
    """Choose what trains: ``"head"``, ``"all"``, or an int k.

    An int k trains the head, ``ln_f`` and the last k blocks. Sets
    ``requires_grad``; :func:`minigpt.train.train` optimises only parameters
    that require gradients. Returns the number of trainable parameters.
    """
    body, n_layer = classifier.body, classifier.body.config.n_layer
    if not (
        trainable in ("head", "all")
        or (
            isinstance(trainable, int)
            and not isinstance(trainable, bool)
            and 0 <= trainable <= n_layer
        )
    ):
        raise ValueError(
            "trainable must be 'head', 'all' or a number of last blocks "
            f"0..{n_layer}, "
            f"got {trainable!r}"
        )
    body.requires_grad_(trainable == "all")
    if isinstance(trainable, int):
        body.transformer.ln_f.requires_grad_(True)
        for block in body.transformer.h[n_layer - trainable :]:
            block.requires_grad_(True)
    classifier.head.requires_grad_(True)
    return trainable_parameters(classifier)


def trainable_parameters(model: nn.Module) -> int:
    """The number of parameters that require gradients, tied ones once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update.

    It computes W x + b + (alpha / r) B A x. A (r, in) starts random, B
    (out, r) starts at zero, so at the start the layer computes exactly what
    ``base`` does. Only r (in + out) numbers train instead of in * out.
    :meth:`merge` adds (alpha / r) B A into ``base.weight`` so the layer costs
    no more than the original; :meth:`unmerge` subtracts it again.
    """

    def __init__(self, base: nn.Linear, rank: int = 4, alpha: float = 8.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(
                f"LoRALinear wraps an nn.Linear, got {type(base).__name__}"
            )
        if not isinstance(rank, int) or not 1 <= rank <= min(
            base.in_features, base.out_features
        ):
            raise ValueError(
                "rank must be an int in "
                f"1..{min(base.in_features, base.out_features)}, got {rank!r}"
            )
        self.base = base.requires_grad_(False)
        self.rank, self.scale = rank, alpha / rank
        self.A = nn.Parameter(
            torch.randn(rank, base.in_features) / base.in_features**0.5
        )
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))
        self.merged = False

    def delta(self) -> torch.Tensor:
        """The update (alpha / r) B A: (out, in), like ``base.weight``."""
        return self.scale * self.B @ self.A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        return (
            y if self.merged else y + self.scale * (x @ self.A.T) @ self.B.T
        )

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.base.weight += self.delta()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base.weight -= self.delta()
            self.merged = False


def add_lora(
    model: nn.Module,
    rank: int = 4,
    alpha: float = 8.0,
    targets: tuple = LORA_TARGETS,
) -> list[str]:
    """Freeze ``model``; wrap each ``nn.Linear`` named in ``targets``.

    Each becomes a :class:`LoRALinear`. Returns the names of the wrapped
    layers. Only the new A and B matrices train; for a :class:`GPTClassifier`
    call it on ``classifier.body`` so the head trains too.
    """
    model.requires_grad_(False)
    wrapped = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in targets and isinstance(child, nn.Linear):
                setattr(module, child_name, LoRALinear(child, rank, alpha))
                wrapped.append(f"{name}.{child_name}" if name else child_name)
    if not wrapped:
        raise ValueError(
            f"no nn.Linear named one of {targets} in {type(model).__name__}; "
            "nothing to adapt"
        )
    return wrapped


def merge_lora(model: nn.Module) -> None:
    """Fold every LoRA update into its base weight.

    Inference then costs what the original model did.
    """
    for module in model.modules():
        if isinstance(module, LoRALinear):
            module.merge()


def unmerge_lora(model: nn.Module) -> None:
    """Take every merged LoRA update out of its base weight again.

    Use it to keep training, or to swap adapters.
    """
    for module in model.modules():
        if isinstance(module, LoRALinear):
            module.unmerge()


class ExampleSet:
    """Fine-tuning's batch source: labelled examples, not a token stream.

    A :class:`minigpt.train.BatchSource` for :func:`minigpt.train.train`.
    ``train_set`` and ``val_set`` are pairs
    ``(inputs (N, ...), targets (N, ...))``; a model given ``inputs[rows]``
    and ``targets[rows]`` returns ``(output, mean loss)``.

    :meth:`sample` draws ``batch_size`` training examples uniformly, with
    replacement, with the loop's generator; :meth:`evaluate` is the mean loss
    over every validation example, in order, in batches of ``batch_size``,
    each batch's mean loss weighted by its number of rows.
    """

    def __init__(self, train_set: tuple, val_set: tuple):
        (train_x, train_y), (val_x, val_y) = train_set, val_set
        for name, (x, y) in (
            ("training", train_set),
            ("validation", val_set),
        ):
            if len(x) != len(y) or len(x) == 0:
                raise ValueError(
                    f"the {name} inputs and targets must hold the same "
                    "number of examples, "
                    f"at least one, got {len(x)} and {len(y)}"
                )
        if (
            train_x.shape[1:] != val_x.shape[1:]
            or train_y.shape[1:] != val_y.shape[1:]
        ):
            raise ValueError(
                "training and validation examples differ in shape: inputs "
                f"{tuple(train_x.shape[1:])} "
                f"vs {tuple(val_x.shape[1:])}, targets "
                f"{tuple(train_y.shape[1:])} vs "
                f"{tuple(val_y.shape[1:])}; pad all texts in one pad_rows "
                "call, then slice it "
                "into the splits"
            )
        self.train_x, self.train_y, self.val_x, self.val_y = (
            train_x,
            train_y,
            val_x,
            val_y,
        )

    def __len__(self) -> int:
        return len(self.train_x)

    def __repr__(self) -> str:
        return (
            f"ExampleSet({len(self.train_x)} training examples, "
            f"{len(self.val_x)} validation examples)"
        )

    def sample(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # batch_size example indices, drawn with replacement
        rows = torch.randint(
            len(self.train_x), (batch_size,), generator=generator
        )
        return self.train_x[rows], self.train_y[rows]

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batch_size: int) -> float:
        device = next(model.parameters()).device
        total = 0.0
        with eval_mode(model):
            for start in range(0, len(self.val_x), batch_size):
                x, y = (
                    self.val_x[start : start + batch_size].to(device),
                    self.val_y[start : start + batch_size].to(device),
                )
                total += model(x, y)[1].item() * len(x)
        return total / len(self.val_x)

    def fingerprint(self) -> dict:
        """Sizes and SHA-256 of the four tensors.

        Resuming on other examples would not continue the run.
        """
        digest = hashlib.sha256()
        for tensor in (self.train_x, self.train_y, self.val_x, self.val_y):
            digest.update(tensor.cpu().contiguous().numpy().tobytes())
        return {
            "train_examples": len(self.train_x),
            "val_examples": len(self.val_x),
            "sha256": digest.hexdigest(),
        }


def _n_classes(model: nn.Module) -> int | None:
    """n_classes of a model with a linear ``head`` (the classifiers), else
    None."""
    head = getattr(model, "head", None)
    return head.out_features if isinstance(head, nn.Linear) else None


def fit(
    model: nn.Module, train_set: tuple, val_set: tuple, config: TrainConfig
) -> dict:
    """Train ``model`` on ``train_set`` with :func:`minigpt.train.train`.

    ``train_set`` and ``val_set`` are ``(inputs, targets)`` pairs; returns the
    history. ``model(inputs[i], targets[i])`` must return ``(output, loss)``,
    as GPT and the classifiers do. Each step draws
    ``config.batch_size`` examples uniformly (with replacement); ``val_loss``
    in the history is the mean loss over all of ``val_set`` (see
    :class:`ExampleSet`). ``config.block_size`` is not used: an example is as
    long as it is.
    """
    n_classes = _n_classes(model)
    # fail before training, not at the first batch that holds the bad label
    if n_classes is not None:
        check_labels(train_set[1], n_classes)
        check_labels(val_set[1], n_classes)
    return train(model, ExampleSet(train_set, val_set), config)


@torch.no_grad()
def predict(
    model: nn.Module, inputs: torch.Tensor, batch_size: int = 256
) -> torch.Tensor:
    """Predicted class of every example: (N, ...) -> (N,).

    Computed in eval mode, in batches of ``batch_size``.
    """
    device = next(model.parameters()).device
    with eval_mode(model):
        return torch.cat(
            [
                model(inputs[i : i + batch_size].to(device))[0]
                .argmax(-1)
                .cpu()
                for i in range(0, len(inputs), batch_size)
            ]
        )


def accuracy(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int = 256,
) -> float:
    """Fraction of examples whose predicted class equals the label."""
    return (
        (predict(model, inputs, batch_size) == labels).float().mean().item()
    )


# --- instruction-style tuning ---


def prompt_response_rows(
    tokenizer, pairs: list[tuple[str, str]], block_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) LongTensors (N, T) from prompt -> response pairs.

    For next-token training. Each row is ``prompt + response`` shifted by one
    as in pre-training, except that the targets inside the prompt (and the
    padding) are -1, so the loss is the response's only: the model learns to
    answer, not to write prompts. Inputs are padded with token 0.
    """
    xs, ys = [], []
    for prompt, response in pairs:
        p, r = tokenizer.encode(prompt), tokenizer.encode(response)
        if not p or not r:
            raise ValueError(
                "prompt and response must both encode to tokens, got "
                f"{prompt!r} -> {response!r}"
            )
        ids = p + r
        if len(ids) - 1 > block_size:
            raise ValueError(
                f"prompt + response is {len(ids)} tokens, more than "
                "block_size + 1 = "
                f"{block_size + 1}: {prompt + response!r}"
            )
        xs.append(ids[:-1])
        ys.append([-1] * (len(p) - 1) + r)
    inputs, targets = pad_rows(xs), pad_rows(ys)
    return inputs.masked_fill(inputs == PAD, 0), targets
