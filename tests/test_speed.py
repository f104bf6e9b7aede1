"""Chapter 11: fast paths equal the exact ones. The default packed forward (padding skipped) against the padded
path (skip_padding=False), every head forward and backward, and against transformers, on real sentences with the real MiniLM weights: fp32 within the error model of conftest.fp32_atol
(about 2e-5 for MiniLM's hidden states), fp64 within 1e-10."""
import random

import pytest
import torch
import transformers
from conftest import fp32_atol

from bert_lit.data import minilm_checkpoint, vader_sentences
from bert_lit.encoder import BertConfig, BertModel
from bert_lit.tokenizer import BertTokenizer


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    path = minilm_checkpoint()
    tok = BertTokenizer(path)
    rows = random.Random(5).sample(vader_sentences(), 48)
    texts = [r.text for r in rows]
    # single sentences and pairs, padded to the longest in each batch
    batches = [tok(texts[:16], padding=True, return_tensors="pt"),
               tok(texts[16:32], texts[32:48], padding=True, return_tensors="pt")]
    return path, batches


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_default_packed_path_equals_padded_and_transformers(setup, dtype):
    "model(**batch) skips the padding by default: equal to skip_padding=False and to transformers at real tokens."
    path, batches = setup
    ours = BertModel.from_pretrained(path, dtype=dtype)
    theirs = transformers.BertModel.from_pretrained(path, attn_implementation="eager", dtype=dtype).eval()
    c = ours.config
    with torch.inference_mode():
        for b in batches:
            keep = b["attention_mask"].bool()
            assert not keep.all()                                  # real batches: padding to skip
            u = ours(**b).last_hidden_state
            tol = fp32_atol(u[keep], c.intermediate_size, c.num_hidden_layers) if dtype == torch.float32 else 1e-10
            assert u.dtype == dtype and u.shape == (*b["input_ids"].shape, 384)
            torch.testing.assert_close(u[keep], ours(**b, skip_padding=False).last_hidden_state[keep], atol=tol, rtol=0)
            torch.testing.assert_close(u[keep], theirs(**b).last_hidden_state[keep], atol=tol, rtol=0)
            assert (u[~keep] == 0).all()


def test_packed_path_takes_over_only_with_padding(monkeypatch):
    "No padding: chapter 5's path (packed_encode never called); padding: packed_encode, unless skip_padding=False."
    import bert_lit.speed as speed
    calls = []
    real = speed.packed_encode
    monkeypatch.setattr(speed, "packed_encode", lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=64)).eval()
    ids = torch.randint(1, 50, (3, 9))
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        p = model(ids, mask).last_hidden_state
        assert calls == []
        mask[1, 4:] = 0
        mask[2, 1:] = 0                                            # a sequence of one token
        u = model(ids, mask).last_hidden_state
        assert calls == [1]
        p = model(ids, mask, skip_padding=False).last_hidden_state
        model.config.skip_padding = False
        assert torch.equal(model(ids, mask).last_hidden_state, p) and calls == [1]
    torch.testing.assert_close(u[mask.bool()], p[mask.bool()], atol=fp32_atol(p, 64, 2), rtol=0)
    with pytest.raises(TypeError, match="skip_padding"):
        model(ids, mask, skip_padding="yes")


def _tiny(dtype, **extra):
    torch.manual_seed(0)
    return BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=40, **extra)


