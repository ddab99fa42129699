"""Converting minigpt's GPT to and from Hugging Face's models.

The GPT-2 layout (the default :class:`~minigpt.model.GPTConfig`) converts to
``GPT2LMHeadModel``, the Llama layout (:meth:`GPTConfig.llama
<minigpt.model.GPTConfig.llama>`) to ``LlamaForCausalLM``: :func:`to_hf`,
:func:`from_hf`, :func:`save_pretrained` and :func:`load_pretrained` choose
by the config or by the model's class. The Llama mapping is described at
:data:`LLAMA_NAMES`. minigpt's BERT-layout :class:`~minigpt.encoder.Encoder`
converts to ``BertForMaskedLM`` (or, with ``base=True``, the base
``BertModel`` with its pooler) by the names of :data:`BERT_NAMES`. The rest
of this docstring is about GPT-2.

The two share every parameter name
(``transformer.h.0.attn.c_attn.weight`` ...). One difference: GPT-2
implements its projections with ``Conv1D``, which stores a weight of shape
(in, out), while ``nn.Linear`` stores (out, in). So the weights of
``c_attn``, ``c_proj`` and ``c_fc`` are transposed on the way through; every
other tensor is copied as is. ``transformers`` is imported only when a
function here is called.

>>> import tempfile
>>> from minigpt.tokenizer import train_bpe
>>> text = "a small text to learn a few merges from. " * 20
>>> tokenizer = train_bpe(text, vocab_size=270)
>>> config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=16,
...                    n_layer=1, n_head=2, n_embd=8)
>>> gpt = GPT(config).eval()
>>> hf_model = to_hf(gpt, eot_id=tokenizer.eot_id)  # a GPT2LMHeadModel
>>> ids = torch.tensor([tokenizer.encode("a text")])
>>> torch.allclose(gpt(ids)[0], hf_model(ids).logits, atol=1e-5)
True

Both compute the same logits. :func:`save_pretrained` writes a folder that
``GPT2LMHeadModel.from_pretrained`` and ``AutoTokenizer.from_pretrained``
load, and minigpt reads it back:

>>> folder = Path(tempfile.mkdtemp()) / "my-gpt"
>>> folder = save_pretrained(gpt, tokenizer, folder)
>>> gpt_back, tokenizer_back = load_pretrained(folder)
>>> torch.equal(gpt_back.lm_head.weight, gpt.lm_head.weight)
True
>>> tokenizer_back.encode("a text") == ids[0].tolist()
True
"""

from pathlib import Path

import torch

from minigpt.align import CHAT_TEMPLATE, CHAT_TOKENS
from minigpt.common import atomic_path, seeded_rng
from minigpt.encoder import Encoder, EncoderConfig
from minigpt.model import GPT, GPTConfig
from minigpt.tokenizer import EOT, HFBPETokenizer

__all__ = [
    "CONV1D_SUFFIXES",
    "LLAMA_NAMES",
    "BERT_NAMES",
    "llama_config_from_hf",
    "bert_config_from_hf",
    "config_from_hf",
    "from_hf",
    "to_hf",
    "to_hf_tokenizer",
    "save_pretrained",
    "load_pretrained",
]

#: The weights HF stores as Conv1D (in, out), minigpt as nn.Linear (out, in).
CONV1D_SUFFIXES = (
    "attn.c_attn.weight",
    "attn.c_proj.weight",
    "mlp.c_fc.weight",
    "mlp.c_proj.weight",
)
# HF's names for the two GELUs of GPTConfig.gelu ("gelu_pytorch_tanh"
# computes the same tanh form)
HF_ACTIVATION = {"tanh": "gelu_new", "exact": "gelu"}
GELU_OF_HF = {
    "gelu_new": "tanh",
    "gelu_pytorch_tanh": "tanh",
    "gelu": "exact",
}


