"""Chapter 11: fast paths equal the exact ones. The unpadded forward against the padded model and against
transformers, on real sentences with the real MiniLM weights: fp32 within the error model of conftest.fp32_atol
(about 2e-5 for MiniLM's hidden states), fp64 within 1e-10."""
import random

import pytest
import torch
import transformers
from conftest import fp32_atol

from bert_lit.data import minilm_checkpoint, vader_sentences
from bert_lit.encoder import BertConfig, BertModel
from bert_lit.speed import unpadded_forward
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
def test_unpadded_equals_padded_and_transformers(setup, dtype):
    path, batches = setup
    ours = BertModel.from_pretrained(path, dtype=dtype)
    theirs = transformers.BertModel.from_pretrained(path, attn_implementation="eager", dtype=dtype).eval()
    c = ours.config
    with torch.inference_mode():
        for b in batches:
            keep = b["attention_mask"].bool()
            u = unpadded_forward(ours, b["input_ids"], b["attention_mask"], b["token_type_ids"])
            tol = fp32_atol(u[keep], c.intermediate_size, c.num_hidden_layers) if dtype == torch.float32 else 1e-10
            assert u.dtype == dtype and u.shape == (*b["input_ids"].shape, 384)
            torch.testing.assert_close(u[keep], ours(**b).last_hidden_state[keep], atol=tol, rtol=0)
            torch.testing.assert_close(u[keep], theirs(**b).last_hidden_state[keep], atol=tol, rtol=0)
            assert (u[~keep] == 0).all()


def test_unpadded_without_padding_and_without_token_types():
    "A batch with no padding at all, token_type_ids omitted: the same as the model (a random one, 2 layers)."
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=64)).eval()
    ids = torch.randint(1, 50, (3, 9))
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        p = model(ids, mask).last_hidden_state
        torch.testing.assert_close(unpadded_forward(model, ids, mask), p, atol=fp32_atol(p, 64, 2), rtol=0)
        mask[1, 4:] = 0
        mask[2, 1:] = 0                                      # a sequence of one token
        u, p = unpadded_forward(model, ids, mask), model(ids, mask).last_hidden_state
        torch.testing.assert_close(u[mask.bool()], p[mask.bool()], atol=fp32_atol(p, 64, 2), rtol=0)


def test_bench_table_reads_the_committed_results():
    "bench/results.py (chapter 11's table): every benchmark's row, numbers read whole (a thousands comma kept, no trailing one)."
    import sys
    from pathlib import Path
    bench = Path(__file__).resolve().parents[1] / "bench"
    sys.path.insert(0, str(bench))
    import results
    rows = results.bench_table(bench / "cpu-results.txt")
    assert len(rows) == 16 and all(len(r) == 4 for r in rows)
    lines = (bench / "cpu-results.txt").read_text()
    for what, measured, value, target in rows:
        assert value in lines and value[-1].isdigit(), (what, value)     # was '631,' for 'bert_lit 631, transformers'
    assert [v for _, m, v, _ in rows if m == "bert_lit tokens/s"] == ["631", "4,556", "749"]
