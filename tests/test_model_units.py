"""Unit tests of chapters 2-5: embeddings, attention, multi-head attention, encoder and BertModel.

Parity of the full pretrained model with transformers is in test_pretrained.py (chapter 6); here: the three attention
implementations agree, the batched multi-head form equals per-head computation, config round trips, bad input,
padding invariance, parameter counts, checkpoint names, and a small random-weight parity check against transformers.
"""
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings, strategies as st

from bert_lit.attention import attention_loop, attention_matrix, attention_sdpa, padding_mask_bias
from bert_lit.embeddings import BertEmbeddings
from bert_lit.encoder import (ACT2FN, BertConfig, BertEncoder, BertIntermediate, BertLayer, BertModel,
                              BertModelOutput, BertOutput, BertPooler, BertPreTrainedModel, gelu)
from bert_lit.multihead import BertAttention, BertSelfAttention, BertSelfOutput, merge_heads, split_heads

SMALL = dict(vocab_size=50, hidden_size=24, num_hidden_layers=2, num_attention_heads=4, intermediate_size=40,
             max_position_embeddings=20, type_vocab_size=2)


def small_config(**kw):
    return BertConfig(**{**SMALL, **kw})


def random_mask(g, B, T, min_len=1):
    "(B, T) long mask: ones for a random length in [min_len, T] per row, then zeros."
    lengths = torch.randint(min_len, T + 1, (B,), generator=g)
    return (torch.arange(T)[None] < lengths[:, None]).long()


# ---------------------------------------------------------------- attention: three implementations agree

# Error model for comparing two floating-point computations of the same value (precision eps: fp32 2^-23 = 1.2e-7,
# fp64 2^-52). A sum of K terms rounds K times; the rounding errors have random signs and add like a random walk, so
# the sum errs by about sqrt(K) * eps * (the size of its partial sums). Different kernels (AVX2, AVX-512, thread
# counts) sum in different orders, so each result carries such an error of its own. For attention:
#   * a score q.k / sqrt(d): its partial sums are at most |q| |k| / sqrt(d) (Cauchy-Schwarz), so it errs by
#     C eps |q| |k|; inputs that themselves err by e (a projection) add e (|q| + |k|);
#   * softmax turns score errors ds into weight errors p (ds - mean ds): the output moves by at most 2 max|ds| max|v|;
#   * the weighted average of T_k values adds C sqrt(T_k) eps max|v|.
#   * a linear layer x W^T (K = D terms) adds C sqrt(D) eps |x| |w| and carries an input error e as sum|w| e.
# C = 8 covers the tail over many random draws (HYPOTHESIS_PROFILE=explore: the worst seen is far below the bound);
# a real mistake (a missing 1/sqrt(d), a head in the wrong place, a mask off by one) moves outputs by O(max|v|).
C = 8
EPS = {torch.float32: torch.finfo(torch.float32).eps, torch.float64: torch.finfo(torch.float64).eps}


def attention_error(q, k, v, eps, e_in=0.0):
    "Error bound of softmax(q k^T / sqrt(d)) v in precision eps, for inputs that err by e_in (the model above)."
    qn, kn = q.norm(dim=-1).max().item(), k.norm(dim=-1).max().item()
    ds = C * eps * qn * kn + e_in * (qn + kn)                                       # one score
    return v.abs().max().item() * (2 * ds + C * eps * math.sqrt(k.shape[-2])) + e_in


def assert_as_accurate(result, yardstick, exact, factor=4):
    """fp32 `result` errs from the fp64 `exact` at most `factor` times as much as the fp32 `yardstick` (the same maths
    in another summation order) plus C ulps of the largest value. For a whole model the error grows with depth and
    with each LayerNorm's conditioning, too many factors for a closed form; no summation order is privileged, so
    neither result may be much worse than the other. A real mistake in one path (a mask that leaks, a wrong eps)
    puts it orders of magnitude further from the exact value than fp32 rounding."""
    err = (result.double() - exact).abs().max().item()
    ref_err = (yardstick.double() - exact).abs().max().item()
    floor = C * EPS[torch.float32] * exact.abs().max().item()
    assert err <= factor * ref_err + floor, f"fp32 error {err:.2e} vs {ref_err:.2e} of the other order (+{floor:.1e})"


def linear_error(x, w, eps, e_in=0.0):
    "Error bound of x W^T + b in precision eps for an input that errs by e_in (the model above)."
    own = C * eps * math.sqrt(x.shape[-1]) * x.norm(dim=-1).max().item() * w.norm(dim=1).max().item()
    return own + w.abs().sum(1).max().item() * e_in