#: minigpt's name -> LlamaForCausalLM's, for every tensor but the fused
#: ``attn.c_attn``, whose rows are ``q_proj``, ``k_proj``, ``v_proj``
#: stacked (Q: n_embd rows, K and V: n_kv_head * head_dim each). In a
#: block ``h.{i}.`` stands for ``model.layers.{i}.``. Both rotate halves
#: (see :class:`minigpt.attention.RotaryEmbedding`), so no weight is
#: permuted.
LLAMA_NAMES = {
    "transformer.wte.weight": "model.embed_tokens.weight",
    "transformer.ln_f.weight": "model.norm.weight",
    "lm_head.weight": "lm_head.weight",
    "ln_1.weight": "input_layernorm.weight",
    "attn.c_proj.weight": "self_attn.o_proj.weight",
    "ln_2.weight": "post_attention_layernorm.weight",
    "mlp.c_gate.weight": "mlp.gate_proj.weight",
    "mlp.c_fc.weight": "mlp.up_proj.weight",
    "mlp.c_proj.weight": "mlp.down_proj.weight",
}
_QKV = ("q_proj", "k_proj", "v_proj")

#: minigpt's :class:`~minigpt.encoder.Encoder` name -> ``BertModel``'s
#: (``BertForMaskedLM`` puts ``bert.`` before the embeddings and layers),
#: for every tensor but the fused ``attn.c_attn``, whose rows are
#: ``attention.self.query``, ``key`` and ``value`` stacked. In a block
#: ``h.{i}.`` stands for ``encoder.layer.{i}.``. No weight is transposed.
BERT_NAMES = {
    "wte": "embeddings.word_embeddings",
    "wpe": "embeddings.position_embeddings",
    "wtt": "embeddings.token_type_embeddings",
    "ln_emb": "embeddings.LayerNorm",
    "attn.c_proj": "attention.output.dense",
    "ln_1": "attention.output.LayerNorm",
    "mlp.c_fc": "intermediate.dense",
    "mlp.c_proj": "output.dense",
    "ln_2": "output.LayerNorm",
    "pooler": "pooler.dense",
    "mlm_dense": "cls.predictions.transform.dense",
    "mlm_ln": "cls.predictions.transform.LayerNorm",
    "mlm_bias": "cls.predictions.bias",
}
_BERT_QKV = ("query", "key", "value")


def _is_conv1d(name: str) -> bool:
    return name.endswith(CONV1D_SUFFIXES)


def _check_hf_config(hf_config) -> None:
    """Raise ValueError for a GPT-2 option minigpt's GPT does not have."""
    n_inner = hf_config.n_inner
    problems = {
        "activation_function": (
            hf_config.activation_function in GELU_OF_HF,
            f"{hf_config.activation_function!r}, minigpt has the tanh GELU "
            "('gelu_new') "
            "and the exact one ('gelu')",
        ),
        "n_inner": (
            n_inner in (None, 4 * hf_config.n_embd),
            f"{n_inner}, minigpt's MLP is 4 * n_embd wide",
        ),
        "layer_norm_epsilon": (
            hf_config.layer_norm_epsilon == 1e-5,
            f"{hf_config.layer_norm_epsilon}, minigpt uses 1e-5",
        ),
        "scale_attn_weights": (
            hf_config.scale_attn_weights,
            "False, minigpt scales by 1/sqrt(head_dim)",
        ),
        "scale_attn_by_inverse_layer_idx": (
            not hf_config.scale_attn_by_inverse_layer_idx,
            "True, minigpt does not rescale by layer",
        ),
        "add_cross_attention": (
            not hf_config.add_cross_attention,
            "True, minigpt is decoder-only",
        ),
        "tie_word_embeddings": (
            getattr(hf_config, "tie_word_embeddings", True),
            "False, minigpt ties lm_head to wte",
        ),
    }
    bad = [f"{name}={why}" for name, (ok, why) in problems.items() if not ok]
    if bad:
        raise ValueError(
            "this GPT-2 configuration cannot be represented by minigpt's "
            "GPT: " + "; ".join(bad)
        )


