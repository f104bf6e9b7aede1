"""Chapter 8: pretraining data, heads (parity with transformers), the training step, checkpoints and resume, CLI."""
import collections
import errno
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file

import bert_lit.pretraining as pt
import bert_lit.training as training
import bert_lit.cli as command_line
from bert_lit.encoder import BertConfig
from bert_lit.pretraining import (BertForMaskedLM, BertForPreTraining, PretrainingBatches, PretrainingConfig,
                                  PretrainingDataConfig, VocabInfo, collate, create_instances_from_document,
                                  create_masked_lm_predictions, create_training_instances, load_checkpoint, pretrain,
                                  save_checkpoint, train_step)
from bert_lit.training import build_optimizer, linear_warmup_decay, parameter_groups

ROOT = Path(__file__).resolve().parents[1]
PAD, UNK, CLS, SEP, MASK = range(5)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    "Small models on a shared CPU: one thread is fastest, and results do not depend on the core count."
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def hf_config(cfg):
    return transformers.BertConfig(**{k: v for k, v in cfg.to_dict().items() if k not in ("extra", "model_type")})


def small_config(**kw):
    return BertConfig(**{**dict(vocab_size=211, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                intermediate_size=64, max_position_embeddings=64), **kw})


def perturbed(model, seed=0):
    "Give every parameter (biases, LayerNorm, the output bias too) random non-trivial values."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model


def pretraining_batch(vocab_size, B=4, T=13, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (B, T), generator=g)
    ids[:, 0] = CLS
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    mask[3, 5:] = 0
    ids[mask == 0] = PAD
    labels = torch.full_like(ids, -100)
    chosen = (torch.rand(B, T, generator=g) < 0.3) & (mask == 1)
    chosen[:, 0] = False
    chosen[:, 1] = True
    labels[chosen] = torch.randint(0, vocab_size, (B, T), generator=g)[chosen]
    types = (torch.arange(T) >= T // 2).long().expand(B, T) * mask
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels,
                next_sentence_label=torch.tensor([0, 1, 1, 0][:B]))


# ---------------------------------------------------------------- heads: parity with transformers (fp32, 1e-5)
# Both compute the same float32 operations in nearly the same order; 1e-5 absolute leaves room for the different
# attention kernels (sdpa with an additive mask vs transformers' own) and is far below any real discrepancy.