@settings(max_examples=100, deadline=None)
@given(B=st.integers(1, 3), H=st.integers(1, 4), Tq=st.integers(1, 17), Tk=st.integers(1, 17), d=st.integers(1, 40),
       dv=st.integers(1, 24), masked=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_three_attention_implementations_agree(B, H, Tq, Tk, d, dv, masked, seed):
    "fp64: equal within the fp64 error model (the exactness claim); fp32: each within the fp32 model of the exact."
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(B, H, Tq, d, generator=g, dtype=torch.float64), torch.randn(B, H, Tk, d, generator=g, dtype=torch.float64)
    v = torch.randn(B, H, Tk, dv, generator=g, dtype=torch.float64)
    mask = random_mask(g, B, Tk)
    exact = attention_loop(q, k, v, padding_mask_bias(mask, torch.float64)[:, None] if masked else None)
    for dtype in (torch.float64, torch.float32):
        bias = padding_mask_bias(mask, dtype)[:, None] if masked else None                # (B, 1, 1, Tk)
        args = (q.to(dtype), k.to(dtype), v.to(dtype), bias)
        tol = attention_error(*args[:3], EPS[dtype]) * (2 if dtype == torch.float64 else 1)  # fp64: exact errs too
        o_matrix, probs = attention_matrix(*args)
        for o in (attention_loop(*args), o_matrix, attention_sdpa(*args)):
            torch.testing.assert_close(o.double(), exact, atol=tol, rtol=0)
        torch.testing.assert_close(probs.sum(-1), torch.ones(B, H, Tq, dtype=dtype))
        if masked:
            assert (probs.masked_select(bias.expand_as(probs) < 0) == 0).all()      # padded keys: weight exactly 0


def test_attention_error_model_catches_a_missing_scale():
    "The bound is not so loose that a real mistake passes: attention without 1/sqrt(d) is far outside it."
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 3, 9, 16, generator=g) for _ in range(3))
    exact = attention_loop(q.double(), k.double(), v.double())
    unscaled = torch.softmax(q @ k.transpose(-1, -2), -1) @ v
    assert (unscaled.double() - exact).abs().max() > 100 * attention_error(q, k, v, EPS[torch.float32])


def test_three_attention_implementations_agree_fp64_and_3d():
    g = torch.Generator().manual_seed(0)
    for B, T, d in [(1, 1, 1), (2, 9, 5), (4, 33, 64)]:
        q, k, v = torch.randn(3, B, T, d, generator=g, dtype=torch.float64)
        for bias in (None, padding_mask_bias(random_mask(g, B, T), torch.float64)):      # (B, 1, T) on 3-D inputs
            ref = attention_loop(q, k, v, bias)
            torch.testing.assert_close(attention_matrix(q, k, v, bias)[0], ref, atol=1e-12, rtol=0)
            torch.testing.assert_close(attention_sdpa(q, k, v, bias), ref, atol=1e-12, rtol=0)


def test_attention_matches_formula_independently():
    g = torch.Generator().manual_seed(1)
    q, k, v = torch.randn(3, 5, 7, generator=g, dtype=torch.float64)
    w = torch.exp(q @ k.T / math.sqrt(7))
    torch.testing.assert_close(attention_loop(q, k, v), (w / w.sum(-1, keepdim=True)) @ v)


def test_padding_is_exactly_invisible_to_real_keys():
    g = torch.Generator().manual_seed(2)
    q, k, v = torch.randn(3, 1, 6, 8, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0]])
    tol = 2 * attention_error(q, k[:, :3], v[:, :3], EPS[torch.float32])            # two fp32 results: twice the bound
    for f in (attention_loop, lambda *a: attention_matrix(*a)[0], attention_sdpa):
        padded = f(q, k, v, padding_mask_bias(mask))
        short = f(q, k[:, :3], v[:, :3])
        torch.testing.assert_close(padded, short, atol=tol, rtol=0)


def test_fully_padded_row_is_finite():
    q, k, v = torch.randn(3, 2, 4, 8)
    bias = padding_mask_bias(torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]]))
    for out in (attention_loop(q, k, v, bias), attention_matrix(q, k, v, bias)[0], attention_sdpa(q, k, v, bias)):
        assert torch.isfinite(out).all()


def test_padding_mask_bias_values_dtypes_and_bool():
    m = torch.tensor([[1, 0, 1], [1, 1, 1]])
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        b = padding_mask_bias(m, dtype)
        assert b.shape == (2, 1, 3) and b.dtype == dtype
        assert b[0, 0, 1] == torch.finfo(dtype).min and (b[0, 0, [0, 2]] == 0).all() and (b[1] == 0).all()
        assert torch.equal(padding_mask_bias(m.bool(), dtype), b)
        assert torch.equal(padding_mask_bias(m.float(), dtype), b)


def test_attention_dropout_only_when_asked():
    q, k, v = torch.randn(3, 2, 3, 16, 8)
    torch.manual_seed(0)
    out, probs = attention_matrix(q, k, v, dropout_p=0.5)
    assert not torch.allclose(out, attention_matrix(q, k, v)[0])
    torch.testing.assert_close(probs, attention_matrix(q, k, v)[1])                  # probs before dropout
    assert not torch.allclose(attention_sdpa(q, k, v, dropout_p=0.5), attention_sdpa(q, k, v))


# ---------------------------------------------------------------- multi-head attention