def config_from_hf(hf_config, dropout: float = 0.0) -> GPTConfig:
    """The :class:`~minigpt.model.GPTConfig` of a ``transformers.GPT2Config``.

    ``dropout`` is the caller's choice.
    """
    _check_hf_config(hf_config)
    return GPTConfig(
        vocab_size=hf_config.vocab_size,
        block_size=hf_config.n_positions,
        n_layer=hf_config.n_layer,
        n_head=hf_config.n_head,
        n_embd=hf_config.n_embd,
        dropout=dropout,
        bias=True,
        norm="pre",
        gelu=GELU_OF_HF[hf_config.activation_function],
    )


def from_hf(model_or_path, dropout: float = 0.0) -> GPT | Encoder:
    """A minigpt GPT holding the weights of a ``GPT2LMHeadModel``.

    Or of a ``LlamaForCausalLM``, as a GPT of the Llama layout; or of a
    ``BertForMaskedLM`` or ``BertModel``, as an
    :class:`~minigpt.encoder.Encoder` (a head the HF class lacks, the pooler
    or the masked-LM head, keeps its initial weights).

    ``model_or_path`` is the model or a folder saved by one. ``dropout``
    defaults to 0 (inference); pass GPT-2's 0.1 to fine-tune with its recipe.
    The result is in eval mode.
    """
    from transformers import (
        AutoConfig,
        BertForMaskedLM,
        BertModel,
        GPT2LMHeadModel,
        LlamaForCausalLM,
    )

    if isinstance(model_or_path, (str, Path)):
        if not Path(model_or_path).is_dir():
            raise FileNotFoundError(
                f"no folder at {model_or_path!s}: pass a GPT2LMHeadModel or "
                "a folder written "
                "by save_pretrained (config.json + model.safetensors)"
            )
        hf_config = AutoConfig.from_pretrained(model_or_path)
        cls = {"llama": LlamaForCausalLM, "bert": BertForMaskedLM}.get(
            hf_config.model_type, GPT2LMHeadModel
        )
        if "BertModel" in (hf_config.architectures or []):
            cls = BertModel
        model_or_path = cls.from_pretrained(model_or_path)
    if isinstance(model_or_path, LlamaForCausalLM):
        return _from_hf_llama(model_or_path, dropout)
    if isinstance(model_or_path, (BertForMaskedLM, BertModel)):
        return _from_hf_bert(model_or_path, dropout)
    if not isinstance(model_or_path, GPT2LMHeadModel):
        raise TypeError(
            "from_hf needs a transformers.GPT2LMHeadModel, LlamaForCausalLM, "
            "BertForMaskedLM, BertModel or a folder path, "
            f"got {type(model_or_path).__name__}"
        )
    # the weights are replaced below: leave the caller's random state alone
    with seeded_rng():
        gpt = GPT(config_from_hf(model_or_path.config, dropout))
    hf_state = model_or_path.state_dict()
    state = {}
    for name in gpt.state_dict():
        if name not in hf_state:
            raise KeyError(
                f"GPT-2 state dict has no {name!r}; is this a "
                "GPT2LMHeadModel?"
            )
        tensor = hf_state[name]
        state[name] = tensor.t() if _is_conv1d(name) else tensor
    gpt.load_state_dict(state)
    return gpt.eval()


def _check_eot_id(config: GPTConfig, eot_id) -> int:
    eot_id = config.vocab_size - 1 if eot_id is None else eot_id
    if (
        isinstance(eot_id, bool)
        or not isinstance(eot_id, int)
        or not 0 <= eot_id < config.vocab_size
    ):
        raise ValueError(
            f"eot_id must be a token id in 0..{config.vocab_size - 1}, got "
            f"{eot_id!r}: "
            "pass tokenizer.eot_id"
        )
    return eot_id


def _is_llama_layout(config: GPTConfig) -> bool:
    """Whether ``config`` asks for Llama (rotary, RMSNorm, SwiGLU)."""
    return (
        config.positions == "rotary"
        or config.norm_layer == "rmsnorm"
        or config.mlp == "swiglu"
    )