def _head_inputs(name, g):
    "A padded batch for each head (lengths 11, 4, 7 of 11; pairs of segments), with its labels."
    lengths = [11, 4, 7]
    ids = torch.randint(5, 60, (3, 11), generator=g)
    mask = (torch.arange(11) < torch.tensor(lengths)[:, None]).long()
    ids = ids * mask
    types = (torch.arange(11) >= 3).long() * mask
    b = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    token_labels = torch.where(mask.bool(), torch.randint(0, 3, (3, 11), generator=g), -100)
    if name == "BertForMultipleChoice":                          # (batch 1, 3 choices, T)
        return {k: v[None] for k, v in b.items()} | {"labels": torch.tensor([2])}
    labels = {"BertForPreTraining": {"labels": torch.where(mask.bool() & (ids % 3 == 0), ids, -100),
                                     "next_sentence_label": torch.tensor([0, 1, 0])},
              "BertForMaskedLM": {"labels": torch.where(mask.bool() & (ids % 3 == 0), ids, -100)},
              "BertForNextSentencePrediction": {"labels": torch.tensor([0, 1, 1])},
              "BertForSequenceClassification": {"labels": torch.tensor([0, 2, 1])},
              "BertForTokenClassification": {"labels": token_labels},
              "BertForQuestionAnswering": {"start_positions": torch.tensor([1, 2, 3]),
                                           "end_positions": torch.tensor([5, 3, 6])}}
    return b | labels.get(name, {})