def per_head_reference(sa, wo, X, bias=None):
    "Concat(head_1..head_H) W^O, one head at a time, with the loop form of attention."
    H = sa.num_attention_heads
    d = X.shape[-1] // H
    heads = []
    for h in range(H):
        r = slice(h * d, (h + 1) * d)
        q, k, v = (F.linear(X, m.weight[r], m.bias[r]) for m in (sa.query, sa.key, sa.value))
        heads.append(attention_loop(q, k, v, None if bias is None else bias[:, 0]))
    return F.linear(torch.cat(heads, -1), wo.weight, wo.bias)


def multihead_error(attn, X, eps):
    "Error bound of W^O Concat(heads) in precision eps: projections, attention, output projection (the model above)."
    sa = attn.self
    H, d = sa.num_attention_heads, X.shape[-1] // sa.num_attention_heads
    e_in = max(linear_error(X, m.weight, eps) for m in (sa.query, sa.key, sa.value))
    q, k, v = (split_heads(m(X), H) for m in (sa.query, sa.key, sa.value))          # (B, H, T, d): magnitudes
    e_context = attention_error(q, k, v, eps, e_in)
    return linear_error(merge_heads(attention_matrix(q, k, v)[0]), attn.output.dense.weight, eps, e_context)


@settings(max_examples=40, deadline=None)
@given(B=st.integers(1, 3), T=st.integers(1, 12), H=st.sampled_from([1, 2, 3, 4, 6]), d=st.integers(1, 8),
       masked=st.booleans(), seed=st.integers(0, 2**31 - 1))