def _check_gpt2_layout(config: GPTConfig) -> None:
    """Raise ValueError for an option GPT2LMHeadModel does not have."""
    problems = {
        "n_kv_head": config.n_kv_head in (None, config.n_head),
        "tie_embeddings": config.tie_embeddings,
        "norm_eps": config.norm_eps == 1e-5,
        "intermediate_size": config.intermediate_size
        in (None, 4 * config.n_embd),
    }
    bad = [name for name, ok in problems.items() if not ok]
    if bad:
        raise ValueError(
            "GPT2LMHeadModel has multi-head attention, tied embeddings, "
            "LayerNorm eps 1e-5 and a 4 * n_embd MLP; this GPT has "
            + ", ".join(f"{name}={getattr(config, name)!r}" for name in bad)
            + ". Use the default GPTConfig, or GPTConfig.llama for a "
            "LlamaForCausalLM"
        )


def _check_llama_layout(config: GPTConfig) -> None:
    """Raise ValueError unless ``config`` is all of Llama's layout."""
    wanted = {
        "positions": "rotary",
        "norm_layer": "rmsnorm",
        "mlp": "swiglu",
        "bias": False,
        "norm": "pre",
    }
    bad = {k: v for k, v in wanted.items() if getattr(config, k) != v}
    if bad:
        raise ValueError(
            "LlamaForCausalLM needs "
            + ", ".join(f"{k}={v!r}" for k, v in bad.items())
            + "; this GPT has "
            + ", ".join(f"{k}={getattr(config, k)!r}" for k in bad)
            + ". Build the config with GPTConfig.llama(...)"
        )


def _llama_hf_name(name: str) -> str:
    """LlamaForCausalLM's name for minigpt's tensor ``name``."""
    if name in LLAMA_NAMES:
        return LLAMA_NAMES[name]
    _, _, i, rest = name.split(".", 3)  # transformer.h.{i}.rest
    return f"model.layers.{i}.{LLAMA_NAMES[rest]}"


def _to_hf_llama(gpt: GPT, eot_id: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = gpt.config
    _check_llama_layout(config)
    head_dim = config.n_embd // config.n_head
    n_kv_head = config.n_kv_head or config.n_head
    hf_config = LlamaConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.n_embd,
        intermediate_size=gpt.transformer.h[0].mlp.c_fc.out_features,
        num_hidden_layers=config.n_layer,
        num_attention_heads=config.n_head,
        num_key_value_heads=n_kv_head,
        head_dim=head_dim,
        max_position_embeddings=config.block_size,
        rms_norm_eps=config.norm_eps,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": config.rope_theta,
        },
        attention_bias=False,
        mlp_bias=False,
        hidden_act="silu",
        attention_dropout=config.dropout,
        tie_word_embeddings=config.tie_embeddings,
        bos_token_id=eot_id,
        eos_token_id=eot_id,
    )
    hf_model = LlamaForCausalLM(hf_config)
    state = {}
    sizes = [config.n_embd, n_kv_head * head_dim, n_kv_head * head_dim]
    for name, tensor in gpt.state_dict().items():
        if name == "lm_head.weight" and config.tie_embeddings:
            continue
        if name.endswith("attn.c_attn.weight"):
            layer = name.split(".")[2]
            for part, t in zip(_QKV, tensor.split(sizes)):
                state[f"model.layers.{layer}.self_attn.{part}.weight"] = t
        else:
            state[_llama_hf_name(name)] = tensor
    missing, unexpected = hf_model.load_state_dict(state, strict=False)
    missing = [
        name
        for name in missing
        if not (name == "lm_head.weight" and config.tie_embeddings)
    ]
    if missing or unexpected:
        raise RuntimeError(
            f"weight names did not line up: missing {missing}, unexpected "
            f"{unexpected}"
        )
    if config.tie_embeddings:
        hf_model.tie_weights()
    return hf_model.to(gpt.transformer.wte.weight.device).eval()