HEADS = ["BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForNextSentencePrediction",
         "BertForSequenceClassification", "BertForTokenClassification", "BertForMultipleChoice",
         "BertForQuestionAnswering"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("name", HEADS)
def test_every_head_packed_equals_padded_forward_and_backward(name, dtype):
    "Loss, outputs at real tokens and every parameter's gradient: packed (default) = padded, fp32 1e-5, fp64 1e-10."
    import bert_lit
    config = _tiny(dtype, num_labels=3)
    model = getattr(bert_lit, name)(config).to(dtype).train()  # dropout 0: the two paths are comparable draw for draw
    b = _head_inputs(name, torch.Generator().manual_seed(1))
    keep = b["attention_mask"].bool()
    results = []
    for skip in (True, False):
        model.zero_grad()
        model.config.skip_padding = skip
        out = model(**b)
        first = out[0]
        scalar = first if first.dim() == 0 else first[keep].square().mean() if first.shape[:keep.dim()] == keep.shape \
            else first.square().mean()
        scalar.backward()
        fields = {k: v for k, v in out.items() if isinstance(v, torch.Tensor) and v.dim() > 0}
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((scalar.detach(), fields, grads))
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    (s1, f1, g1), (s2, f2, g2) = results
    torch.testing.assert_close(s1, s2, atol=tol, rtol=0)
    assert f1.keys() == f2.keys() and g1.keys() == g2.keys() and len(g1) >= len(list(model.parameters())) - 2
    for k in f1:                                                   # per-token outputs compared at real tokens
        a, c = (f1[k][keep], f2[k][keep]) if f1[k].shape[:keep.dim()] == keep.shape else (f1[k], f2[k])
        torch.testing.assert_close(a, c, atol=tol, rtol=0, msg=f"{name}.{k}")
    for n in g1:
        torch.testing.assert_close(g1[n], g2[n], atol=tol, rtol=0, msg=f"{name}: gradient of {n}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
def test_packed_path_with_every_option(dtype):
    "hidden states, attentions, position ids, inputs_embeds, gradient checkpointing: packed = padded at real tokens."
    model = BertModel(_tiny(dtype)).to(dtype).train()
    b = _head_inputs("BertModel", torch.Generator().manual_seed(2))
    keep = b["attention_mask"].bool()
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    embeds = model.embeddings.word_embeddings(b["input_ids"]).detach()
    cases = [dict(output_hidden_states=True, output_attentions=True),
             dict(position_ids=torch.arange(11).flip(0)[None].expand(3, 11).contiguous()),
             dict(inputs_embeds=embeds, input_ids=None)]
    for extra in cases + ["checkpointing"]:
        kwargs = b | (extra if isinstance(extra, dict) else {})
        if extra == "checkpointing":
            model.gradient_checkpointing_enable()
        outs = []
        for skip in (True, False):
            model.zero_grad()
            out = model(**kwargs, skip_padding=skip)
            out.last_hidden_state[keep].sum().backward()
            outs.append((out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
        (packed, gp), (padded, gq) = outs
        torch.testing.assert_close(packed.last_hidden_state[keep], padded.last_hidden_state[keep], atol=tol, rtol=0)
        for h1, h2 in zip(packed.hidden_states or (), padded.hidden_states or ()):
            torch.testing.assert_close(h1[keep], h2[keep], atol=tol, rtol=0)
        for a1, a2 in zip(packed.attentions or (), padded.attentions or ()):   # rows of real queries
            torch.testing.assert_close(a1.transpose(1, 2)[keep], a2.transpose(1, 2)[keep], atol=tol, rtol=0)
        if extra == cases[0]:
            assert len(packed.hidden_states) == 3 and len(packed.attentions) == 2
        assert gp.keys() == gq.keys()
        for n in gp:
            torch.testing.assert_close(gp[n], gq[n], atol=tol, rtol=0, msg=f"{extra}: gradient of {n}")


def test_recorded_graphs_take_the_padded_path():
    "torch.export of a padded example records chapter 5's path: the exported program equals skip_padding=False."
    model = BertModel(_tiny(torch.float32)).eval()
    b = _head_inputs("BertModel", torch.Generator().manual_seed(3))
    args = (b["input_ids"], b["attention_mask"])
    program = torch.export.export(model, args)
    names = {n.target.__name__ if hasattr(n.target, "__name__") else str(n.target) for n in program.graph.nodes}
    assert not any("nonzero" in n for n in names)               # no data-dependent packing in the graph
    with torch.no_grad():
        torch.testing.assert_close(program.module()(*args)["last_hidden_state"],
                                   model(*args, skip_padding=False).last_hidden_state, atol=1e-6, rtol=0)


def test_bench_table_reads_the_committed_results():
    "bench/results.py (chapter 11's table): every benchmark's row, numbers read whole (a thousands comma kept, no trailing one)."
    import sys
    from pathlib import Path
    bench = Path(__file__).resolve().parents[1] / "bench"
    sys.path.insert(0, str(bench))
    import results
    rows = results.bench_table(bench / "cpu-results.txt")
    assert len(rows) == 27 and all(len(r) == 4 for r in rows)
    lines = (bench / "cpu-results.txt").read_text()
    for what, measured, value, target in rows:
        assert value in lines and value[-1].isdigit(), (what, value)     # was '631,' for 'bert_lit 631, transformers'
    assert [v for _, m, v, _ in rows if m == "bert_lit tokens/s"] == ["728", "6,047", "653"]
    assert [v for w, m, v, _ in rows if m == "default / transformers"] == ["1.68", "1.93"]      # inference, training


def test_quantize_int8_heads_and_refusals(setup):
    """quantize_int8: every encoder Linear of a head model becomes int8 (the head stays float32), outputs stay close
    to float32, the original is untouched; float64 or non-CPU models are refused."""
    import bert_lit
    from bert_lit.speed import quantize_int8
    path, batches = setup
    model = bert_lit.BertForSequenceClassification.from_pretrained(path, num_labels=2).eval()
    q = quantize_int8(model)
    int8 = {n for n, m in q.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)}
    assert len(int8) == 6 * 6 and all(n.startswith("bert.encoder.layer.") for n in int8)
    assert type(q.classifier) is torch.nn.Linear and type(q.bert.pooler.dense) is torch.nn.Linear
    assert type(model.bert.encoder.layer[0].output.dense) is torch.nn.Linear
    with torch.inference_mode():
        for b in batches:
            a, c = model(**b).logits, q(**b).logits
            assert (a - c).abs().max() < 0.1 * a.abs().max() + 0.05
    with pytest.raises(ValueError, match="float32"):
        quantize_int8(bert_lit.BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1,
                                                    num_attention_heads=4, intermediate_size=64)).double())
    meta = bert_lit.BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                         intermediate_size=64)).to("meta")
    with pytest.raises(ValueError, match="CPU"):
        quantize_int8(meta)


def test_packed_last_hidden_state_is_the_last_hidden_state():
    "As on chapter 5's path, hidden_states[-1] is the very tensor last_hidden_state (a loss on one reaches the other)."
    model = BertModel(_tiny(torch.float32)).train()
    b = _head_inputs("BertModel", torch.Generator().manual_seed(4))
    for skip in (True, False):
        out = model(**b, output_hidden_states=True, skip_padding=skip)
        assert out.hidden_states[-1] is out.last_hidden_state