@example(B=2, T=11, H=1, d=2, masked=False, seed=94497)   # failed on an AVX-512 machine under a fixed 2e-5 after
@example(B=2, T=11, H=1, d=2, masked=True, seed=94497)    # the LayerNorm (see below); kept as explicit cases
def test_batched_multihead_equals_per_head(B, T, H, d, masked, seed):
    """The batched form equals per-head computation: in fp64 within the fp64 error model, in fp32 within the fp32
    model (both against the fp64 per-head result). The LayerNorm is checked as composition, bit for bit: compared
    after it, two results of D=2 whose two entries nearly coincide differ by eps |x| / std(x), unbounded."""
    torch.manual_seed(seed)
    cfg = small_config(hidden_size=H * d, num_attention_heads=H)
    attn = BertAttention(cfg).double().eval()
    X = torch.randn(B, T, H * d, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    mask = random_mask(g, B, T)
    with torch.no_grad():
        exact = per_head_reference(attn.self, attn.output.dense, X,
                                   padding_mask_bias(mask, torch.float64)[:, None] if masked else None)
        for dtype in (torch.float64, torch.float32):
            attn.to(dtype)
            x = X.to(dtype)
            bias = padding_mask_bias(mask, dtype)[:, None] if masked else None
            tol = multihead_error(attn, x, EPS[dtype]) * (2 if dtype == torch.float64 else 1)  # fp64: exact errs too
            for output_attentions in (False, True):
                context, probs = attn.self(x, bias, output_attentions)
                assert context.shape == (B, T, H * d)
                assert (probs is None) != output_attentions
                torch.testing.assert_close(attn.output.dense(context).double(), exact, atol=tol, rtol=0)
            out, probs = attn(x, bias, True)
            assert probs.shape == (B, H, T, T)
            composed = attn.output.LayerNorm(x + attn.output.dense(attn.self(x, bias, True)[0]))
            torch.testing.assert_close(out, composed, atol=0, rtol=0)


def test_split_merge_heads():
    x = torch.randn(2, 5, 12)
    for H in (1, 2, 3, 4, 6, 12):
        s = split_heads(x, H)
        assert s.shape == (2, H, 5, 12 // H)
        assert torch.equal(merge_heads(s), x)
        for h in range(H):
            assert torch.equal(s[:, h], x[..., h * (12 // H):(h + 1) * (12 // H)])


def test_self_attention_rejects_indivisible_heads():
    cfg = type("C", (), dict(hidden_size=10, num_attention_heads=4, attention_probs_dropout_prob=0.0))()
    with pytest.raises(ValueError, match="not a multiple of num_attention_heads"):
        BertSelfAttention(cfg)


# ---------------------------------------------------------------- config

def minilm_dir():
    from bert_lit.data import minilm_checkpoint
    return Path(minilm_checkpoint())


def test_config_defaults_are_bert_base():
    c = BertConfig()
    assert (c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == \
        (30522, 768, 12, 12, 3072)
    assert (c.hidden_act, c.max_position_embeddings, c.type_vocab_size, c.layer_norm_eps, c.model_type) == \
        ("gelu", 512, 2, 1e-12, "bert")


def test_config_round_trip(tmp_path):
    for c in (BertConfig(), small_config(hidden_act="relu", extra={"architectures": ["BertModel"], "foo": 1})):
        assert BertConfig.from_dict(c.to_dict()) == c
        c.to_json_file(tmp_path / "config.json")
        assert BertConfig.from_json_file(tmp_path / "config.json") == c
        assert json.loads((tmp_path / "config.json").read_text()) == c.to_dict()


def test_config_reads_real_config_json_and_keeps_unknown_keys(tmp_path):
    src = minilm_dir() / "config.json"
    c = BertConfig.from_json_file(src)
    assert (c.hidden_size, c.num_hidden_layers, c.intermediate_size) == (384, 6, 1536)
    assert c.extra["architectures"] == ["BertModel"] and "transformers_version" in c.extra
    c.to_json_file(tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text()) == json.loads(src.read_text())


@pytest.mark.parametrize("kw, match", [
    (dict(hidden_size=100, num_attention_heads=12), "not a multiple of num_attention_heads"),
    (dict(hidden_act="swish"), "hidden_act='swish' is not supported"),
    (dict(model_type="roberta"), "not BERT"),
    (dict(num_hidden_layers=0), "num_hidden_layers=0 must be a positive integer"),
    (dict(vocab_size=-5), "vocab_size"),
    (dict(pad_token_id=50), "pad_token_id=50"),
    (dict(extra={"position_embedding_type": "relative_key"}), "position_embedding_type"),
])
def test_config_rejects_non_bert(kw, match):
    with pytest.raises(ValueError, match=match):
        small_config(**kw)


def test_config_json_of_another_model_type_is_refused(tmp_path):
    d = json.loads((minilm_dir() / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**d, "model_type": "distilbert"}))
    with pytest.raises(ValueError, match="model_type='distilbert'"):
        BertConfig.from_json_file(tmp_path / "config.json")


def test_model_requires_a_bert_config():
    with pytest.raises(TypeError, match="BertConfig"):
        BertModel(dict(SMALL))


# ---------------------------------------------------------------- activations

def test_gelu_exact_and_activation_table():
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    phi = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
    torch.testing.assert_close(gelu(x), x * phi)
    torch.testing.assert_close(ACT2FN["gelu"](x), x * phi)
    tanh = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    torch.testing.assert_close(ACT2FN["gelu_new"](x), tanh)
    torch.testing.assert_close(ACT2FN["gelu_pytorch_tanh"](x), tanh)
    torch.testing.assert_close(ACT2FN["relu"](x), x.clamp_min(0))
    assert (gelu(x) - tanh).abs().max() > 1e-4                                       # exact != approximation


# ---------------------------------------------------------------- BertModel: structure and behaviour

def expected_state_dict_names(L, pooler=True):
    names = [f"embeddings.{t}.weight" for t in ("word_embeddings", "position_embeddings", "token_type_embeddings")]
    names += ["embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
    for i in range(L):
        p = f"encoder.layer.{i}."
        for m in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                  "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"):
            names += [p + m + ".weight", p + m + ".bias"]
    if pooler:
        names += ["pooler.dense.weight", "pooler.dense.bias"]
    return set(names)


def test_state_dict_names_follow_the_checkpoint_layout():
    assert set(BertModel(small_config()).state_dict()) == expected_state_dict_names(2)
    assert set(BertModel(small_config(), add_pooling_layer=False).state_dict()) == expected_state_dict_names(2, False)


def test_real_checkpoint_loads_strictly():
    from safetensors.torch import load_file
    d = minilm_dir()
    weights = load_file(d / "model.safetensors")
    assert "embeddings.position_ids" in weights                                      # stored, and dropped on load
    model = BertModel(BertConfig.from_json_file(d / "config.json"))
    model.load_state_dict(weights, strict=True)
    assert torch.equal(model.encoder.layer[5].output.dense.weight, weights["encoder.layer.5.output.dense.weight"])
    with pytest.raises(RuntimeError, match="Unexpected key"):
        model.load_state_dict({**weights, "embeddings.nonsense": torch.zeros(1)}, strict=True)


def test_init_weights_follow_bert():
    torch.manual_seed(0)
    model = BertModel(small_config(hidden_size=64, intermediate_size=256, vocab_size=2000, initializer_range=0.05))
    for name, p in model.named_parameters():
        if "LayerNorm.weight" in name:
            assert (p == 1).all(), name
        elif name.endswith("bias"):
            assert (p == 0).all(), name
        else:
            w = p[1:] if name == "embeddings.word_embeddings.weight" else p
            assert abs(w.std().item() - 0.05) < 0.05 * 0.2 and abs(w.mean().item()) < 0.01, name
    assert (model.embeddings.word_embeddings.weight[0] == 0).all()
    assert model.base_model_prefix == "bert" and model.config_class is BertConfig


def test_outputs_shapes_and_contents():
    torch.manual_seed(0)
    cfg = small_config()
    model = BertModel(cfg).eval()
    ids = torch.randint(1, 50, (3, 9))
    mask = random_mask(torch.Generator().manual_seed(0), 3, 9, min_len=2)
    out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    assert isinstance(out, BertModelOutput)
    assert out.last_hidden_state.shape == (3, 9, 24) and out.pooler_output.shape == (3, 24)
    assert len(out.hidden_states) == 3 and len(out.attentions) == 2
    assert out.hidden_states[-1] is out.last_hidden_state
    keep = mask.bool()                                       # the default path leaves zeros at padding
    torch.testing.assert_close(out.hidden_states[0][keep], model.embeddings(ids)[keep])
    assert (out.hidden_states[0][~keep] == 0).all() and (out.last_hidden_state[~keep] == 0).all()
    for a in out.attentions:
        assert a.shape == (3, 4, 9, 9)
        torch.testing.assert_close(a.sum(-1), torch.ones(3, 4, 9))
        assert (a * (1 - mask[:, None, None, :]) == 0).all()
    plain = model(ids, mask)
    assert plain.hidden_states is None and plain.attentions is None
    assert BertModel(cfg, add_pooling_layer=False)(ids).pooler_output is None


def test_fast_and_explicit_paths_agree():
    "fp64: the fused and the explicit attention give the same model within 1e-10; fp32: both equally accurate."
    torch.manual_seed(0)
    model = BertModel(small_config()).eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50, (4, 16), generator=g)
    mask = random_mask(g, 4, 16)
    tt = torch.randint(0, 2, (4, 16), generator=g)
    run = lambda m, dtype, explicit: model.to(dtype)(ids, m, tt, output_attentions=explicit)
    with torch.no_grad():
        for m in (None, mask):
            a, b = run(m, torch.float64, False), run(m, torch.float64, True)
            for x, y in ((a.last_hidden_state, b.last_hidden_state), (a.pooler_output, b.pooler_output)):
                torch.testing.assert_close(x, y, atol=1e-10, rtol=0)        # fp64 rounding (~1e-15) x LayerNorms
            fast, explicit = run(m, torch.float32, False), run(m, torch.float32, True)
            assert_as_accurate(fast.last_hidden_state, explicit.last_hidden_state, b.last_hidden_state)
            assert_as_accurate(fast.pooler_output, explicit.pooler_output, b.pooler_output)


@pytest.mark.parametrize("output_attentions", [False, True])
def test_padding_invariance(output_attentions):
    "Each sequence alone gives the same vectors at its real tokens as inside a padded batch (fp64: 1e-10; fp32: as accurate)."
    torch.manual_seed(0)
    model = BertModel(small_config()).eval()
    g = torch.Generator().manual_seed(1)
    B, T = 5, 14
    ids = torch.randint(1, 50, (B, T), generator=g)
    mask = random_mask(g, B, T)
    tt = torch.randint(0, 2, (B, T), generator=g)
    garbage = torch.where(mask.bool(), ids, torch.randint(1, 50, (B, T), generator=g))   # padding with other ids
    run = lambda dtype, *args: model.to(dtype)(*args, output_attentions=output_attentions)
    with torch.no_grad():
        batch64, batch32 = run(torch.float64, ids, mask, tt), run(torch.float32, ids, mask, tt)
        for b in range(B):
            n = int(mask[b].sum())
            alone64 = run(torch.float64, ids[b:b + 1, :n], None, tt[b:b + 1, :n])
            alone32 = run(torch.float32, ids[b:b + 1, :n], None, tt[b:b + 1, :n])
            for kind in ("last_hidden_state", "pooler_output"):
                exact, alone = getattr(alone64, kind)[0], getattr(alone32, kind)[0]
                ours64, ours32 = getattr(batch64, kind)[b], getattr(batch32, kind)[b]
                if kind == "last_hidden_state":
                    ours64, ours32 = ours64[:n], ours32[:n]
                torch.testing.assert_close(ours64, exact, atol=1e-10, rtol=0)
                assert_as_accurate(ours32, alone, exact)
        # ... and padding with garbage ids changes nothing either
        real = mask.bool()
        torch.testing.assert_close(run(torch.float64, garbage, mask, tt).last_hidden_state[real],
                                   batch64.last_hidden_state[real], atol=1e-10, rtol=0)
        torch.testing.assert_close(run(torch.float32, garbage, mask, tt).last_hidden_state[real],
                                   batch32.last_hidden_state[real], atol=0, rtol=0)     # the same sums, bit for bit


def test_mask_forms_are_equivalent():
    torch.manual_seed(0)
    model = BertModel(small_config()).eval()
    ids = torch.randint(1, 50, (2, 7))
    mask = torch.tensor([[1] * 7, [1] * 3 + [0] * 4])
    with torch.no_grad():
        ref = model(ids, mask).last_hidden_state
        for m in (mask.bool(), mask.float(), mask.int()):
            torch.testing.assert_close(model(ids, m).last_hidden_state, ref, atol=0, rtol=0)
        torch.testing.assert_close(model(ids, torch.ones_like(mask)).last_hidden_state, model(ids).last_hidden_state)
        # explicit position ids and token types equal the defaults
        torch.testing.assert_close(model(ids, mask, torch.zeros_like(ids), torch.arange(7)).last_hidden_state, ref)
        torch.testing.assert_close(model(ids, mask, position_ids=torch.arange(7).expand(2, 7)).last_hidden_state, ref)


def test_accepts_tokenizer_style_dict():
    torch.manual_seed(0)
    model = BertModel(small_config()).eval()
    inputs = dict(input_ids=torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]]),
                  token_type_ids=torch.zeros(2, 4, dtype=torch.long),
                  attention_mask=torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]))
    assert model(**inputs).last_hidden_state.shape == (2, 4, 24)
    with pytest.raises(TypeError):
        model(**inputs, labels=torch.zeros(2))