def llama_config_from_hf(hf_config, dropout: float = 0.0) -> GPTConfig:
    """The :class:`~minigpt.model.GPTConfig` of a ``LlamaConfig``.

    Raises ValueError for an option minigpt does not have (biases, another
    activation, RoPE scaling, a head size other than hidden / heads).
    """
    rope = dict(getattr(hf_config, "rope_parameters", None) or {})
    head_dim = getattr(hf_config, "head_dim", None)
    per_head = hf_config.hidden_size // hf_config.num_attention_heads
    problems = {
        "hidden_act": (
            hf_config.hidden_act == "silu",
            f"{hf_config.hidden_act!r}, minigpt's SwiGLU uses 'silu'",
        ),
        "attention_bias": (
            not hf_config.attention_bias,
            "True, minigpt's Llama layout has no biases",
        ),
        "mlp_bias": (
            not getattr(hf_config, "mlp_bias", False),
            "True, minigpt's Llama layout has no biases",
        ),
        "rope_type": (
            rope.get("rope_type", "default") == "default",
            f"{rope.get('rope_type')!r}, minigpt has the plain RoPE "
            "('default') without scaling",
        ),
        "head_dim": (
            head_dim in (None, per_head),
            f"{head_dim}, minigpt's heads are hidden_size // "
            f"num_attention_heads = {per_head} wide",
        ),
    }
    bad = [f"{name}={why}" for name, (ok, why) in problems.items() if not ok]
    if bad:
        raise ValueError(
            "this Llama configuration cannot be represented by minigpt's "
            "GPT: " + "; ".join(bad)
        )
    return GPTConfig.llama(
        vocab_size=hf_config.vocab_size,
        block_size=hf_config.max_position_embeddings,
        n_layer=hf_config.num_hidden_layers,
        n_head=hf_config.num_attention_heads,
        n_embd=hf_config.hidden_size,
        # None: as many as query heads, the default's spelling
        n_kv_head=(
            None
            if hf_config.num_key_value_heads == hf_config.num_attention_heads
            else hf_config.num_key_value_heads
        ),
        intermediate_size=hf_config.intermediate_size,
        rope_theta=rope.get("rope_theta", 10000.0),
        norm_eps=hf_config.rms_norm_eps,
        tie_embeddings=bool(hf_config.tie_word_embeddings),
        dropout=dropout,
    )


def _from_hf_llama(hf_model, dropout: float) -> GPT:
    with seeded_rng():
        gpt = GPT(llama_config_from_hf(hf_model.config, dropout))
    hf_state = hf_model.state_dict()
    state = {}
    for name in gpt.state_dict():
        if name.endswith("attn.c_attn.weight"):
            layer = name.split(".")[2]
            prefix = f"model.layers.{layer}.self_attn."
            state[name] = torch.cat(
                [hf_state[f"{prefix}{part}.weight"] for part in _QKV]
            )
        else:
            state[name] = hf_state[_llama_hf_name(name)]
    gpt.load_state_dict(state)
    return gpt.eval()


