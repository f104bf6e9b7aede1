"""Chapter 7: many processes and mixed precision in the training loops of chapters 8 and 9.

Two processes under torchrun (gloo, CPU) give the numbers of one process with the same global batch; a run killed in
one of its processes resumes to exactly the uninterrupted run; bfloat16 and float16 (with gradient scaling) train."""
import sys
from pathlib import Path

import pytest
import torch

import bert_lit.pretraining as pt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import ddp_worker  # noqa: E402
from ddp_worker import launch as run  # noqa: E402


def assert_same_run(a, b, atol):
    for k in a["weights"]:
        torch.testing.assert_close(a["weights"][k], b["weights"][k], atol=atol, rtol=0, msg=k)
    assert [r["step"] for r in a["records"]] == [r["step"] for r in b["records"]]
    for r, s in zip(a["records"], b["records"]):
        assert r.keys() == s.keys()
        for key in ("loss", "mlm_loss", "nsp_loss", "mlm_accuracy", "nsp_accuracy"):
            if key in r:
                assert abs(r[key] - s[key]) <= 1e-6 * max(1, abs(r[key])), (r["step"], key, r[key], s[key])


def test_two_processes_pretrain_like_one(tmp_path):
    "The two processes never call setup_process: pretrain() joins the process group itself (as in a user's script)."
    one = run(tmp_path / "one", "pretrain")
    two = run(tmp_path / "two", "pretrain", "--no-setup", processes=2)
    assert (one["world"], two["world"]) == (1, 2)
    # micro-batches of 4 split 2 + 2, gradient accumulation over 2 (no all-reduce on the first), 6 AdamW steps
    assert_same_run(one, two, atol=1e-6)
    assert len([r for r in two["records"] if r["split"] == "validation"]) == 2    # process 0 evaluated
    lines = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 8                                                         # written once, by process 0
    ckpt = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 6 and len(ckpt["rng"]) == 2


def test_two_processes_finetune_like_one(tmp_path):
    """Token classification (loss over labelled tokens) and sentence classification; one batch has a single row.
    The two processes never call setup_process: fit() itself joins the process group (as in a user's own script)."""
    one = run(tmp_path / "one", "finetune")
    two = run(tmp_path / "two", "finetune", "--no-setup", processes=2)
    assert two["world"] == 2
    for name in ("tokens", "sentences"):
        assert_same_run({"weights": one["weights"][name], "records": one["records"][name]},
                        {"weights": two["weights"][name], "records": two["records"][name]}, atol=1e-6)


def test_killed_process_resumes_exactly(tmp_path):
    "With dropout: each process restores its own random state, so the resumed run is the uninterrupted one, bit for bit."
    whole = run(tmp_path / "whole", "pretrain", "--dropout", processes=2)
    run(tmp_path / "cut", "pretrain", "--dropout", "--die-at-step", "5", processes=2, expect_ok=False)
    ckpt = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 3
    assert not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])   # each process drew its own dropout
    resumed = run(tmp_path / "cut", "pretrain", "--dropout", processes=2)
    for k in whole["weights"]:
        assert torch.equal(whole["weights"][k], resumed["weights"][k]), k
    def without_times(name):
        return [line.split('"tokens_per_s"')[0].split('"seconds"')[0]          # the wall-clock fields end a line
                for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    assert without_times("cut") == without_times("whole")     # the steps after the checkpoint are logged once


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_training(tmp_path, precision):
    "Autocast is really on (the losses differ from fp32), the losses stay close, and fp16's GradScaler is checkpointed."
    torch.set_num_threads(1)
    records = {}
    for p in ("fp32", precision):
        docs = ddp_worker.documents()
        vocab = pt.VocabInfo(211, 2, 3, 4, 0, frozenset())
        data = pt.PretrainingDataConfig(max_seq_length=32, max_predictions_per_seq=5, dupe_factor=2)
        cfg = pt.PretrainingConfig(batch_size=8, learning_rate=3e-3, warmup_steps=2, max_steps=4, log_every=1,
                                   eval_every=4, eval_batches=1, save_every=4, precision=p)
        torch.manual_seed(0)
        model = pt.BertForPreTraining(ddp_worker.config(False))
        records[p] = [r["loss"] for r in pt.pretrain(tmp_path / p, model, docs[:8], docs[8:], vocab, data, cfg,
                                                     progress=False) if r["split"] == "train"]
        assert next(model.parameters()).dtype == torch.float32                  # float32 master weights
    diffs = [abs(a - b) for a, b in zip(records["fp32"], records[precision])]
    assert 0 < max(diffs) < 0.02, diffs
    scaler = torch.load(tmp_path / precision / "checkpoint.pt", weights_only=True)["scaler"]
    assert (scaler is not None) == (precision == "fp16")
    if scaler:
        assert scaler["scale"] > 1


def test_precision_is_checked():
    with pytest.raises(ValueError, match="precision='fp8'.*fp32"):
        pt.PretrainingConfig(precision="fp8")
    from bert_lit.finetuning import FinetuneConfig
    with pytest.raises(ValueError, match="precision='half'"):
        FinetuneConfig(precision="half")