def test_dropout_in_training_mode_only():
    torch.manual_seed(0)
    ids = torch.randint(1, 50, (2, 8))
    for kw in (dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.5),
               dict(hidden_dropout_prob=0.5, attention_probs_dropout_prob=0.0)):
        model = BertModel(small_config(**kw))
        for output_attentions in (False, True):
            model.train()
            a = model(ids, output_attentions=output_attentions).last_hidden_state
            b = model(ids, output_attentions=output_attentions).last_hidden_state
            assert not torch.allclose(a, b), kw
            model.eval()
            assert torch.equal(model(ids, output_attentions=output_attentions).last_hidden_state,
                               model(ids, output_attentions=output_attentions).last_hidden_state)


def test_other_activations_run():
    for act in ("relu", "gelu_new", "gelu_pytorch_tanh"):
        model = BertModel(small_config(hidden_act=act)).eval()
        assert model.encoder.layer[0].intermediate.intermediate_act_fn is ACT2FN[act]
        assert torch.isfinite(model(torch.randint(0, 50, (1, 5))).last_hidden_state).all()


def test_gradients_flow_to_every_parameter():
    torch.manual_seed(0)
    model = BertModel(small_config())
    out = model(torch.randint(1, 50, (2, 6)), torch.tensor([[1] * 6, [1] * 4 + [0] * 2]))
    (out.last_hidden_state.sum() + out.pooler_output.sum()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and (name == "embeddings.token_type_embeddings.weight" or p.grad.abs().sum() > 0), name
    assert (model.embeddings.word_embeddings.weight.grad[0] == 0).all()               # padding row frozen


# ---------------------------------------------------------------- bad input

@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return BertModel(small_config()).eval()


@pytest.mark.parametrize("kw, error, match", [
    (dict(input_ids=torch.ones(1, 21, dtype=torch.long)), ValueError,
     r"sequence of 21 tokens exceeds max_position_embeddings=20; pass truncation=True"),
    (dict(input_ids=torch.tensor([[2, 50, 3]])), ValueError, r"input_ids contains 50, outside \[0, 50\)"),
    (dict(input_ids=torch.tensor([[2, -1, 3]])), ValueError, r"input_ids contains -1, outside \[0, 50\)"),
    (dict(input_ids=torch.tensor([[2, 4, 3]]), token_type_ids=torch.tensor([[0, 1, 2]])), ValueError,
     r"token_type_ids contains 2, outside \[0, 2\); segment ids are 0 for the first sentence and 1"),
    (dict(input_ids=torch.tensor([[2, 4, 3]]), token_type_ids=torch.tensor([[0, -1, 0]])), ValueError,
     r"token_type_ids contains -1"),
    (dict(input_ids=torch.tensor([[2, 4, 3]]), position_ids=torch.tensor([0, 1, 20])), ValueError,
     r"position_ids contains 20, outside \[0, 20\)"),
    (dict(input_ids=torch.tensor([[2, 4, 3]]), attention_mask=torch.ones(1, 4)), ValueError,
     r"attention_mask has shape \(1, 4\) but input_ids has shape \(1, 3\); pass one entry per token"),
    (dict(input_ids=torch.tensor([[2, 4, 3]]), attention_mask=torch.ones(1, 1, 1, 3)), ValueError,
     r"attention_mask has shape \(1, 1, 1, 3\)"),
    (dict(input_ids=torch.tensor([[2, 4, 3]]), token_type_ids=torch.zeros(1, 4, dtype=torch.long)), ValueError,
     r"token_type_ids has shape \(1, 4\) but input_ids has shape \(1, 3\)"),
    (dict(input_ids=torch.tensor([2, 4, 3])), ValueError, r"add a batch dimension with input_ids\[None\]"),
    (dict(input_ids=torch.tensor([[2.0, 4.0]])), TypeError, r"input_ids must be a tensor of integer ids"),
    (dict(input_ids=[[2.0, 4.0, 3.0]]), TypeError, r"input_ids must be a tensor of integer ids \(torch.long\), got torch.float32"),
    (dict(input_ids="2 4 3"), TypeError, r"input_ids must be a tensor of integer ids \(torch.long\), got str"),
    (dict(input_ids=torch.zeros(1, 0, dtype=torch.long)), ValueError, r"at least one token"),
    (dict(attention_mask=torch.ones(1, 3)), ValueError, r"input_ids is required"),
])
def test_bad_input_errors_name_the_fix(tiny, kw, error, match):
    with pytest.raises(error, match=match):
        tiny(**kw)


def test_boundary_inputs_are_accepted(tiny):
    ids = torch.tensor([[0, 49] + [1] * 18])                                           # max length, extreme ids
    assert tiny(ids, token_type_ids=torch.tensor([[0, 1] * 10])).last_hidden_state.shape == (1, 20, 24)
    assert tiny(ids.int()).last_hidden_state.shape == (1, 20, 24)                       # int32 ids are fine


# ---------------------------------------------------------------- parameter counts

def n_params_formula(c, pooler=True):
    V, P, S, D, I, L = (c.vocab_size, c.max_position_embeddings, c.type_vocab_size, c.hidden_size,
                        c.intermediate_size, c.num_hidden_layers)
    per_layer = 4 * (D * D + D) + 2 * D + (D * I + I) + (I * D + D) + 2 * D
    return (V + P + S) * D + 2 * D + L * per_layer + (D * D + D if pooler else 0)


@pytest.mark.parametrize("cfg", [small_config(), BertConfig(), BertConfig(hidden_size=1024, num_hidden_layers=24,
                                 num_attention_heads=16, intermediate_size=4096), small_config(num_hidden_layers=5)])
def test_parameter_counts_match_closed_form(cfg):
    with torch.device("meta"):
        for pooler in (True, False):
            n = sum(p.numel() for p in BertModel(cfg, add_pooling_layer=pooler).parameters())
            assert n == n_params_formula(cfg, pooler)


def test_known_parameter_counts():
    with torch.device("meta"):
        assert sum(p.numel() for p in BertModel(BertConfig()).parameters()) == 109_482_240          # bert-base
        c = BertConfig.from_json_file(minilm_dir() / "config.json")
        assert sum(p.numel() for p in BertModel(c).parameters()) == 22_713_216                      # all-MiniLM-L6-v2


def test_submodule_parameter_counts():
    c = small_config()
    D, I = c.hidden_size, c.intermediate_size
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(BertEmbeddings(c)) == (c.vocab_size + c.max_position_embeddings + c.type_vocab_size + 2) * D
    assert count(BertAttention(c)) == 4 * (D * D + D) + 2 * D
    assert count(BertSelfOutput(c)) == D * D + 3 * D
    assert count(BertIntermediate(c)) == D * I + I and count(BertOutput(c)) == I * D + 3 * D
    assert count(BertLayer(c)) * c.num_hidden_layers == count(BertEncoder(c))
    assert count(BertPooler(c)) == D * D + D


# ---------------------------------------------------------------- random-weight parity with transformers

@pytest.mark.parametrize("act", ["gelu", "relu", "gelu_new"])
def test_matches_transformers_on_random_weights(act):
    "Same random weights in both (strict state-dict transfer), fp64: equal within 1e-10 at real tokens."
    import transformers
    cfg = small_config(hidden_act=act)
    torch.manual_seed(0)
    hf = transformers.BertModel(transformers.BertConfig(**{k: v for k, v in cfg.to_dict().items()}),
                                add_pooling_layer=True).double().eval()
    ours = BertModel(cfg).double().eval()
    with torch.no_grad():                          # make every bias and LayerNorm gain non-trivial, too
        for p in hf.parameters():
            p.add_(0.1 * torch.randn_like(p))
    assert set(hf.state_dict()) == set(ours.state_dict())                            # the same names, no renaming
    ours.load_state_dict(hf.state_dict(), strict=True)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50, (3, 11), generator=g)
    mask = random_mask(g, 3, 11, min_len=2)
    tt = torch.randint(0, 2, (3, 11), generator=g)
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, token_type_ids=tt)
        for output_attentions in (False, True):
            out = ours(ids, mask, tt, output_attentions=output_attentions)
            torch.testing.assert_close(out.last_hidden_state[mask.bool()], ref.last_hidden_state[mask.bool()],
                                       atol=1e-10, rtol=0)
            torch.testing.assert_close(out.pooler_output, ref.pooler_output, atol=1e-10, rtol=0)


