"""Back-of-the-envelope arithmetic of scale.

Parameters, FLOPs, memory, time, cost and scaling fits. Every function is
plain arithmetic that a reader can redo by hand::

    n = param_count(config)                # exactly GPT(config).num_params()
    flops = training_flops(175e9, 300e9)   # GPT-3: 6 N D ~= 3.15e23 FLOPs
    days = gpu_days(flops, ACCELERATORS["A100"], utilisation=0.4)
    fit = fit_power_law(n_params, losses)  # L(N) = a N^-alpha + c

Conventions (Kaplan et al. 2020, "Scaling laws for neural language models"):

- N is the number of parameters *without* the embedding matrices
  (``non_embedding=True``); embeddings are table look-ups, not matrix
  multiplications.
- One multiply-add is 2 FLOPs. A forward pass costs 2 N FLOPs per token for
  the weight matrices plus 2 n_layer n_ctx d_model for attention over the
  context; a backward pass costs twice the forward, so training costs 3 x
  forward = 6 N D (+ the attention term) for D tokens.

Only ``minigpt.model.GPTConfig`` is imported: this module stands alone.
"""

import math
from dataclasses import dataclass

import numpy as np

from minigpt.common import check_positive_int
from minigpt.encoder import EncoderConfig
from minigpt.model import GPTConfig, swiglu_hidden_size

__all__ = [
    "param_count",
    "encoder_param_count",
    "kv_cache_bytes_per_token",
    "forward_flops_per_token",
    "training_flops",
    "training_flops_for",
    "Accelerator",
    "ACCELERATORS",
    "training_seconds",
    "gpu_days",
    "energy_kwh",
    "training_memory",
    "activation_bytes",
    "PowerLawFit",
    "fit_power_law",
]


def _check_config(config) -> None:
    if not isinstance(config, GPTConfig):
        raise TypeError(
            f"expected a GPTConfig, got {type(config).__name__}; "
            "e.g. GPTConfig(vocab_size=65, block_size=64, n_layer=4, "
            "n_head=4, n_embd=128)"
        )


def _check_positive(name: str, value, allow_zero: bool = False) -> float:
    """``value`` as a float, if finite and > 0 (>= 0 with ``allow_zero``).

    Otherwise a ValueError naming it.
    """
    ok = (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value >= 0 if allow_zero else value > 0)
    )
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(
            f"{name} must be a finite number {bound}, got {value!r}"
        )
    return float(value)


