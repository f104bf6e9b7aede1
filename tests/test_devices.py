"""Chapter 11: the model on a GPU equals the model on the CPU; torch.compile changes nothing but speed.

The CUDA tests skip (with the reason shown by `pytest -rs`) on a machine without a GPU; `bash bench/gpu.sh` runs them
where there is one."""
import random
import subprocess
import sys

import pytest
import torch
from conftest import fp32_atol

from bert_lit.data import minilm_checkpoint, vader_sentences
from bert_lit.encoder import BertConfig, BertModel
from bert_lit.pretraining import BertForPreTraining, train_step
from bert_lit.training import autocast, build_optimizer
from bert_lit.tokenizer import BertTokenizer

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)")


@pytest.fixture(scope="module")
def minilm():
    path = minilm_checkpoint()
    tok = BertTokenizer(path)
    texts = [r.text for r in random.Random(3).sample(vader_sentences(), 32)]
    return BertModel.from_pretrained(path).eval(), tok(texts, padding=True, return_tensors="pt")


def tiny_pretraining_batch(B=8, T=24, V=211):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, V, (B, T), generator=g)
    mask = (torch.arange(T) < torch.randint(T // 2, T + 1, (B, 1), generator=g)).long()
    labels = torch.where((torch.rand(B, T, generator=g) < 0.15) & mask.bool(), ids, -100)
    labels[:, 1] = ids[:, 1]
    return dict(input_ids=ids * mask, attention_mask=mask, token_type_ids=torch.zeros_like(ids), labels=labels,
                next_sentence_label=torch.randint(0, 2, (B,), generator=g))


def test_compiled_model_equals_eager():
    "torch.compile (inductor, generated C++ on the CPU) of a small BertModel: the same hidden states, with padding."
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=211, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=64, max_position_embeddings=64)).eval()
    compiled = torch.compile(model)
    ids = torch.randint(5, 211, (4, 16), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    with torch.no_grad():
        for m in (mask, torch.ones_like(ids)):                     # with and without padding
            want = model(input_ids=ids, attention_mask=m).last_hidden_state
            got = compiled(input_ids=ids, attention_mask=m).last_hidden_state
            # inductor fuses and reorders the sums: float32 rounding only (conftest.fp32_atol's error model)
            torch.testing.assert_close(got[m.bool()], want[m.bool()], atol=fp32_atol(want, 64, 2), rtol=0)
        with pytest.raises(ValueError, match="outside"):          # the input checks still run
            compiled(input_ids=ids + 1000)


def test_cuda_skips_cleanly_without_a_gpu():
    "The CUDA tests of this file are skipped, not failed, when torch sees no GPU (run in a fresh process)."
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the CUDA tests run instead")
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", __file__, "-k", "on_gpu", "-p", "no:cacheprovider"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and " skipped" in p.stdout and "needs a CUDA GPU" in p.stdout, p.stdout[-2000:]


@cuda
def test_forward_on_gpu_equals_cpu(minilm):
    model, batch = minilm
    keep = batch["attention_mask"].bool()
    with torch.inference_mode():
        want = model(**batch).last_hidden_state
        gpu = BertModel.from_pretrained(minilm_checkpoint()).eval().cuda()
        got = gpu(**{k: v.cuda() for k, v in batch.items()}).last_hidden_state
        padded = gpu(**{k: v.cuda() for k, v in batch.items()}, skip_padding=False).last_hidden_state
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu()[keep], want[keep], atol=5e-5, rtol=0)
    torch.testing.assert_close(padded.cpu()[keep], want[keep], atol=5e-5, rtol=0)   # default: packed; padded too


@cuda
def test_bf16_on_gpu_close_to_fp32(minilm):
    model, batch = minilm
    gpu = BertModel.from_pretrained(minilm_checkpoint()).eval().cuda()
    batch = {k: v.cuda() for k, v in batch.items()}
    keep = batch["attention_mask"].bool()
    with torch.inference_mode():
        a = gpu(**batch).last_hidden_state[keep]
        with autocast("cuda", "bf16"):
            b = gpu(**batch).last_hidden_state[keep].float()
    assert ((a - b).norm() / a.norm()) < 0.01


@cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_step_on_gpu(precision):
    "A pretraining step on the GPU gives the CPU's loss (fp32) or close to it (bf16, fp16 with a GradScaler)."
    losses = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        model = BertForPreTraining(BertConfig(vocab_size=211, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                              intermediate_size=64, max_position_embeddings=64,
                                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)).to(device)
        opt, sched = build_optimizer(model, 1e-3, 0.01, 0, 10)
        scaler = torch.amp.GradScaler(device) if precision == "fp16" and device == "cuda" else None
        p = precision if device == "cuda" else "fp32"
        losses[device] = [train_step(model, opt, sched, [tiny_pretraining_batch()], 1.0, p, scaler)["loss"]
                          for _ in range(3)]
    tol = 1e-4 if precision == "fp32" else 3e-2
    assert all(abs(a - b) < tol for a, b in zip(losses["cpu"], losses["cuda"])), losses