# ---------------------------------------------------------------- outputs: dataclasses that index like transformers'
# Before issue 14 the outputs were plain dataclasses: `out[0]` raised TypeError, torch's pytree saw one opaque leaf,
# and torch.export failed on the input check's read-back. Each test below failed then.
from dataclasses import dataclass  # noqa: E402

import torch.utils._pytree as pytree  # noqa: E402

from bert_lit.encoder import ModelOutput  # noqa: E402


@dataclass
class _Ours(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple | None = None


def _theirs_class():
    import transformers
    from transformers.utils import ModelOutput as HFModelOutput

    @dataclass
    class Theirs(HFModelOutput):
        loss: torch.Tensor | None = None
        logits: torch.Tensor | None = None
        hidden_states: tuple | None = None
    return Theirs


@pytest.mark.parametrize("present", [("loss", "logits", "hidden_states"), ("logits",), ("logits", "hidden_states"),
                                     ("loss", "hidden_states")])
def test_model_output_reads_like_transformers(present):
    "Keys, len, in, iteration, to_tuple, integer and slice indexing and names: what transformers' ModelOutput does."
    Theirs = _theirs_class()
    values = {"loss": torch.tensor(0.5), "logits": torch.randn(2, 3), "hidden_states": (torch.randn(2, 4),)}
    kw = {k: values[k] for k in present}
    ours, theirs = _Ours(**kw), Theirs(**kw)
    assert isinstance(ours, dict) and list(ours) == list(theirs) == list(ours.keys()) == list(theirs.keys())
    assert len(ours) == len(theirs) and all((k in ours) == (k in theirs) for k in ("loss", "logits", "hidden_states"))
    assert len(ours.to_tuple()) == len(theirs.to_tuple())
    assert all(a is b for a, b in zip(ours.to_tuple(), theirs.to_tuple()))
    for i in range(-len(present), len(present)):
        assert ours[i] is theirs[i]
    assert all(a is b for a, b in zip(ours[1:], theirs[1:])) and len(ours[1:]) == len(theirs[1:])
    assert all(ours[k] is theirs[k] for k in present)
    assert all(a is b for a, b in zip(ours.values(), theirs.values()))
    assert [k for k, _ in ours.items()] == [k for k, _ in theirs.items()]
    for k in {"loss", "logits", "hidden_states"} - set(present):
        with pytest.raises(KeyError):
            ours[k]
        with pytest.raises(KeyError):
            theirs[k]


def test_model_output_assignment_keeps_the_two_views_together():
    out = _Ours(logits=torch.ones(1))
    out.loss = torch.tensor(1.0)                          # a field set later takes its place in field order
    assert list(out) == ["loss", "logits"] and out[0] is out.loss
    out["loss"] = None
    assert list(out) == ["logits"] and out.loss is None
    for change in (lambda: out.pop("logits"), lambda: out.update(logits=None), lambda: out.setdefault("loss", 1),
                   lambda: out.__delitem__("logits"), lambda: out.popitem(), lambda: out.clear()):
        with pytest.raises(TypeError, match="changes only by assigning a field"):
            change()
    with pytest.raises(KeyError, match="no field 'logit'"):
        out["logit"] = 1
    assert list(out) == ["logits"]


def test_model_output_is_a_pytree_node():
    out = _Ours(logits=torch.ones(2), hidden_states=(torch.zeros(1), torch.zeros(3)))
    leaves, spec = pytree.tree_flatten(out)
    assert len(leaves) == 3                                # the tensors inside, not the output as one leaf
    again = pytree.tree_unflatten([x + 1 for x in leaves], spec)
    assert type(again) is _Ours and again.loss is None and list(again) == ["logits", "hidden_states"]
    torch.testing.assert_close(again.hidden_states[1], torch.ones(3))
    assert [str(p[0]) for p, _ in pytree.tree_flatten_with_path(out)[0]] == [".logits", ".hidden_states", ".hidden_states"]


def test_bert_model_output_indexes_like_a_tuple():
    torch.manual_seed(0)
    model = BertModel(small_config()).eval()
    x = {"input_ids": torch.randint(1, 50, (2, 6)), "attention_mask": torch.tensor([[1] * 6, [1] * 4 + [0] * 2])}
    out = model(**x)
    assert model(**x)[0] is not None and torch.equal(model(**x)[0], out.last_hidden_state)
    assert out[0] is out.last_hidden_state and out[1] is out.pooler_output and out["pooler_output"] is out[1]
    assert list(out) == ["last_hidden_state", "pooler_output"] and "attentions" not in out
    h, pooled = out.to_tuple()                             # unpacking, as transformers' users write it
    bare = BertModel(small_config(), add_pooling_layer=False).eval()(**x, output_hidden_states=True)
    assert bare[1] is bare.hidden_states                   # positions count only the fields that are there


def _tiny_and_example():
    torch.manual_seed(0)
    model = BertModel(small_config()).eval()
    ids = torch.randint(1, 50, (2, 7))
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    return model, ids, mask


# Recorded graphs run the eager model's operations (torch.export's decompositions of them at most) on the same
# inputs: outputs of LayerNorm are O(1), float32 rounding in another order moves them by a few ulps (~1e-7).
RECORDED_ATOL = 1e-5


def test_jit_trace_gives_the_eager_numbers_and_keeps_the_mask():
    import warnings
    model, ids, mask = _tiny_and_example()
    eager = model(ids, mask, skip_padding=False)              # a recorded graph is chapter 5's padded path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, (ids, mask), strict=False)
        traced_unpadded = torch.jit.trace(model, (ids[:1], torch.ones_like(ids[:1])), strict=False)
    got = traced(ids, mask)
    assert isinstance(got, dict) and list(got) == ["last_hidden_state", "pooler_output"]
    torch.testing.assert_close(got["last_hidden_state"], eager.last_hidden_state, atol=RECORDED_ATOL, rtol=0)
    torch.testing.assert_close(got["pooler_output"], eager.pooler_output, atol=RECORDED_ATOL, rtol=0)
    # traced on an example without padding, the graph must still apply a mask given later (it did not, before)
    real = model(ids[1:], mask[1:]).last_hidden_state[:, :4]
    torch.testing.assert_close(traced_unpadded(ids[1:], mask[1:])["last_hidden_state"][:, :4], real,
                               atol=RECORDED_ATOL, rtol=0)


def test_torch_export_gives_the_eager_numbers_and_the_output_class():
    model, ids, mask = _tiny_and_example()
    eager = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, skip_padding=False)   # padded path
    program = torch.export.export(model, (), {"input_ids": ids, "attention_mask": mask, "output_hidden_states": True})
    got = program.module()(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    assert type(got).__name__ == "BertModelOutput" and list(got) == list(eager)
    for a, b in zip(pytree.tree_leaves(got), pytree.tree_leaves(eager)):
        torch.testing.assert_close(a, b, atol=RECORDED_ATOL, rtol=0)
    torch.testing.assert_close(got[0], eager[0], atol=RECORDED_ATOL, rtol=0)