def param_count(config: GPTConfig, non_embedding: bool = False) -> int:
    """The exact number of parameters of ``GPT(config)``, from its sizes.

    With C = n_embd, V = vocab_size, T = block_size, L = n_layer, in GPT-2's
    layout:

    - token and position embeddings: V C + T C (the output head is tied to the
      token embedding, so it adds nothing);
    - each block: attention c_attn (C x 3C) and c_proj (C x C), MLP c_fc (C x
      4C) and c_proj (4C x C): 12 C^2 weights; with ``bias`` also 3C + C + 4C
      + C = 9C biases; two LayerNorms: 2C gains (+ 2C biases);
    - the final LayerNorm: C (+ C).

    GPT-2 small (V=50257, T=1024, L=12, C=768) has 124,439,808.
    ``non_embedding=True`` leaves out V C + T C, as
    :meth:`minigpt.model.GPT.num_params` does.

    The options of today's models change the terms: rotary positions drop
    T C; RMSNorm has a gain and no bias; grouped-query attention makes
    c_attn C x (C + 2 n_kv_head d), d = C / n_head; SwiGLU has three
    matrices of C x H (H its hidden width); an untied ``lm_head`` adds V C,
    counted even with ``non_embedding`` (it is not an embedding).
    """
    _check_config(config)
    C, b = config.n_embd, int(config.bias)
    rms = config.norm_layer == "rmsnorm"
    norm = C if rms else C * (1 + b)  # gain (+ bias)
    kv_width = _kv_heads(config) * (C // config.n_head)
    attention = C * (C + 2 * kv_width) + C * C + b * (2 * C + 2 * kv_width)
    hidden = _mlp_width(config)
    if config.mlp == "swiglu":
        mlp = 3 * C * hidden + b * (2 * hidden + C)
    else:
        mlp = 2 * C * hidden + b * (hidden + C)
    n = config.n_layer * (attention + mlp + 2 * norm) + norm
    if not config.tie_embeddings:
        n += config.vocab_size * C
    if not non_embedding:
        positions = config.block_size if config.positions == "learned" else 0
        n += (config.vocab_size + positions) * C
    return n


def encoder_param_count(config: EncoderConfig, mlm_head: bool = True) -> int:
    """The exact number of parameters of a BERT-layout encoder.

    With C = n_embd, V = vocab_size, T = block_size, S = type_vocab_size, H
    the MLP width, L = n_layer:

    - embeddings: (V + T + S) C, and their LayerNorm 2C;
    - each block: Q, K, V and the output projection 4 C^2 + 4C, the MLP
      2 C H + H + C, two LayerNorms 4C;
    - the pooler over [CLS]: C^2 + C;
    - with ``mlm_head`` (:class:`minigpt.encoder.Encoder` has it,
      ``transformers``' ``BertModel`` does not): a dense layer C^2 + C, a
      LayerNorm 2C and an output bias V; the output matrix is the tied token
      embedding.

    BERT-base (V=30522, T=512, S=2, L=12, C=768, H=3072) without the head:
    109,482,240, the "110M" of Devlin et al. 2019.
    """
    if not isinstance(config, EncoderConfig):
        raise TypeError(
            f"encoder_param_count needs an EncoderConfig, got "
            f"{type(config).__name__}; for a GPT use param_count"
        )
    C, V = config.n_embd, config.vocab_size
    H = config.intermediate_size or 4 * C
    embeddings = (V + config.block_size + config.type_vocab_size) * C + 2 * C
    block = 4 * C * C + 4 * C + 2 * C * H + H + C + 4 * C
    n = embeddings + config.n_layer * block + C * C + C
    if mlm_head:
        n += C * C + C + 2 * C + V
    return n


def _kv_heads(config: GPTConfig) -> int:
    return config.n_kv_head or config.n_head


def _mlp_width(config: GPTConfig) -> int:
    """The MLP's hidden width H: 4C for GELU, Llama's rounding for SwiGLU."""
    if config.intermediate_size:
        return config.intermediate_size
    if config.mlp == "swiglu":
        return swiglu_hidden_size(config.n_embd)
    return 4 * config.n_embd


def kv_cache_bytes_per_token(
    config: GPTConfig, bytes_per_value: int = 2
) -> int:
    """Bytes the KV cache holds for each token of context.

    Every layer keeps a key and a value of n_kv_head x d numbers per token
    (d = n_embd / n_head): n_layer x 2 x n_kv_head x d x bytes_per_value
    (2 for 16-bit numbers). Grouped-query attention shrinks it by n_head /
    n_kv_head; the weights do not enter at all.
    """
    _check_config(config)
    check_positive_int(
        "bytes_per_value", bytes_per_value, "; 2 for float16 or bfloat16"
    )
    head_dim = config.n_embd // config.n_head
    return config.n_layer * 2 * _kv_heads(config) * head_dim * bytes_per_value


def forward_flops_per_token(
    n_params: float, n_layer: int = 0, n_ctx: int = 0, d_model: int = 0
) -> float:
    """FLOPs of one forward pass per token: 2 N + 2 n_layer n_ctx d_model.

    From Kaplan et al. (2020), Table 1. The first term: every weight takes
    part in one multiply-add per token. The second term is attention to the
    context (scores Q K^T and the weighted sum of V, averaged over a causal
    context); leave n_layer, n_ctx, d_model at 0 to count the weights only.
    """
    n = _check_positive("n_params", n_params)
    for name, value in (
        ("n_layer", n_layer),
        ("n_ctx", n_ctx),
        ("d_model", d_model),
    ):
        _check_positive(name, value, allow_zero=True)
    return 2 * n + 2 * n_layer * n_ctx * d_model


def training_flops(
    n_params: float,
    n_tokens: float,
    n_layer: int = 0,
    n_ctx: int = 0,
    d_model: int = 0,
) -> float:
    """Training FLOPs for ``n_tokens`` tokens: 3 x the forward pass's.

    The backward pass costs 2 x forward, so training D tokens costs
    6 N D + 6 n_layer n_ctx d_model D. GPT-3 (N = 175e9, D = 300e9):
    6 N D = 3.15e23, the 3.14e23 that Brown et al. (2020) report.
    """
    d = _check_positive("n_tokens", n_tokens)
    return 3 * forward_flops_per_token(n_params, n_layer, n_ctx, d_model) * d


def training_flops_for(config: GPTConfig, n_tokens: float) -> float:
    """Training FLOPs of a GPTConfig, with :func:`training_flops`.

    N is non-embedding, n_ctx = block_size, d_model = n_embd.
    """
    _check_config(config)
    return training_flops(
        param_count(config, non_embedding=True),
        n_tokens,
        config.n_layer,
        config.block_size,
        config.n_embd,
    )


@dataclass(frozen=True)
class Accelerator:
    """An accelerator's datasheet numbers.

    Dense peak FLOP/s at the stated precision, and board power.
    """

    name: str
    peak_flops: float  # FLOP/s, dense (no structured sparsity)
    precision: str
    watts: float  # maximum board power (TDP)
    source: str


ACCELERATORS = {
    "V100": Accelerator(
        "NVIDIA V100 SXM2",
        125e12,
        "FP16 tensor core",
        300,
        "NVIDIA V100 datasheet",
    ),
    "A100": Accelerator(
        "NVIDIA A100 SXM",
        312e12,
        "BF16/FP16 tensor core",
        400,
        "NVIDIA A100 datasheet",
    ),
    "H100": Accelerator(
        "NVIDIA H100 SXM",
        989e12,
        "BF16/FP16 tensor core",
        700,
        "NVIDIA H100 datasheet",
    ),
}


def training_seconds(
    flops: float,
    peak_flops: float,
    utilisation: float = 0.4,
    n_devices: int = 1,
) -> float:
    """Wall-clock seconds = flops / (n_devices x peak_flops x utilisation).

    ``utilisation`` (model FLOPs utilisation, MFU) is the fraction of the peak
    a real run achieves, in (0, 1]; large runs report roughly 0.3-0.5.
    """
    f = _check_positive("flops", flops)
    peak = _check_positive("peak_flops", peak_flops)
    u = _check_positive("utilisation", utilisation)
    if u > 1:
        raise ValueError(
            "utilisation is a fraction of the peak in (0, 1], got "
            f"{utilisation!r}; "
            "write 40% as 0.4"
        )
    check_positive_int("n_devices", n_devices)
    return f / (n_devices * peak * u)


def gpu_days(
    flops: float, accelerator: Accelerator, utilisation: float = 0.4
) -> float:
    """Device-days to do ``flops`` at ``utilisation``.

    One device running for one day is 1.
    """
    if not isinstance(accelerator, Accelerator):
        raise TypeError(
            "accelerator must be an Accelerator, e.g. ACCELERATORS['A100'], "
            f"got {accelerator!r}"
        )
    return (
        training_seconds(flops, accelerator.peak_flops, utilisation) / 86400
    )


def energy_kwh(device_hours: float, watts: float, pue: float = 1.1) -> float:
    """Energy in kWh = device_hours x watts x PUE / 1000.

    ``pue`` (power usage effectiveness >= 1) scales the devices' power to the
    whole data centre's (cooling, networking). An estimate: real boards draw
    less than their maximum.
    """
    hours = _check_positive("device_hours", device_hours, allow_zero=True)
    w = _check_positive("watts", watts)
    p = _check_positive("pue", pue)
    if p < 1:
        raise ValueError(
            "pue is total facility power / IT power, so it is >= 1, got "
            f"{pue!r}"
        )
    return hours * w * p / 1000


def activation_bytes(
    config: GPTConfig,
    batch_size: int,
    seq_len: int | None = None,
    bytes_per_value: int = 4,
) -> int:
    """Bytes of activations that one forward pass keeps for the backward pass.

    Per token and block (fused attention, dropout 0), for GPT-2's layout:
    LayerNorm inputs 2C, attention input C, Q/K/V 3C, attention output C, MLP
    input C, GELU input 4C and output 4C, plus the attention's log-sum-exp
    (n_head) and LayerNorm statistics (4): 16 C + n_head + 4 values. The
    options of today's models change four terms: Q/K/V is C + 2 kv (kv =
    n_kv_head x head size); rotary positions keep the rotated q and k too (C +
    kv); RMSNorm keeps its input, its statistic and the normalised vector
    before the weight (2C + 1 per norm); SwiGLU keeps the gate, its SiLU, the
    up projection and their product (4 H, H the hidden width; GELU: 2 H).
    After the blocks: ln_f input and lm_head input 2C (RMSNorm: 3C + 1), and
    the log-probabilities V. The written-out attention path would add the T
    x T weights, n_head T per token. Matches what PyTorch actually saves to
    within a few per cent (tested).
    """
    _check_config(config)
    T = config.block_size if seq_len is None else seq_len
    for name, value in (
        ("batch_size", batch_size),
        ("seq_len", T),
        ("bytes_per_value", bytes_per_value),
    ):
        check_positive_int(name, value)
    if T > config.block_size:
        raise ValueError(
            f"seq_len={T} exceeds block_size={config.block_size}; the model "
            "cannot see more"
        )
    C = config.n_embd
    kv = _kv_heads(config) * (C // config.n_head)
    hidden = _mlp_width(config)
    norm = 2 * C + 1 if config.norm_layer == "rmsnorm" else C + 2
    attention = C + (C + 2 * kv) + C + config.n_head  # in, qkv, out, lse
    if config.positions == "rotary":
        attention += C + kv  # the rotated q and k
    mlp = C + (4 * hidden if config.mlp == "swiglu" else 2 * hidden)
    final = norm - 2 + C if config.norm_layer == "layernorm" else norm + C
    per_token = (
        config.n_layer * (2 * norm + attention + mlp)
        + final
        + config.vocab_size
    )
    return batch_size * T * per_token * bytes_per_value


def training_memory(
    n_params: float, precision: str = "fp32", activations: float = 0.0
) -> dict:
    """Bytes to train with AdamW: weights, gradients, moments, activations.

    ``precision="fp32"``: 4 (weights) + 4 (gradients) + 8 (m and v) = 16 bytes
    per parameter. ``precision="mixed"`` (Rajbhandari et al. 2020, ZeRO): 2
    (16-bit weights) + 2 (16-bit gradients) + 12 (fp32 master weights, m and
    v) = 16 bytes per parameter as well: mixed precision saves time and
    activation memory, not optimizer memory. Returns a dict of bytes: weights,
    gradients, optimizer, activations, total.
    """
    n = _check_positive("n_params", n_params)
    a = _check_positive("activations", activations, allow_zero=True)
    layouts = {"fp32": (4, 4, 8), "mixed": (2, 2, 12)}
    if precision not in layouts:
        raise ValueError(
            f"precision must be one of {sorted(layouts)}, got {precision!r}"
        )
    w, g, o = (n * k for k in layouts[precision])
    return {
        "weights": w,
        "gradients": g,
        "optimizer": o,
        "activations": a,
        "total": w + g + o + a,
    }


@dataclass(frozen=True)
class PowerLawFit:
    """L(x) = a x^(-alpha) + c, fitted by :func:`fit_power_law`.

    ``rmse`` is in the units of L.
    """

    a: float
    alpha: float
    c: float
    rmse: float

    def __call__(self, x):
        return self.a * np.asarray(x, dtype=float) ** (-self.alpha) + self.c


def _linear_fit(
    x: np.ndarray, y: np.ndarray, alpha: float, offset: bool
) -> tuple[float, float, float]:
    """(a, c, sum of squares) of the least-squares fit for a fixed alpha.

    For a fixed alpha, L is linear in (a, c).
    """
    columns = [x ** (-alpha)] + ([np.ones_like(x)] if offset else [])
    design = np.stack(columns, axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = design @ coef - y
    return (
        float(coef[0]),
        float(coef[1]) if offset else 0.0,
        float(residual @ residual),
    )


def fit_power_law(
    x, y, offset: bool = True, alpha_max: float = 3.0
) -> PowerLawFit:
    """Least-squares fit of y = a x^(-alpha) + c, with NumPy only.

    ``offset=False`` fixes c = 0. For a fixed alpha the model is linear in (a,
    c), solved exactly by least squares; the one remaining number, alpha, is
    found by a grid over (0, alpha_max] refined by golden-section search
    ("variable projection"). x and y are 1-D, positive, of equal length, with
    at least 3 points (4 with an offset, so the fit is not exact by
    construction).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    need = 4 if offset else 3
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"x and y must be 1-D of the same length, got shapes {x.shape} "
            f"and {y.shape}"
        )
    if len(x) < need:
        raise ValueError(
            f"fitting a power law{' with an offset' if offset else ''} needs "
            f"at least {need} "
            f"points, got {len(x)}; add sizes or use offset=False"
        )
    if not (
        np.all(np.isfinite(x))
        and np.all(np.isfinite(y))
        and np.all(x > 0)
        and np.all(y > 0)
    ):
        raise ValueError(
            "x and y must be finite and > 0 (a power law of sizes and "
            f"losses), got x={x}, y={y}"
        )
    if len(np.unique(x)) < need:
        raise ValueError(
            f"x needs at least {need} distinct values, got "
            f"{len(np.unique(x))}"
        )
    # rescale x for conditioning; a is rescaled back below
    xs = x / np.exp(np.mean(np.log(x)))

    def sse(alpha: float) -> float:
        return _linear_fit(xs, y, alpha, offset)[2]

    grid = np.linspace(alpha_max / 400, alpha_max, 400)
    best = int(np.argmin([sse(g) for g in grid]))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):  # golden-section search on [lo, hi]
        m1, m2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if sse(m1) < sse(m2):
            hi = m2
        else:
            lo = m1
    alpha = (lo + hi) / 2
    a, c, s = _linear_fit(xs, y, alpha, offset)
    # a xs^-alpha = a scale^alpha x^-alpha
    a *= np.exp(np.mean(np.log(x))) ** alpha
    return PowerLawFit(
        a=float(a), alpha=float(alpha), c=float(c), rmse=math.sqrt(s / len(x))
    )