def to_hf(gpt: GPT | Encoder, eot_id: int | None = None, base: bool = False):
    """``gpt`` as a ``transformers.GPT2LMHeadModel``, in eval mode.

    An :class:`~minigpt.encoder.Encoder` becomes a ``BertForMaskedLM``, or
    with ``base=True`` a ``BertModel`` (hidden states and pooler); ``eot_id``
    is for GPTs only.

    A GPT of the Llama layout (:meth:`GPTConfig.llama
    <minigpt.model.GPTConfig.llama>`) becomes a ``LlamaForCausalLM``
    instead, with the names of :data:`LLAMA_NAMES` and ``c_attn`` split into
    ``q_proj``, ``k_proj``, ``v_proj``.

    GPT-2's blocks are pre-LN (``norm="pre"``); a GPT without biases
    (``bias=False``) converts with every bias set to zero, which computes the
    same function. ``eot_id`` is the end-of-text token, which the HF config
    records as its begin/end-of-text id and which ``generate`` stops at and
    pads with; by default the last id (GPT-2's own 50256 for its vocabulary).
    Pass your tokenizer's (``tokenizer.eot_id``) or let
    :func:`save_pretrained` do it.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    if isinstance(gpt, Encoder):
        return _to_hf_bert(gpt, base)
    config = gpt.config
    eot_id = _check_eot_id(config, eot_id)
    if _is_llama_layout(config):
        return _to_hf_llama(gpt, eot_id)
    if config.norm != "pre":
        raise ValueError(
            f"GPT-2's blocks are pre-LN; this GPT has norm={config.norm!r}. "
            "Only GPTConfig(norm='pre') converts to GPT2LMHeadModel"
        )
    _check_gpt2_layout(config)
    hf_config = GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.block_size,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        activation_function=HF_ACTIVATION[config.gelu],
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        layer_norm_epsilon=1e-5,
        bos_token_id=eot_id,
        eos_token_id=eot_id,
        tie_word_embeddings=True,
    )
    hf_model = GPT2LMHeadModel(hf_config)
    state = {
        name: (t.t() if _is_conv1d(name) else t)
        for name, t in gpt.state_dict().items()
    }
    if not config.bias:  # the same function: every bias zero
        state |= {
            name: torch.zeros_like(t)
            for name, t in hf_model.state_dict().items()
            if name.endswith(".bias") and name not in state
        }
    missing, unexpected = hf_model.load_state_dict(state, strict=False)
    # lm_head.weight is tied to wte, which fills it
    missing = [name for name in missing if name != "lm_head.weight"]
    if missing or unexpected:
        raise RuntimeError(
            f"weight names did not line up: missing {missing}, unexpected "
            f"{unexpected}"
        )
    hf_model.tie_weights()
    return hf_model.to(gpt.transformer.wte.weight.device).eval()


def to_hf_tokenizer(
    tokenizer: HFBPETokenizer, model_max_length: int | None = None
):
    """``tokenizer`` as a ``transformers.GPT2TokenizerFast``.

    Like GPT-2's own tokenizer, it has ``"<|endoftext|>"`` as its begin, end
    and unknown token, and it encodes and decodes every text exactly as
    ``tokenizer`` does. ``model_max_length``: the model's context
    (block_size).

    Only byte-level BPE converts (:func:`minigpt.tokenizer.train_bpe`'s
    tokenizers): GPT-2's tokenizer class is byte-level BPE. A tokenizer with
    :data:`minigpt.align.CHAT_TOKENS` gets :data:`minigpt.align.CHAT_TEMPLATE`
    as its ``chat_template``, so ``apply_chat_template`` gives the ids of
    :func:`minigpt.align.format_chat`.
    """
    from transformers import GPT2TokenizerFast

    if not isinstance(tokenizer, HFBPETokenizer):
        raise TypeError(
            "only a byte-level BPE tokenizer from "
            "minigpt.tokenizer.train_bpe converts to GPT-2's "
            f"tokenizer, got {type(tokenizer).__name__}; train one with "
            "train_bpe(text, vocab_size)"
        )
    extra = (
        {}
        if model_max_length is None
        else {"model_max_length": model_max_length}
    )
    hf_tokenizer = GPT2TokenizerFast(
        tokenizer_object=tokenizer.tokenizer,
        bos_token=EOT,
        eos_token=EOT,
        unk_token=EOT,
        **extra,
    )
    if set(CHAT_TOKENS) <= set(tokenizer.special_tokens):
        hf_tokenizer.chat_template = CHAT_TEMPLATE
    return hf_tokenizer


def save_pretrained(gpt: GPT, tokenizer: HFBPETokenizer, path) -> Path:
    """Write ``gpt`` and ``tokenizer`` as a folder that Hugging Face loads.

    Like a hub model, the folder ``path`` holds::

        config.json, generation_config.json, model.safetensors
            read by GPT2LMHeadModel.from_pretrained(path)
        tokenizer.json, tokenizer_config.json
            read by AutoTokenizer.from_pretrained(path)

    ``pipeline("text-generation", model=path)`` then works too. The
    end-of-text id of the model config is the tokenizer's ``eot_id``.

    The folder is written beside ``path`` under a temporary name and then
    moved into place (:func:`minigpt.common.atomic_path`), so a crash
    mid-save leaves the previous folder intact rather than half a new one. An
    existing folder is replaced only when it holds nothing but files that
    this save writes too; other files there are never deleted.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(
            f"{path} is a file; save_pretrained writes a folder: pass a "
            "folder path"
        )
    # check the tokenizer's type before any file is written
    if not isinstance(tokenizer, HFBPETokenizer):
        to_hf_tokenizer(tokenizer)
    if tokenizer.vocab_size > gpt.config.vocab_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocab_size} tokens but the model "
            f"only {gpt.config.vocab_size} embeddings: save the tokenizer "
            "the model was trained with"
        )
    hf_model = to_hf(gpt, eot_id=tokenizer.eot_id)
    # GPT-2 has no padding token; pad with end-of-text
    hf_model.generation_config.pad_token_id = tokenizer.eot_id
    with atomic_path(path) as tmp:
        hf_model.save_pretrained(tmp)  # safetensors weights, never a pickle
        to_hf_tokenizer(tokenizer, gpt.config.block_size).save_pretrained(tmp)
        _check_replaceable(path, tmp)
    return path


