"""The chapters' checkers accept a right answer and reject plausible wrong
ones: a checker that cannot fail would pass every reader."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from minigpt import exercises as ex
from minigpt.align import dpo_loss
from minigpt.scaling import training_memory


def passes(checker, fn):
    return checker(fn, verbose=False).ok


# --- scale arithmetic ---


def test_doubling_time():
    assert passes(ex.check_doubling_time, lambda s: 12 * math.log10(2) / s)
    # natural log instead of log10; years instead of months
    assert not passes(ex.check_doubling_time, lambda s: 12 * math.log(2) / s)
    assert not passes(ex.check_doubling_time, lambda s: math.log10(2) / s)


def test_device_days():
    def days(n, d, peak, u):
        return 6 * n * d / (peak * u) / 86400

    assert passes(ex.check_device_days, days)
    assert not passes(
        ex.check_device_days, lambda n, d, p, u: 2 * n * d / (p * u) / 86400
    )
    assert not passes(
        ex.check_device_days, lambda n, d, p, u: 6 * n * d / p / 86400
    )
    assert not passes(
        ex.check_device_days, lambda n, d, p, u: 6 * n * d / (p * u) / 3600
    )


def test_lora_memory():
    assert passes(ex.check_lora_memory, lambda n, f: 2 * n + 16 * n * f)
    # everything trained; frozen weights in fp32; adapter forgotten
    assert not passes(
        ex.check_lora_memory,
        lambda n, f: training_memory(n, "mixed")["total"],
    )
    assert not passes(ex.check_lora_memory, lambda n, f: 4 * n + 16 * n * f)
    assert not passes(ex.check_lora_memory, lambda n, f: 2 * n)


def test_compute_optimal():
    def optimal(c):
        n = (c / 120) ** 0.5
        return n, 20 * n

    assert passes(ex.check_compute_optimal, optimal)
    assert not passes(ex.check_compute_optimal, lambda c: optimal(c)[::-1])
    # the 6 of 6ND forgotten
    assert not passes(
        ex.check_compute_optimal,
        lambda c: ((c / 20) ** 0.5, 20 * (c / 20) ** 0.5),
    )


def test_tokens_per_day():
    assert passes(ex.check_tokens_per_day, lambda s, n: s * 86400 / (6 * n))
    assert not passes(
        ex.check_tokens_per_day, lambda s, n: s * 86400 / (2 * n)
    )
    assert not passes(ex.check_tokens_per_day, lambda s, n: s / (6 * n))


def test_patches():
    def to_patches(image, p):
        H, W, C = image.shape
        return (
            image.reshape(H // p, p, W // p, p, C)
            .transpose(0, 2, 1, 3, 4)
            .reshape(-1, p * p * C)
        )

    assert passes(ex.check_patches, to_patches)
    # no transpose: rows of pixels, not squares
    assert not passes(
        ex.check_patches, lambda im, p: im.reshape(-1, p * p * im.shape[2])
    )
    # column-major order of the patches
    assert not passes(
        ex.check_patches, lambda im, p: to_patches(im.transpose(1, 0, 2), p)
    )


# --- attention ---


def test_shift_matrix():
    def shift(T, offset):
        W = torch.zeros(T, T)
        W[offset:, : T - offset] = torch.eye(T - offset)
        return W

    assert passes(ex.check_shift_matrix, shift)
    assert not passes(ex.check_shift_matrix, lambda T, o: shift(T, o).T)
    assert not passes(
        ex.check_shift_matrix,
        lambda T, o: shift(T, o + 1) if o + 1 < T else shift(T, o),
    )


def _to_torch(layer, transpose_out=False, bias=True):
    theirs = torch.nn.MultiheadAttention(
        layer.n_embd, layer.n_head, batch_first=True
    )
    with torch.no_grad():
        theirs.in_proj_weight.copy_(layer.c_attn.weight)
        out = layer.c_proj.weight
        theirs.out_proj.weight.copy_(out.T if transpose_out else out)
        if bias:
            theirs.in_proj_bias.copy_(layer.c_attn.bias)
            theirs.out_proj.bias.copy_(layer.c_proj.bias)
    return theirs


def test_to_torch_mha():
    assert passes(ex.check_to_torch_mha, _to_torch)
    assert not passes(ex.check_to_torch_mha, lambda m: _to_torch(m, True))
    assert not passes(ex.check_to_torch_mha, lambda m: _to_torch(m, bias=0))
    assert not passes(ex.check_to_torch_mha, lambda m: m)


def test_attention_cost():
    def cost(d, h, T):
        return 4 * d * d + 4 * d, 8 * T * d * d + 4 * T * T * d

    assert passes(ex.check_attention_cost, cost)
    # output projection forgotten; biases forgotten
    assert not passes(
        ex.check_attention_cost,
        lambda d, h, T: (4 * d * d + 4 * d, 6 * T * d * d + 4 * T * T * d),
    )
    assert not passes(
        ex.check_attention_cost, lambda d, h, T: (4 * d * d, cost(d, h, T)[1])
    )


def test_lora_count():
    def count(config, r, n_classes):
        C, L = config.n_embd, config.n_layer
        per_block = 4 * C + 2 * C + 5 * C + 5 * C
        return r * per_block * L + C * n_classes + n_classes

    assert passes(ex.check_lora_count, count)
    # head bias forgotten; MLP's c_proj forgotten
    assert not passes(ex.check_lora_count, lambda c, r, k: count(c, r, k) - k)
    assert not passes(
        ex.check_lora_count,
        lambda c, r, k: count(c, r, k) - r * 5 * c.n_embd * c.n_layer,
    )


@pytest.mark.parametrize(
    "name", [n for n in ex.__all__ if n.startswith("check_")]
)
def test_every_checker_rejects_a_function_that_raises(name):
    def broken(*args):
        raise RuntimeError("not written yet")

    assert not getattr(ex, name)(broken, verbose=False).ok


def _head_off(layer, head, in_place=False, rows=False):
    d = layer.head_dim
    new = layer if in_place else copy.deepcopy(layer)
    with torch.no_grad():
        if rows:  # W_O's columns by mistake: an output block, not a head
            new.c_proj.weight[head * d : (head + 1) * d] = 0
        else:
            new.c_proj.weight[:, head * d : (head + 1) * d] = 0
    return new


def test_head_off():
    assert passes(ex.check_head_off, _head_off)
    assert not passes(ex.check_head_off, lambda m, h: _head_off(m, h, True))
    assert not passes(ex.check_head_off, lambda m, h: _head_off(m, h, rows=1))


def test_distinct_ngrams():
    def distinct(text, n):
        grams = [text[i : i + n] for i in range(len(text) - n + 1)]
        return len(set(grams)) / len(grams)

    assert passes(ex.check_distinct_ngrams, distinct)
    # off by one: divides by the number of characters
    assert not passes(
        ex.check_distinct_ngrams,
        lambda t, n: (
            len({t[i : i + n] for i in range(len(t) - n + 1)}) / len(t)
        ),
    )

    # non-overlapping chunks
    def chunks(t, n):
        grams = [t[i : i + n] for i in range(0, len(t) - n + 1, n)]
        return len(set(grams)) / len(grams)

    assert not passes(ex.check_distinct_ngrams, chunks)


def test_generation_speed():
    assert passes(
        ex.check_generation_speed, lambda n, s: (n / s, 1e3 * s / n)
    )
    # milliseconds of the whole run, not per token
    assert not passes(
        ex.check_generation_speed, lambda n, s: (n / s, 1e3 * s)
    )
    assert not passes(
        ex.check_generation_speed, lambda n, s: (s / n, 1e3 * s / n)
    )


def test_equivariance():
    def equivariant(layer, x, perm):
        return torch.allclose(layer(x[:, perm]), layer(x)[:, perm], atol=1e-5)

    assert passes(ex.check_equivariance, equivariant)
    # the inverse permutation on the output; the batch axis
    assert not passes(
        ex.check_equivariance,
        lambda f, x, p: torch.allclose(
            f(x[:, p]), f(x)[:, p.argsort()], atol=1e-5
        ),
    )
    assert not passes(
        ex.check_equivariance,
        lambda f, x, p: torch.allclose(f(x[p]), f(x)[p], atol=1e-5),
    )
    # a sequence-level summary that ignores order cannot tell either
    assert not passes(
        ex.check_equivariance,
        lambda f, x, p: torch.allclose(
            f(x[:, p]).sum(1), f(x).sum(1), atol=1e-5
        ),
    )


# --- From GPT-2 to today's models ---


def _rope(x, start, theta, interleaved=False, offset=0):
    from minigpt.attention import RotaryEmbedding

    if interleaved:  # pairs (2j, 2j + 1): Meta's convention, not HF's
        d = x.shape[-1]
        order = torch.cat((torch.arange(0, d, 2), torch.arange(1, d, 2)))
        back = torch.argsort(order)
        rotated = RotaryEmbedding(d, theta)(x[..., order], start)
        return rotated[..., back]
    return RotaryEmbedding(x.shape[-1], theta)(x, start + offset)


def test_apply_rope():
    assert passes(ex.check_apply_rope, _rope)
    # the start ignored; Meta's interleaved pairs; theta fixed at 10000
    assert not passes(ex.check_apply_rope, lambda x, s, t: _rope(x, 0, t))
    assert not passes(
        ex.check_apply_rope, lambda x, s, t: _rope(x, s, t, interleaved=True)
    )
    assert not passes(
        ex.check_apply_rope, lambda x, s, t: _rope(x, s, 10000.0)
    )
    assert not passes(
        ex.check_apply_rope, lambda x, s, t: _rope(x, s, t, offset=1)
    )


def test_rms_norm():
    def rms_norm(x, weight, eps):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight

    assert passes(ex.check_rms_norm, rms_norm)

    def layer_norm(x, weight, eps):
        return torch.nn.functional.layer_norm(
            x, (x.shape[-1],), weight, None, eps
        )

    assert not passes(ex.check_rms_norm, layer_norm)
    # eps outside the square root; the weight forgotten
    assert not passes(
        ex.check_rms_norm,
        lambda x, w, e: x / (x.pow(2).mean(-1, keepdim=True).sqrt() + e) * w,
    )
    assert not passes(ex.check_rms_norm, lambda x, w, e: rms_norm(x, 1, e))


def test_grouped_query_attention():
    import torch.nn.functional as F

    def gqa(q, k, v, interleave=False):
        group = q.shape[1] // k.shape[1]
        if interleave:  # head i -> kv head i % n_kv_head: the wrong groups
            k, v = k.repeat(1, group, 1, 1), v.repeat(1, group, 1, 1)
        else:
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    assert passes(ex.check_grouped_query_attention, gqa)
    assert not passes(
        ex.check_grouped_query_attention,
        lambda q, k, v: gqa(q, k, v, interleave=True),
    )

    def no_mask(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)

    assert not passes(ex.check_grouped_query_attention, no_mask)


def test_answer_attention():
    from minigpt.interp import attention_to
    from minigpt.tasks.incontext import answer_positions

    def package_route(weights, ids, shift=0):
        last = torch.full((len(ids), 1), ids.shape[1] - 1)
        keys = answer_positions(ids)[:, None] + shift
        return attention_to([weights], last, keys)[0]

    assert passes(ex.check_answer_attention, package_route)
    # the matching key instead of the value after it; the first prompt's
    # answer position for every prompt
    assert not passes(
        ex.check_answer_attention, lambda w, i: package_route(w, i, -1)
    )
    assert not passes(
        ex.check_answer_attention,
        lambda w, i: package_route(w, i[:1].expand_as(i).contiguous()),
    )


def test_mask_tokens():
    from minigpt.encoder import mask_tokens

    def package(ids, mask_id, vocab_size, generator, special_ids):
        return mask_tokens(
            ids, mask_id, vocab_size, generator, special_ids=special_ids
        )

    assert passes(ex.check_mask_tokens, package)

    def all_masked(ids, mask_id, vocab_size, generator, special_ids):
        # no 10 % random, no 10 % kept
        inputs, targets = package(
            ids, mask_id, vocab_size, generator, special_ids
        )
        return inputs.masked_fill(targets != -1, mask_id), targets

    assert not passes(ex.check_mask_tokens, all_masked)

    def specials_too(ids, mask_id, vocab_size, generator, special_ids):
        return package(ids, mask_id, vocab_size, generator, ())

    assert not passes(ex.check_mask_tokens, specials_too)

    def own_random(ids, mask_id, vocab_size, generator, special_ids):
        return package(ids, mask_id, vocab_size, None, special_ids)

    assert not passes(ex.check_mask_tokens, own_random)

    def rate_20(ids, mask_id, vocab_size, generator, special_ids):
        return mask_tokens(
            ids, mask_id, vocab_size, generator, 0.2, special_ids
        )

    assert not passes(ex.check_mask_tokens, rate_20)


def test_encoder_param_count():
    from minigpt.scaling import encoder_param_count

    assert passes(
        ex.check_encoder_param_count,
        lambda c: encoder_param_count(c, mlm_head=False),
    )
    # with the masked-LM head; without the pooler
    assert not passes(ex.check_encoder_param_count, encoder_param_count)
    assert not passes(
        ex.check_encoder_param_count,
        lambda c: (
            encoder_param_count(c, mlm_head=False) - c.n_embd * (c.n_embd + 1)
        ),
    )


# --- from language model to assistant ---


def test_dpo_loss_checker():
    def mine(pc, pr, rc, rr, beta):
        return -F.logsigmoid(beta * ((pc - rc) - (pr - rr))).mean()

    assert passes(ex.check_dpo_loss, mine)
    # the library's own loss passes too
    assert passes(ex.check_dpo_loss, lambda *a: dpo_loss(*a)[0])
    # beta forgotten; chosen and rejected mixed up; sum for mean
    assert not passes(
        ex.check_dpo_loss, lambda pc, pr, rc, rr, b: mine(pc, pr, rc, rr, 1.0)
    )
    assert not passes(
        ex.check_dpo_loss, lambda pc, pr, rc, rr, b: mine(pr, pc, rr, rc, b)
    )
    assert not passes(
        ex.check_dpo_loss,
        lambda pc, pr, rc, rr, b: mine(pc, pr, rc, rr, b) * len(pc),
    )


def test_group_advantages_checker():
    def mine(rewards):
        mean = rewards.mean(1, keepdim=True)
        return (rewards - mean) / (rewards.std(1, keepdim=True) + 1e-6)

    assert passes(ex.check_group_advantages, mine)
    # the whole batch as one group; the biased spread; no eps (NaN on ties)
    assert not passes(
        ex.check_group_advantages,
        lambda r: (r - r.mean()) / (r.std() + 1e-6),
    )
    assert not passes(
        ex.check_group_advantages,
        lambda r: (
            (r - r.mean(1, keepdim=True))
            / (r.std(1, keepdim=True, unbiased=False) + 1e-6)
        ),
    )
    assert not passes(
        ex.check_group_advantages,
        lambda r: (r - r.mean(1, keepdim=True)) / r.std(1, keepdim=True),
    )


def test_response_targets_checker():
    def mine(prompt, response):
        ids = prompt + response
        return ids[:-1], [-1] * (len(prompt) - 1) + response

    assert passes(ex.check_response_targets, mine)
    # the prompt trained on too; targets not shifted
    assert not passes(
        ex.check_response_targets, lambda p, r: ((p + r)[:-1], (p + r)[1:])
    )
    assert not passes(
        ex.check_response_targets,
        lambda p, r: ((p + r)[:-1], [-1] * len(p) + r[:-1]),
    )