@pytest.mark.parametrize("act", ["gelu", "relu"])
def test_pretraining_parity_with_transformers(act):
    cfg = small_config(hidden_act=act)
    torch.manual_seed(0)
    ours = perturbed(BertForPreTraining(cfg)).eval()
    theirs = transformers.BertForPreTraining(hf_config(cfg)).eval()
    result = theirs.load_state_dict(ours.state_dict(), strict=False)
    assert not result.unexpected_keys and not [k for k in result.missing_keys if "position_ids" not in k]
    b = pretraining_batch(cfg.vocab_size)
    real = b["attention_mask"].bool()
    inputs = {k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        full, ref = ours(**inputs), theirs(**b)
        trained = ours(**b)
    torch.testing.assert_close(full.prediction_logits[real], ref.prediction_logits[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(full.seq_relationship_logits, ref.seq_relationship_logits, atol=1e-5, rtol=0)
    sel = b["labels"] != -100
    torch.testing.assert_close(trained.prediction_logits, ref.prediction_logits[sel], atol=1e-5, rtol=0)
    torch.testing.assert_close(trained.loss, ref.loss, atol=1e-5, rtol=0)
    ref_nsp = torch.nn.functional.cross_entropy(ref.seq_relationship_logits, b["next_sentence_label"])
    torch.testing.assert_close(trained.nsp_loss, ref_nsp, atol=1e-5, rtol=0)


def test_masked_lm_parity_with_transformers():
    cfg = small_config()
    torch.manual_seed(1)
    ours = perturbed(BertForMaskedLM(cfg), 1).eval()
    theirs = transformers.BertForMaskedLM(hf_config(cfg)).eval()
    assert set(ours.state_dict()) - {"bert.embeddings.position_ids"} == set(theirs.state_dict()) - {"bert.embeddings.position_ids"}
    theirs.load_state_dict(ours.state_dict(), strict=False)
    b = pretraining_batch(cfg.vocab_size, seed=2)
    real, sel = b["attention_mask"].bool(), b["labels"] != -100
    inputs = {k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        full, trained = ours(**inputs), ours(**inputs, labels=b["labels"])
        ref = theirs(**inputs, labels=b["labels"])
    assert ours.bert.pooler is None
    torch.testing.assert_close(full.logits[real], ref.logits[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(trained.logits, ref.logits[sel], atol=1e-5, rtol=0)
    torch.testing.assert_close(trained.loss, ref.loss, atol=1e-5, rtol=0)


def test_training_gradients_match_transformers():
    "One backward pass: the gathered head gives the same gradients as transformers' full-logits head."
    cfg = small_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(2)
    ours = perturbed(BertForPreTraining(cfg), 2)
    theirs = transformers.BertForPreTraining(hf_config(cfg))
    theirs.load_state_dict(ours.state_dict(), strict=False)
    b = pretraining_batch(cfg.vocab_size, seed=3)
    ours(**b).loss.backward()
    theirs(**b).loss.backward()
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        torch.testing.assert_close(mine[name].grad, p.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_checkpoint_round_trip_with_transformers(tmp_path):
    cfg = small_config()
    torch.manual_seed(3)
    ours = perturbed(BertForPreTraining(cfg), 3).eval()
    ours.save_pretrained(tmp_path / "ours")
    saved = load_file(tmp_path / "ours" / "model.safetensors")
    assert "cls.predictions.decoder.weight" not in saved and "cls.predictions.bias" in saved   # tied: stored once
    theirs = transformers.BertForPreTraining.from_pretrained(tmp_path / "ours").eval()
    assert theirs.cls.predictions.decoder.weight.data_ptr() == theirs.bert.embeddings.word_embeddings.weight.data_ptr()
    b = pretraining_batch(cfg.vocab_size, seed=4)
    inputs = {k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    real = b["attention_mask"].bool()
    with torch.no_grad():
        a, r = ours(**inputs), theirs(**inputs)
    torch.testing.assert_close(a.prediction_logits[real], r.prediction_logits[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(a.seq_relationship_logits, r.seq_relationship_logits, atol=1e-5, rtol=0)
    # and back: transformers' checkpoint into bert_lit, the decoder still tied
    theirs.save_pretrained(tmp_path / "theirs")
    back = BertForPreTraining.from_pretrained(tmp_path / "theirs")
    assert back.cls.predictions.decoder.weight is back.bert.embeddings.word_embeddings.weight
    assert back.cls.predictions.decoder.bias is back.cls.predictions.bias
    with torch.no_grad():
        torch.testing.assert_close(back(**inputs).prediction_logits[real], r.prediction_logits[real], atol=1e-5, rtol=0)
    # a masked-LM model from the pretraining checkpoint loads strictly: nothing is missing, and the pooler (which
    # BertForMaskedLM lacks, as in transformers) is reported as ignored, like the NSP head
    mlm = BertForMaskedLM.from_pretrained(tmp_path / "ours")
    assert not mlm.load_report.newly_initialized and not mlm.load_report.missing and not mlm.load_report.unexpected
    assert {"bert.pooler.dense.bias", "bert.pooler.dense.weight"} <= set(mlm.load_report.ignored)
    with torch.no_grad():
        torch.testing.assert_close(mlm(**inputs).logits[real], a.prediction_logits[real], atol=1e-6, rtol=0)


def test_loss_only_at_predicted_positions():
    cfg = small_config()
    torch.manual_seed(4)
    model = BertForPreTraining(cfg).eval()
    b = pretraining_batch(cfg.vocab_size, seed=5)
    out = model(**b, output_hidden_states=True)
    last = out.hidden_states[-1]
    last.retain_grad()
    out.mlm_loss.backward()
    g = last.grad.abs().sum(-1)
    sel = b["labels"] != -100
    assert (g[sel] > 0).all() and (g[~sel] == 0).all()


def test_initial_losses_near_uniform():
    cfg = small_config(vocab_size=2000)
    torch.manual_seed(5)
    with torch.no_grad():
        out = BertForPreTraining(cfg).eval()(**pretraining_batch(cfg.vocab_size, seed=6))
    assert abs(out.mlm_loss.item() - math.log(2000)) < 0.1 and abs(out.nsp_loss.item() - math.log(2)) < 0.1


# ---------------------------------------------------------------- the data pipeline on a tiny corpus

def info(vocab_size=1000, continuation=()):
    return VocabInfo(vocab_size, CLS, SEP, MASK, PAD, frozenset(continuation))


def coded_corpus(n_docs=12, n_sents=30, seed=0):
    "Documents whose every token id encodes (document, sentence, position): 10 + 100000*d + 100*s + p."
    rng = random.Random(seed)
    return [[[10 + 100_000 * d + 100 * s + p for p in range(rng.randint(2, 9))] for s in range(n_sents)]
            for d in range(n_docs)]


def test_pairs_follow_the_recipe():
    docs = coded_corpus()
    where = {t: (d, k) for d, doc in enumerate(docs) for k, t in enumerate(t for s in doc for t in s)}
    rng = random.Random(0)
    n_random = n = 0
    for d in range(len(docs)):
        for a, b, is_random in create_instances_from_document(docs, d, 64, 0.1, rng):
            n += 1
            assert a and b and len(a) + len(b) <= 61
            (doc_a, pos_a), (doc_b, pos_b) = zip(*map(where.get, a)), zip(*map(where.get, b))
            assert set(doc_a) == {d} and len(set(doc_b)) == 1
            assert list(pos_a) == list(range(pos_a[0], pos_a[0] + len(a)))   # contiguous text
            assert list(pos_b) == list(range(pos_b[0], pos_b[0] + len(b)))
            if is_random:
                n_random += 1
                assert doc_b[0] != d                            # B from another document
            else:
                assert doc_b[0] == d and pos_a[-1] < pos_b[0]   # B follows A in the same document
    # labels: p = 1/2 per pair, plus the pairs forced random by a one-sentence chunk (rare here)
    sigma = math.sqrt(0.25 / n)
    assert 0.5 - 5 * sigma < n_random / n < 0.5 + 5 * sigma + 0.05, (n_random, n)


def test_every_sentence_is_used_when_b_is_random():
    "Unused sentences are put back: with short_seq_prob=0 every sentence of a document appears in some A or true B."
    docs = coded_corpus(n_docs=6, n_sents=40, seed=1)
    rng = random.Random(1)
    for d in range(len(docs)):
        seen = set()
        for a, b, is_random in create_instances_from_document(docs, d, 512, 0.0, rng):
            seen |= {((t - 10) % 100_000) // 100 for t in a + ([] if is_random else b)}
        assert seen == set(range(40))


def test_truncation_cuts_the_longer_from_both_ends():
    rng = random.Random(0)
    fronts = backs = 0
    for _ in range(200):
        a, b = list(range(50)), list(range(100, 110))
        pt.truncate_seq_pair(a, b, 30, rng)
        assert len(a) + len(b) == 30 and len(b) == 10 and a == list(range(a[0], a[0] + 20))
        fronts += a[0] > 0
        backs += a[-1] < 49
    assert fronts > 150 and backs > 150


def test_masking_proportions_and_specials():
    V = 1000
    rng = random.Random(0)
    counts = collections.Counter()
    for trial in range(3000):
        n_real = rng.randint(2, 120)
        ids = [CLS] + [rng.randint(5, V - 1) for _ in range(n_real)] + [SEP]
        ids.insert(rng.randint(2, len(ids) - 1), SEP)
        out, pos, lab = create_masked_lm_predictions(ids, info(V), 0.15, 20, rng)
        assert len(pos) == min(20, max(1, round(len(ids) * 0.15))) == len(set(pos))
        assert pos == sorted(pos) and lab == [ids[i] for i in pos]
        assert all(ids[i] not in (CLS, SEP, PAD) for i in pos)
        assert all(out[i] == ids[i] for i in range(len(ids)) if i not in pos)
        for i in pos:
            counts["mask" if out[i] == MASK else "same" if out[i] == ids[i] else "random"] += 1
    n = sum(counts.values())
    for kind, p in (("mask", 0.8), ("same", 0.1 + 0.1 / V), ("random", 0.1 * (1 - 1 / V) - 0.1 / V)):
        # a random replacement that happens to be the original, or [MASK], counts elsewhere: corrected above
        sigma = math.sqrt(p * (1 - p) / n)
        assert abs(counts[kind] / n - p) < 5 * sigma + 0.1 / V, (kind, counts[kind] / n, p)


def test_padding_never_chosen_and_labels_ignore_padding():
    V = 500
    docs = coded_corpus(6, 20)
    docs = [[[10 + (t % (V - 10)) for t in s] for s in d] for d in docs]
    instances = create_training_instances(docs, info(V), PretrainingDataConfig(max_seq_length=40, dupe_factor=1))
    b = collate(instances[:16], PAD)
    assert (b["labels"][b["attention_mask"] == 0] == -100).all()
    assert (b["input_ids"][b["attention_mask"] == 0] == PAD).all()
    sel = b["labels"] != -100
    assert not sel[:, 0].any()
    assert not (b["labels"][sel] == SEP).any() and not (b["labels"][sel] == CLS).any()


def test_whole_word_masking_never_splits_a_word():
    V = 1000
    cont = set(range(500, 1000))                               # ids >= 500 are '##' pieces
    rng = random.Random(0)
    pieces_chosen = 0
    for trial in range(500):
        ids = [CLS]
        for _ in range(rng.randint(1, 40)):
            ids += [rng.randint(5, 499)] + [rng.randint(500, 999) for _ in range(rng.choice([0, 0, 1, 2, 3]))]
        ids.append(SEP)
        out, pos, lab = create_masked_lm_predictions(ids, info(V, cont), 0.15, 20, rng, whole_word_mask=True)
        chosen = set(pos)
        pieces_chosen += sum(ids[i] in cont for i in pos)
        assert len(pos) <= min(20, max(1, round(len(ids) * 0.15)))    # a word that would overshoot is skipped
        i = 1
        while i < len(ids) - 1:                                 # each word: a start piece and its ## pieces
            j = i + 1
            while j < len(ids) - 1 and ids[j] in cont:
                j += 1
            word = set(range(i, j))
            assert word <= chosen or not word & chosen, (ids, pos)
            i = j
    assert pieces_chosen > 100                                  # words of several pieces are chosen, whole


def test_static_masking_repeats_dynamic_does_not():
    docs = coded_corpus(8, 12)
    docs = [[[10 + t % 900 for t in s] for s in d] for d in docs]
    static = PretrainingBatches(docs, info(), PretrainingDataConfig(max_seq_length=32, dupe_factor=2), 4)
    dynamic = PretrainingBatches(docs, info(), PretrainingDataConfig(max_seq_length=32, dynamic_masking=True), 4)
    ids = lambda s, e: [x.input_ids for x in s.instances(e)]
    assert ids(static, 0) == ids(static, 2) != ids(static, 1)
    assert ids(dynamic, 0) != ids(dynamic, 2)
    # the stream walks through epochs and can be repositioned
    first = [next(static)["input_ids"] for _ in range(30)]
    again = PretrainingBatches(docs, info(), PretrainingDataConfig(max_seq_length=32, dupe_factor=2), 4)
    again.load_state_dict({"epoch": 0, "index": 0})
    assert all(torch.equal(a, next(again)["input_ids"]) for a in first)
    assert static.epoch >= 1


# ---------------------------------------------------------------- bad input

def test_bad_input_errors():
    with pytest.raises(ValueError, match="corpus is empty"):
        create_training_instances([], info(), PretrainingDataConfig())
    with pytest.raises(ValueError, match="single document"):
        create_training_instances([[[5, 6], [7, 8]]], info(), PretrainingDataConfig())
    with pytest.raises(ValueError, match="single sentence"):
        create_training_instances([[[5, 6, 7]], [[8, 9]], [[10]]], info(), PretrainingDataConfig())
    with pytest.raises(ValueError, match="too short for any masking"):
        PretrainingDataConfig(max_seq_length=4)
    with pytest.raises(ValueError, match="nothing to predict"):
        PretrainingDataConfig(max_predictions_per_seq=0)
    with pytest.raises(ValueError, match="no token that could be masked"):
        create_masked_lm_predictions([CLS, SEP, SEP], info(), 0.15, 20, random.Random(0))
    with pytest.raises(ValueError, match="fewer than batch_size"):
        next(PretrainingBatches([[[5, 6], [7, 8]], [[9, 10], [11, 12]]], info(), PretrainingDataConfig(), 64))
    with pytest.raises(ValueError, match="multiple of grad_accum_steps"):
        PretrainingConfig(batch_size=10, grad_accum_steps=3)
    with pytest.raises(ValueError, match="warmup_steps"):
        linear_warmup_decay(10, 10)
    with pytest.raises(TypeError, match="list of sentences"):
        pt.tokenize_documents(["one document as a string"], None)


def test_vocab_without_mask_is_refused(tmp_path):
    from bert_lit.tokenizer import BertTokenizer, save_vocab
    save_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b"], tmp_path / "vocab.txt")
    with pytest.raises(ValueError, match=r"no \[MASK\]"):
        VocabInfo.from_tokenizer(BertTokenizer(tmp_path / "vocab.txt"))


# ---------------------------------------------------------------- optimisation

def test_parameter_groups_partition_the_parameters():
    model = BertForPreTraining(small_config())
    decay, no_decay = parameter_groups(model)
    ids = lambda g: {id(p) for p in g["params"]}
    assert not ids(decay) & ids(no_decay)
    assert ids(decay) | ids(no_decay) == {id(p) for p in model.parameters()}
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[i] for i in ids(no_decay)} == {n for n, _ in model.named_parameters()
                                                 if n.endswith("bias") or "LayerNorm" in n}
    assert id(model.bert.embeddings.word_embeddings.weight) in ids(decay)


def test_schedule():
    f = linear_warmup_decay(10, 110)
    assert [f(s) for s in (0, 5, 10, 60, 110, 200)] == [0, 0.5, 1, 0.5, 0, 0]
    opt, sched = build_optimizer(BertForPreTraining(small_config()), 1e-3, 0.01, 10, 110)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"]); opt.step(); sched.step()
    assert lrs[0] == 0 and math.isclose(lrs[5], 5e-4) and math.isclose(lrs[10], 1e-3) and lrs[11] < 1e-3


def test_accumulation_equals_one_large_batch_and_clipping():
    cfg = small_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    docs = [[[10 + t % 200 for t in s] for s in d] for d in coded_corpus(8, 12)]
    instances = create_training_instances(docs, info(211), PretrainingDataConfig(max_seq_length=32))

    def run(batches, clip):
        torch.manual_seed(0)
        m = BertForPreTraining(cfg)
        opt, sched = build_optimizer(m, 0.0, 0.01, 0, 10)      # lr 0: look at the gradients
        opt.zero_grad = lambda set_to_none=True: None           # ... kept after the step
        stats = train_step(m, opt, sched, batches, clip)
        return stats, [p.grad for p in m.parameters()]

    s1, p1 = run([collate(instances[:8])], 1e9)
    s2, p2 = run([collate(instances[:3]), collate(instances[3:8])], 1e9)   # unequal micro-batches
    assert math.isclose(s1["loss"], s2["loss"], rel_tol=1e-5)
    assert math.isclose(s1["grad_norm"], s2["grad_norm"], rel_tol=1e-4)
    for a, b in zip(p1, p2):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)
    s3, _ = run([collate(instances[:8])], 0.5)
    assert s3["grad_norm"] == s1["grad_norm"] > 0.5          # the norm before clipping is reported


# ---------------------------------------------------------------- checkpoints: kill and resume

def tiny_run_setup(seed=0):
    docs = [[[10 + t % 200 for t in s] for s in d] for d in coded_corpus(10, 15, seed)]
    cfg = small_config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    data = PretrainingDataConfig(max_seq_length=32, max_predictions_per_seq=5, dupe_factor=2)
    run = PretrainingConfig(batch_size=8, grad_accum_steps=2, learning_rate=3e-3, warmup_steps=2, max_steps=12,
                            log_every=1, eval_every=3, eval_batches=2, save_every=4)
    torch.manual_seed(run.seed)
    return BertForPreTraining(cfg), docs[:8], docs[8:], info(211), data, run


def test_kill_and_resume_reproduces_the_uninterrupted_run(tmp_path, monkeypatch):
    model, train, held_out, vocab, data, run = tiny_run_setup()
    full = pretrain(tmp_path / "a", model, train, held_out, vocab, data, run, progress=False)
    final = {k: v.clone() for k, v in model.state_dict().items()}

    calls = {"n": 0}
    real_step = pt.train_step

    def dying_step(*args, **kwargs):                        # the process "dies" during step 7
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt("killed")
        return real_step(*args, **kwargs)

    monkeypatch.setattr(pt, "train_step", dying_step)
    model, train, held_out, vocab, data, run = tiny_run_setup()
    with pytest.raises(KeyboardInterrupt):
        pretrain(tmp_path / "b", model, train, held_out, vocab, data, run, progress=False)
    monkeypatch.setattr(pt, "train_step", real_step)
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["step"] == 4
    torch.manual_seed(123); random.seed(123)                # a fresh process has other random states
    model, train, held_out, vocab, data, run = tiny_run_setup(seed=0)
    resumed = pretrain(tmp_path / "b", model, train, held_out, vocab, data, run, progress=False)
    assert resumed[0]["step"] == 5
    logged = [json.loads(l) for l in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    drop = lambda rs: [{k: v for k, v in r.items() if k not in ("seconds", "tokens_per_s")} for r in rs]
    assert drop(logged) == drop(full)                       # exactly equal floats, not close
    spent = [r["flops"] for r in logged if r["split"] == "train"]
    assert len(spent) == 12 and all(0 < a < b for a, b in zip(spent, spent[1:]))   # counted on, across the resume
    assert [r["tokens"] for r in logged if "tokens" in r] == [r["tokens"] for r in full if "tokens" in r]
    for k, v in model.state_dict().items():
        assert torch.equal(v, final[k]), k


def test_resume_from_a_different_config_is_refused(tmp_path):
    model, train, held_out, vocab, data, run = tiny_run_setup()
    pretrain(tmp_path, model, train, held_out, vocab, data, PretrainingConfig(**{**run.__dict__, "max_steps": 4}),
             progress=False)
    model, *_ = tiny_run_setup()
    with pytest.raises(ValueError, match="different configuration.*max_steps"):
        pretrain(tmp_path, model, train, held_out, vocab, data, run, progress=False)
    bigger = BertForPreTraining(small_config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                             intermediate_size=32))
    with pytest.raises(ValueError, match="different configuration.*model"):
        pretrain(tmp_path, bigger, train, held_out, vocab, data, PretrainingConfig(**{**run.__dict__, "max_steps": 4}),
                 progress=False)


def test_interrupted_save_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    model, train, held_out, vocab, data, run = tiny_run_setup()
    batches = PretrainingBatches(train, vocab, data, 4)
    opt, sched = build_optimizer(model, 1e-3, 0.01, 1, 10)
    kw = dict(model=model, optimizer=opt, scheduler=sched, batches=batches, config={"x": 1})
    save_checkpoint(tmp_path / "checkpoint.pt", step=1, **kw)

    def half_write(obj, f):
        Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(torch, "save", half_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "checkpoint.pt", step=2, **kw)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "checkpoint.pt", **kw) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


# ---------------------------------------------------------------- the command line, end to end

WORDS = ("the a of to and in that it was he for on is with his as at by this had not be but from or have "
         "an they which one you were her all she there would their we him been has when who will more no if out "
         "so said what up its about into than them can only other new some could time these two may then do "
         "first any my now such like our over man me even most made after also did many before must through "
         "years where much your way well down should because each just those people how too little state good "
         "very make world still own see men work long get here between both life being under never day same "
         "another know while last might us great old year off come since against go came right used take three").split()


def write_corpus(path, n_docs=40, seed=0):
    rng = random.Random(seed)
    docs = ["\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))).capitalize() + "."
                      for _ in range(rng.randint(3, 12))) for _ in range(n_docs)]
    path.write_text("\n\n".join(docs) + "\n")


def cli(out, corpus, *extra):
    return [sys.executable, "-m", "bert_lit.pretraining", "--out", str(out), "--corpus", str(corpus),
            "--vocab-size", "300", "--hidden-size", "32", "--layers", "1", "--heads", "2", "--intermediate-size", "64",
            "--max-seq-length", "32", "--batch-size", "8", "--warmup-steps", "2", "--eval-every", "5",
            "--eval-batches", "2", "--threads", "1", "--no-progress", *extra]


def test_cli_end_to_end_and_kill(tmp_path):
    corpus = tmp_path / "corpus.txt"
    write_corpus(corpus)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    r = subprocess.run(cli(tmp_path / "run", corpus, "--max-steps", "6", "--save-every", "3", "--log-every", "2"),
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "held-out: MLM accuracy" in r.stdout
    records = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in records if x["split"] == "train"] == [2, 4, 6]
    assert [x["step"] for x in records if x["split"] == "validation"] == [5, 6]
    model = BertForPreTraining.from_pretrained(tmp_path / "run" / "model")
    assert model.config.vocab_size == 300 and (tmp_path / "run" / "model" / "vocab.txt").is_file()

    # kill -9 while it trains and saves every step: the last checkpoint stays loadable, and the command resumes
    long_run = cli(tmp_path / "kill", corpus, "--max-steps", "300", "--save-every", "1", "--eval-every", "100",
               "--log-every", "1")
    p = subprocess.Popen(long_run,
                         cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = tmp_path / "kill" / "checkpoint.pt"
    deadline = time.time() + 240
    while not ckpt.exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL, "the run finished before it could be killed; make it longer"
    state = torch.load(ckpt, weights_only=True)
    assert 1 <= state["step"] < 300
    r = subprocess.run(long_run,
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    steps = [json.loads(l)["step"] for l in (tmp_path / "kill" / "metrics.jsonl").read_text().splitlines()
             if json.loads(l)["split"] == "train"]
    assert steps == list(range(1, 301))


def test_cli_refuses_an_empty_corpus(tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n\n")
    with pytest.raises(ValueError, match="no sentences in .*empty.txt"):
        command_line.pretrain_command(command_line.parser().parse_args(["pretrain", "--out", str(tmp_path / "run"),
                                                                        "--corpus", str(tmp_path / "empty.txt"), "--no-progress"]))
    model, train, held_out, vocab, data, run = tiny_run_setup()
    with pytest.raises(ValueError, match="no held-out documents"):
        pretrain(tmp_path / "x", model, train, [], vocab, data, run, progress=False)


# ---------------------------------------------------------------- untied decoder (tie_word_embeddings: false)
# Tolerance: both sides compute the same float32 operations (1 or 2 layers of width 32, values O(1) after LayerNorm);
# a different summation order moves each result by a few ulp per operation, ~1e-6 after the stack of layers, so
# 1e-5 absolute holds with margin while the defect (tying anyway) moves hidden states by O(1) and logits by O(10).

@pytest.mark.parametrize("cls", ["BertForMaskedLM", "BertForPreTraining"])
def test_untied_decoder_matches_transformers(tmp_path, cls):
    cfg = small_config()
    ref_cfg = hf_config(cfg)
    ref_cfg.tie_word_embeddings = False
    torch.manual_seed(7)
    theirs = perturbed(getattr(transformers, cls)(ref_cfg), 7).eval()
    head = theirs.cls.predictions
    assert not torch.equal(head.decoder.weight, theirs.bert.embeddings.word_embeddings.weight)
    assert not torch.equal(head.decoder.bias, head.bias)                    # transformers unties the bias too
    theirs.save_pretrained(tmp_path / "theirs")
    ours = getattr(pt, cls).from_pretrained(tmp_path / "theirs")
    assert not ours.load_report.problems()
    assert ours.cls.predictions.decoder.weight is not ours.bert.embeddings.word_embeddings.weight
    b = pretraining_batch(cfg.vocab_size, seed=8)
    inputs = {k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    real = b["attention_mask"].bool()
    logits = "logits" if cls == "BertForMaskedLM" else "prediction_logits"
    with torch.no_grad():
        a, r = ours(**inputs, output_hidden_states=True), theirs(**inputs, output_hidden_states=True)
    torch.testing.assert_close(a.hidden_states[0][real], r.hidden_states[0][real], atol=1e-5, rtol=0)  # embeddings
    torch.testing.assert_close(a.hidden_states[-1][real], r.hidden_states[-1][real], atol=1e-5, rtol=0)
    torch.testing.assert_close(getattr(a, logits)[real], getattr(r, logits)[real], atol=1e-5, rtol=0)
    # and the round trip: both tensors are stored, the config keeps the key, transformers reads it back
    ours.save_pretrained(tmp_path / "ours")
    saved = load_file(tmp_path / "ours" / "model.safetensors")
    assert {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias", "bert.embeddings.word_embeddings.weight"} <= set(saved)
    assert json.loads((tmp_path / "ours" / "config.json").read_text())["tie_word_embeddings"] is False
    back = getattr(pt, cls).from_pretrained(tmp_path / "ours")
    for k, v in ours.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    again = getattr(transformers, cls).from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        torch.testing.assert_close(getattr(again(**inputs), logits)[real], getattr(r, logits)[real], atol=1e-5, rtol=0)


def test_tie_word_embeddings_must_be_a_boolean():
    with pytest.raises(ValueError, match="tie_word_embeddings='no' must be true or false"):
        BertForMaskedLM(small_config(extra={"tie_word_embeddings": "no"}))
    tied = BertForMaskedLM(small_config(extra={"tie_word_embeddings": True}))
    assert tied.cls.predictions.decoder.weight is tied.bert.embeddings.word_embeddings.weight


# ---------------------------------------------------------------- labels are checked

def bad_labels(b, V):
    sel = b["labels"] != -100
    return [
        (dict(labels=b["labels"].float()), TypeError, "labels must be a tensor of integer ids"),
        (dict(labels=b["labels"].tolist()), TypeError, "labels must be a tensor of integer ids"),
        (dict(labels=b["labels"][:, 1:]), ValueError, r"labels has shape \(4, 12\), expected \(4, 13\)"),
        (dict(labels=b["labels"][0]), ValueError, r"labels has shape \(13,\), expected \(4, 13\)"),
        (dict(labels=b["labels"].masked_fill(sel, V)), ValueError, rf"labels contains {V}, outside \[0, {V}\)"),
        (dict(labels=b["labels"].masked_fill(~sel, -1)), ValueError, r"labels contains -1, outside .*-100 elsewhere"),
    ]


def bad_nsp_labels(b):
    nsp = b["next_sentence_label"]
    return [
        (dict(next_sentence_label=nsp.float()), TypeError, "next_sentence_label must be a tensor of integer ids"),
        (dict(next_sentence_label=nsp.bool()), TypeError, "next_sentence_label must be a tensor of integer ids"),
        (dict(next_sentence_label=nsp[None]), ValueError, r"has shape \(1, 4\), expected \(4,\)"),
        (dict(next_sentence_label=nsp[:3]), ValueError, r"has shape \(3,\), expected \(4,\)"),
        (dict(next_sentence_label=nsp + 1), ValueError, r"contains 2, outside \[0, 2\).*0 if B follows A"),
        (dict(next_sentence_label=nsp - 1), ValueError, r"contains -1, outside \[0, 2\)"),
    ]


def test_pretraining_labels_are_checked():
    cfg = small_config()
    model = BertForPreTraining(cfg).eval()
    b = pretraining_batch(cfg.vocab_size, seed=9)
    for change, error, message in bad_labels(b, cfg.vocab_size) + bad_nsp_labels(b):
        with pytest.raises(error, match=message):
            model(**{**b, **change})
    with torch.no_grad():
        good = model(**b).loss
        as_int32 = model(**{**b, "labels": b["labels"].int(), "next_sentence_label": b["next_sentence_label"].int()})
        as_column = model(**{**b, "next_sentence_label": b["next_sentence_label"][:, None]}).loss
    assert torch.equal(as_int32.loss, good)                          # any integer dtype
    assert torch.equal(as_column, good)                              # (B, 1) as well as (B,), as transformers


def test_masked_lm_labels_are_checked():
    cfg = small_config()
    model = BertForMaskedLM(cfg).eval()
    b = pretraining_batch(cfg.vocab_size, seed=10)
    inputs = {k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    for change, error, message in bad_labels(b, cfg.vocab_size):
        with pytest.raises(error, match=message):
            model(**inputs, **change)
    with torch.no_grad():
        assert torch.equal(model(**inputs, labels=b["labels"].short()).loss, model(**inputs, labels=b["labels"]).loss)


# ---------------------------------------------------------------- --device cuda without CUDA

def test_cuda_without_a_gpu_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)       # as on a machine without a GPU
    for device in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match=r"no CUDA device is available .*use --device cpu"):
            training.setup_process(device)
    with pytest.raises(ValueError, match="is not a device"):
        training.setup_process("gpu")
    (tmp_path / "corpus.txt").write_text("One.\nTwo.\n\nThree.\nFour.\n")
    args = ["--out", str(tmp_path / "run"), "--corpus", str(tmp_path / "corpus.txt"), "--device", "cuda"]
    assert command_line.main(["pretrain", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: device 'cuda': no CUDA device is available") and err.count("\n") == 1


# ---------------------------------------------------------------- runs never lose work or clobber each other

def test_metrics_are_replaced_not_written_through_a_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").symlink_to(victim)
    model, train, held_out, vocab, data, run = tiny_run_setup()
    short = PretrainingConfig(**{**run.__dict__, "max_steps": 4})
    pretrain(out, model, train, held_out, vocab, data, short, progress=False)          # a fresh start
    assert victim.read_text() == "precious\n" and not (out / "metrics.jsonl").is_symlink()
    (out / "metrics.jsonl").unlink()
    (out / "metrics.jsonl").symlink_to(victim)
    model, *_ = tiny_run_setup()
    pretrain(out, model, train, held_out, vocab, data, short, progress=False)          # a resume
    assert victim.read_text() == "precious\n" and not (out / "metrics.jsonl").is_symlink()


def test_resume_drops_a_cut_last_line(tmp_path, monkeypatch):
    model, train, held_out, vocab, data, run = tiny_run_setup()
    full = pretrain(tmp_path / "a", model, train, held_out, vocab, data, run, progress=False)
    real_step, calls = pt.train_step, {"n": 0}

    def dying_step(*args, **kwargs):                        # the process "dies" during step 7 (checkpoint: step 4)
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt("killed")
        return real_step(*args, **kwargs)

    monkeypatch.setattr(pt, "train_step", dying_step)
    model, *_ = tiny_run_setup()
    with pytest.raises(KeyboardInterrupt):
        pretrain(tmp_path / "b", model, train, held_out, vocab, data, run, progress=False)
    monkeypatch.setattr(pt, "train_step", real_step)
    with open(tmp_path / "b" / "metrics.jsonl", "a") as f:     # killed in the middle of appending a line
        f.write('{"step": 7, "split": "train", "loss": 5.')
    model, *_ = tiny_run_setup()
    pretrain(tmp_path / "b", model, train, held_out, vocab, data, run, progress=False)
    logged = [json.loads(l) for l in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    drop = lambda rs: [{k: v for k, v in r.items() if k not in ("seconds", "tokens_per_s")} for r in rs]
    assert drop(logged) == drop(full)
    # a damaged line that is not the last one is not a kill's doing: refused, naming the file and the line
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2, "spl\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl, line 2, is not JSON"):
        training.metrics_lines(tmp_path / "d" / "metrics.jsonl", upto=10)


def test_pretrain_holds_its_folder(tmp_path):
    from bert_lit.data import FolderInUse, hold_folder
    model, train, held_out, vocab, data, run = tiny_run_setup()
    short = PretrainingConfig(**{**run.__dict__, "max_steps": 4})
    with hold_folder(tmp_path / "run"):                         # another run holds it
        with pytest.raises(FolderInUse, match="in use by another"):
            pretrain(tmp_path / "run", model, train, held_out, vocab, data, short, progress=False)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
    (tmp_path / "run" / ".checkpoint.pt.x1y2.tmp").write_bytes(b"half a checkpoint")   # a killed save's
    pretrain(tmp_path / "run", model, train, held_out, vocab, data, short, progress=False)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".lock", "checkpoint.pt", "metrics.jsonl"]


def test_resume_with_other_documents_is_refused(tmp_path):
    model, train, held_out, vocab, data, run = tiny_run_setup()
    short = PretrainingConfig(**{**run.__dict__, "max_steps": 4})
    pretrain(tmp_path, model, train, held_out, vocab, data, short, progress=False)
    reordered = [d[1:] + d[:1] for d in train]                     # the same sentences, in another order
    for train_docs, eval_docs in [(reordered, held_out), (train, [held_out[0][1:], *held_out[1:]])]:
        model, *_ = tiny_run_setup()
        with pytest.raises(ValueError, match=r"different configuration \(documents: checkpoint '[0-9a-f]{16}' vs now"):
            pretrain(tmp_path, model, train_docs, eval_docs, vocab, data, short, progress=False)


def test_a_full_disk_names_the_checkpoint_size(tmp_path, monkeypatch):
    cfg = small_config(vocab_size=4000, hidden_size=64, num_attention_heads=2)
    model = BertForPreTraining(cfg)
    docs = [[[10 + t % 3000 for t in s] for s in d] for d in coded_corpus(4, 10)]
    batches = PretrainingBatches(docs, info(4000), PretrainingDataConfig(max_seq_length=32), 4)
    opt, sched = build_optimizer(model, 1e-3, 0.01, 1, 10)
    train_step(model, opt, sched, [next(batches)])              # Adam's moments exist
    kw = dict(model=model, optimizer=opt, scheduler=sched, batches=batches, config={"x": 1})
    save_checkpoint(tmp_path / "checkpoint.pt", step=1, **kw)
    size = (tmp_path / "checkpoint.pt").stat().st_size
    assert size > 3e6                                            # so the 4 bytes written would say "1 MB"

    def full_disk(obj, f):                                      # the disk fills after a few bytes
        Path(f).write_bytes(b"PK\x03\x04")
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="no space left on") as e:
        save_checkpoint(tmp_path / "checkpoint.pt", step=2, **kw)
    need = int(re.search(r"need about (\d+) MB", str(e.value)).group(1))
    assert abs(need - size / 1e6) < 1, (need, size)           # the checkpoint's size, not the 4 bytes written
    monkeypatch.undo()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


# ---------------------------------------------------------------- the budget recipe's switches (chapter 8.8)

def test_without_nsp_the_documents_are_cut_into_single_segments():
    docs = coded_corpus(6, 20)
    data = PretrainingDataConfig(max_seq_length=24, short_seq_prob=0.0, next_sentence_prob=0.0, dupe_factor=1,
                                 masked_lm_prob=0.15, max_predictions_per_seq=4)
    instances = create_training_instances(docs, info(), data)
    assert all(x.is_random_next is None for x in instances)
    for x in instances:
        assert x.input_ids[0] == CLS and x.input_ids[-1] == SEP and x.input_ids.count(SEP) == 1
        assert set(x.token_type_ids) == {0} and len(x.input_ids) <= 24
    originals = []                                         # undo the masking: the windows tile each document
    for x in instances:
        ids = list(x.input_ids)
        for pos, label in zip(x.masked_lm_positions, x.masked_lm_labels):
            ids[pos] = label
        originals.append(ids[1:-1])
    for d, doc in enumerate(docs):
        tokens = [t for s in doc for t in s]
        mine = sorted((w for w in originals if (w[0] - 10) // 100_000 == d), key=lambda w: w[0])
        assert [t for w in mine for t in w] == tokens
        assert all(len(w) == 22 for w in mine[:-1])         # full windows but the document's last
    batch = collate(instances[:3], PAD)
    assert "next_sentence_label" not in batch
    assert PretrainingDataConfig(next_sentence_prob=0.0) and create_training_instances([docs[0]], info(), data)
    with pytest.raises(ValueError, match="next_sentence_prob=1"):
        PretrainingDataConfig(next_sentence_prob=1.0)


def test_training_without_nsp_has_no_nsp_terms(tmp_path):
    model, train, held_out, vocab, data, run = tiny_run_setup()
    data = PretrainingDataConfig(max_seq_length=32, max_predictions_per_seq=5, dupe_factor=2, next_sentence_prob=0.0)
    records = pretrain(tmp_path / "r", model, train, held_out, vocab, data, run, progress=False)
    assert all("nsp_loss" not in r and "nsp_accuracy" not in r for r in records)
    trains = [r for r in records if r["split"] == "train"]
    assert all(r["loss"] == r["mlm_loss"] for r in trains)
    assert [r["step"] for r in trains] == list(range(1, 13)) and trains[-1]["flops"] > trains[0]["flops"] > 0
    assert {"mlm_loss", "mlm_accuracy"} == {k for k in records[-1] if k not in ("step", "split")}


def test_flops_equal_the_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode
    cfg = small_config()
    torch.manual_seed(0)
    model = BertForPreTraining(cfg)
    for nsp in (True, False):
        batch = pretraining_batch(cfg.vocab_size)
        if not nsp:
            del batch["next_sentence_label"]
        with FlopCounterMode(display=False) as counter:
            model(**batch).loss.backward()
        assert counter.get_total_flops() == pt.pretraining_flops(cfg, batch)


def test_pre_layer_norm_computes_the_pre_ln_formula():
    cfg = small_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    model = perturbed(BertForPreTraining(cfg))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pt.use_pre_layer_norm(model).eval()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())      # the same weights
    assert model.config.extra["pre_layer_norm"] is True
    batch = pretraining_batch(cfg.vocab_size)
    with torch.no_grad():
        x = model.bert.embeddings(batch["input_ids"], batch["token_type_ids"])
        bias = (1 - batch["attention_mask"][:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in model.bert.encoder.layer:              # x + Attn(LN(x)); x + FFN(LN(x)), written out
            a = layer.attention
            h = a.output.LayerNorm(x)
            q, k, v = (m(h).view(4, 13, 4, 8).transpose(1, 2) for m in (a.self.query, a.self.key, a.self.value))
            p = (q @ k.transpose(-1, -2) / math.sqrt(8) + bias).softmax(-1)
            x = x + a.output.dense((p @ v).transpose(1, 2).reshape(4, 13, 32))
            h = layer.output.LayerNorm(x)
            x = x + layer.output.dense(torch.nn.functional.gelu(layer.intermediate.dense(h)))
        expected = model.bert.encoder.final_layer_norm(x)
        got = model.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         token_type_ids=batch["token_type_ids"]).last_hidden_state
    # float32, O(1) values after LayerNorm, width 32, two layers: rounding ~1e-6; 1e-5 holds with margin
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_cli_masking_options_reach_the_data_recipe():
    def configs(*options):
        a = command_line.parser().parse_args(["pretrain", "--out", "x", *options])
        return pt.command_configs(a, 300)[0]
    standard = configs()
    assert (standard.masked_lm_prob, standard.max_predictions_per_seq, standard.next_sentence_prob) == (0.15, 20, 0.5)
    budget = configs("--masked-lm-prob", "0.3", "--no-nsp")
    assert (budget.masked_lm_prob, budget.max_predictions_per_seq, budget.next_sentence_prob) == (0.3, 39, 0.0)
    assert configs("--max-seq-length", "64", "--masked-lm-prob", "0.4").max_predictions_per_seq == 27
    assert configs("--masked-lm-prob", "0.3", "--max-predictions-per-seq", "7").max_predictions_per_seq == 7


def test_a_corpus_without_blank_lines_is_told_to_separate_its_documents(tmp_path):
    corpus = tmp_path / "one.txt"
    corpus.write_text("".join(f"Sentence number {i} of the only document.\n" for i in range(50)))
    with pytest.raises(ValueError, match="single document, so none is left for the held-out evaluation: separate its documents by blank lines"):
        pt.corpus_parts(pt.read_corpus(corpus))


def test_fill_mask_takes_a_masked_lm_model_too(tmp_path):
    from bert_lit.tokenizer import BertTokenizer
    words = ["the", "cat", "sat", "on", "mat", "dog", "ran"]
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tok = BertTokenizer(vocab)
    torch.manual_seed(0)
    both = perturbed(BertForPreTraining(small_config(vocab_size=12)))
    alone = BertForMaskedLM(both.config)
    alone.load_state_dict(both.state_dict(), strict=False)
    text = "the cat [MASK] on the [MASK]"
    assert pt.fill_mask(alone, tok, text, top_k=3) == pt.fill_mask(both, tok, text, top_k=3)
    assert len(pt.fill_mask(alone, tok, text, top_k=3)) == 2