def _check_replaceable(path: Path, new: Path) -> None:
    """Refuse to replace a folder ``path`` holding files ``new`` lacks."""
    if not path.is_dir():
        return
    others = sorted(
        {p.name for p in path.iterdir()} - {p.name for p in new.iterdir()}
    )
    if others:
        raise FileExistsError(
            f"{path} holds files save_pretrained does not write "
            f"({', '.join(others)}); replacing the folder would delete them: "
            "move them out or choose a new folder"
        )


def load_pretrained(path) -> tuple[GPT, HFBPETokenizer]:
    """Read a folder of :func:`save_pretrained` as ``(GPT, tokenizer)``.

    Any GPT-2 folder that has a ``tokenizer.json`` reads too.
    """
    path = Path(path)
    if not (path / "tokenizer.json").is_file():
        raise FileNotFoundError(
            f"no tokenizer.json in {path}: load_pretrained reads folders "
            "written by "
            "minigpt.hf.save_pretrained; for weights alone use from_hf(path)"
        )
    return from_hf(path), HFBPETokenizer.load(path / "tokenizer.json")


def bert_config_from_hf(hf_config, dropout: float = 0.0) -> EncoderConfig:
    """The :class:`~minigpt.encoder.EncoderConfig` of a ``BertConfig``.

    Raises ValueError for an option minigpt's encoder does not have.
    """
    problems = {
        "hidden_act": (hf_config.hidden_act == "gelu", "the erf GELU"),
        "position_embedding_type": (
            getattr(hf_config, "position_embedding_type", "absolute")
            == "absolute",
            "a learned position table",
        ),
        "is_decoder": (not hf_config.is_decoder, "an encoder"),
    }
    for name, (ok, what) in problems.items():
        if not ok:
            raise ValueError(
                f"BertConfig.{name}={getattr(hf_config, name)!r}: minigpt's "
                f"encoder has {what} only"
            )
    return EncoderConfig(
        vocab_size=hf_config.vocab_size,
        block_size=hf_config.max_position_embeddings,
        n_layer=hf_config.num_hidden_layers,
        n_head=hf_config.num_attention_heads,
        n_embd=hf_config.hidden_size,
        intermediate_size=hf_config.intermediate_size,
        type_vocab_size=hf_config.type_vocab_size,
        dropout=dropout,
        norm_eps=hf_config.layer_norm_eps,
    )


def _bert_hf_name(name: str, prefix: str) -> str:
    """``Encoder`` state-dict name -> the BERT one (see BERT_NAMES)."""
    module, _, kind = name.rpartition(".")
    if not module:  # mlm_bias
        return BERT_NAMES[kind]
    if module.startswith("h."):
        _, layer, inner = module.split(".", 2)
        return f"{prefix}encoder.layer.{layer}.{BERT_NAMES[inner]}.{kind}"
    hf = BERT_NAMES[module]
    return f"{hf}.{kind}" if hf.startswith("cls.") else f"{prefix}{hf}.{kind}"


def _bert_pieces(encoder: Encoder, prefix: str, names) -> dict:
    """The encoder's tensors under BERT's names, for the HF names in
    ``names`` (a model's state dict keys)."""
    state = {}
    for name, tensor in encoder.state_dict().items():
        if name.endswith(("attn.c_attn.weight", "attn.c_attn.bias")):
            layer, kind = name.split(".")[1], name.rsplit(".", 1)[1]
            base = f"{prefix}encoder.layer.{layer}.attention.self."
            for part, piece in zip(_BERT_QKV, tensor.chunk(3)):
                state[f"{base}{part}.{kind}"] = piece
            continue
        hf_name = _bert_hf_name(name, prefix)
        if hf_name in names:
            state[hf_name] = tensor
    return state


def _from_hf_bert(hf_model, dropout: float) -> Encoder:
    from transformers import BertForMaskedLM

    prefix = "bert." if isinstance(hf_model, BertForMaskedLM) else ""
    with seeded_rng():  # the weights are replaced below
        encoder = Encoder(bert_config_from_hf(hf_model.config, dropout))
    hf_state = hf_model.state_dict()
    state = encoder.state_dict()
    for name in state:
        if name.endswith(("attn.c_attn.weight", "attn.c_attn.bias")):
            layer, kind = name.split(".")[1], name.rsplit(".", 1)[1]
            base = f"{prefix}encoder.layer.{layer}.attention.self."
            state[name] = torch.cat(
                [hf_state[f"{base}{part}.{kind}"] for part in _BERT_QKV]
            )
        elif _bert_hf_name(name, prefix) in hf_state:
            state[name] = hf_state[_bert_hf_name(name, prefix)]
        # else: a head this class lacks (the pooler of BertForMaskedLM,
        # the masked-LM head of BertModel) keeps its initial weights
    encoder.load_state_dict(state)
    return encoder.eval()


def _to_hf_bert(encoder: Encoder, base: bool):
    from transformers import BertConfig, BertForMaskedLM, BertModel

    config = encoder.config
    hf_config = BertConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.n_embd,
        num_hidden_layers=config.n_layer,
        num_attention_heads=config.n_head,
        intermediate_size=config.intermediate_size or 4 * config.n_embd,
        hidden_act="gelu",
        hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=config.dropout,
        max_position_embeddings=config.block_size,
        type_vocab_size=config.type_vocab_size,
        layer_norm_eps=config.norm_eps,
    )
    hf_model = BertModel(hf_config) if base else BertForMaskedLM(hf_config)
    prefix = "" if base else "bert."
    names = set(hf_model.state_dict())
    state = _bert_pieces(encoder, prefix, names)
    if not base:  # the decoder shares wte and the bias
        state["cls.predictions.decoder.weight"] = state[
            f"{prefix}embeddings.word_embeddings.weight"
        ]
        state["cls.predictions.decoder.bias"] = state["cls.predictions.bias"]
    missing, unexpected = hf_model.load_state_dict(state, strict=False)
    missing = [n for n in missing if not n.endswith("position_ids")]
    if missing or unexpected:
        raise RuntimeError(
            f"weight names did not line up: missing {missing}, unexpected "
            f"{unexpected}"
        )
    return hf_model.to(encoder.wte.weight.device).eval()
