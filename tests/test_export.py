"""Issue 16, part 5 (chapter 11.8): BertModel and every head export to ONNX with dynamic batch and sequence axes
and to torch.export; the exported graphs compute what the eager model computes; eager mode keeps its input checks.

Tolerance. ONNX Runtime (or the exported program) and eager PyTorch compute the same float32 function with
different kernels (other summation orders, fused LayerNorm / GELU / attention), so they differ by rounding only.
The error model is conftest.fp32_atol's: c * sqrt(L * K) * eps * rms(reference), K the longest sum of a layer (the
feed-forward width), L the layers, plus one for a head's own product; the relative error of a head's logits is that
of the hidden states it reads, so the same model scales with rms(logits). That is about 5e-6 for the tiny model's
hidden states and 2e-5 for MiniLM's, inside the 1e-4 asked for (asserted too); the differences measured are 5-20x
below, while a lost mask, a wrong weight or a frozen axis is orders of magnitude above. Outputs are compared at real
tokens only (what a model computes at padding is not an output).

Defects covered (each test failed before: bert_lit.speed had no export_program / export_onnx, so there was no way
to get an ONNX file with dynamic axes and transformers' output names, atomically, without onnx at import time)."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import fp32_atol

from bert_lit.encoder import BertConfig, BertModel
from bert_lit.finetuning import BertForSequenceClassification, BertForTokenClassification
from bert_lit.pretraining import BertForMaskedLM, BertForPreTraining
from bert_lit.qa import BertForQuestionAnswering
from bert_lit.speed import export_onnx, export_program

ort = pytest.importorskip("onnxruntime")     # a dev dependency (pyproject.toml); not needed by `import bert_lit`
onnx = pytest.importorskip("onnx")

TINY = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                  max_position_embeddings=32)
INPUTS = ["input_ids", "attention_mask", "token_type_ids"]
# (model, the output names of transformers' ONNX export of that task): written out, not read from bert_lit
HEADS = [(lambda c: BertModel(c), ["last_hidden_state", "pooler_output"]),
         (lambda c: BertForSequenceClassification(c, num_labels=3), ["logits"]),
         (lambda c: BertForTokenClassification(c, num_labels=5), ["logits"]),
         (lambda c: BertForQuestionAnswering(c), ["start_logits", "end_logits"]),
         (lambda c: BertForMaskedLM(c), ["logits"]),
         (lambda c: BertForPreTraining(c), ["prediction_logits", "seq_relationship_logits"])]
HEAD_IDS = ["BertModel", "SequenceClassification", "TokenClassification", "QuestionAnswering", "MaskedLM",
            "PreTraining"]


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = 1, 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def tiny_batch(B, T, seed):
    "Random ids with the second half of the first row padded, segments 0 then 1."
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, TINY.vocab_size, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[0, T // 2 + 1:] = 0
    ids[mask == 0] = 0
    types = (torch.arange(T) >= T // 3).long().expand(B, T).clone()
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def assert_same(got, ref, batch, config, layers_extra=1):
    "got (NumPy or torch) equals the eager reference at real tokens, within the error model of the docstring."
    got = torch.as_tensor(np.asarray(got)) if not isinstance(got, torch.Tensor) else got
    assert got.shape == ref.shape, (got.shape, ref.shape)
    keep = batch["attention_mask"].bool()
    if ref.dim() >= 2 and ref.shape[:2] == keep.shape:   # per-token outputs: real tokens only
        got, ref = got[keep], ref[keep]
    tol = fp32_atol(ref, config.intermediate_size, config.num_hidden_layers + layers_extra)
    assert tol < 1e-4
    torch.testing.assert_close(got, ref, atol=tol, rtol=0)


# the heads whose outputs differ in kind (token-classification and masked LM are these with other widths)
@pytest.mark.parametrize("build, names", [HEADS[k] for k in (0, 1, 3, 5)], ids=[HEAD_IDS[k] for k in (0, 1, 3, 5)])
def test_onnx_export_of_each_head_runs_in_onnx_runtime(build, names, tmp_path):
    torch.manual_seed(0)
    model = build(TINY)                                   # left in training mode: export must not change it
    opset = 20 if isinstance(model, BertModel) else None  # the opset asked for is the one written
    path = export_onnx(model, tmp_path / "model.onnx", opset=opset)
    if opset:
        assert {o.domain: o.version for o in onnx.load(str(path)).opset_import}[""] == 20
    assert model.training and path == tmp_path / "model.onnx" and list(tmp_path.iterdir()) == [path]  # no temp left
    s = session(path)
    assert [i.name for i in s.get_inputs()] == INPUTS and [o.name for o in s.get_outputs()] == names
    assert all(i.shape == ["batch_size", "sequence_length"] for i in s.get_inputs())
    model.eval()
    for B, T, seed in [(3, 5, 1), (2, 17, 2)]:          # two shapes from one file: the axes are really dynamic
        batch = tiny_batch(B, T, seed)
        with torch.no_grad():
            ref = model(**batch)
        got = s.run(None, {k: v.numpy() for k, v in batch.items()})
        for name, value in zip(names, got):
            assert_same(value, ref[name], batch, TINY)


# MiniLM's ONNX file against bert_lit on two real padded batches: chapter 11 runs it (nbval checks the bound it prints)


@pytest.mark.parametrize("build, names", [HEADS[0], HEADS[5]], ids=[HEAD_IDS[0], HEAD_IDS[5]])
def test_torch_export_program_equals_eager_on_other_shapes(build, names):
    torch.manual_seed(0)
    model = build(TINY).eval()
    exported = export_program(model, max_length=20).module()
    for B, T, seed in [(3, 5, 1), (1, 20, 2)]:           # recorded on an unpadded (2, 8): padding applied later
        batch = tiny_batch(B, T, seed)
        with torch.no_grad():
            got, ref = exported(*(batch[k] for k in INPUTS)), model(**batch)
        assert type(got) is type(ref) and list(got) == names
        for name in names:
            assert_same(got[name], ref[name], batch, TINY)
    with pytest.raises(AssertionError, match="<= 20"):     # the sequence axis ends at max_length
        exported(*(tiny_batch(1, 21, 3)[k] for k in INPUTS))


def test_eager_checks_still_raise_after_exporting():
    torch.manual_seed(0)
    model = BertModel(TINY).eval()
    export_program(model)                                       # export_onnx records the same way
    assert not torch.compiler.is_exporting() and not torch.jit.is_tracing()
    ids = torch.tensor([[2, 150, 3]])
    for kwargs, error, words in [
            ({"input_ids": ids}, ValueError, "input_ids contains 150, outside [0, 100); the ids must come from"),
            ({"input_ids": torch.ones(1, 40, dtype=torch.long)}, ValueError,
             "sequence of 40 tokens exceeds max_position_embeddings=32"),
            ({"input_ids": ids.float()}, TypeError, "input_ids must be a tensor of integer ids (torch.long)"),
            ({"input_ids": ids.clamp(max=9), "token_type_ids": torch.tensor([[0, 2, 0]])}, ValueError,
             "token_type_ids contains 2, outside [0, 2)"),
            ({"input_ids": ids.clamp(max=9), "attention_mask": torch.ones(1, 2)}, ValueError,
             "attention_mask has shape (1, 2) but input_ids has shape (1, 3)")]:
        with pytest.raises(error) as e:
            model(**kwargs)
        assert str(e.value).startswith(words), str(e.value)


def test_bad_max_length_is_refused_and_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model, path = BertModel(TINY), tmp_path / "m.onnx"
    path.write_text("the previous file")
    for bad in (1, 33):
        with pytest.raises(ValueError, match=rf"max_length={bad} must be in \[2, max_position_embeddings=32\]"):
            export_onnx(model, path, max_length=bad)

    def half_written(self, destination, **kwargs):
        open(destination, "wb").write(b"\x08\x07 a truncated ONNX file")
        raise OSError("disk gone")
    monkeypatch.setattr(torch.onnx.ONNXProgram, "save", half_written)
    with pytest.raises(OSError, match="disk gone"):
        export_onnx(model, path, max_length=8)
    assert path.read_text() == "the previous file" and list(tmp_path.iterdir()) == [path]


def test_onnx_is_needed_only_by_export_onnx(monkeypatch):
    code = ("import sys, bert_lit, bert_lit.speed; from bert_lit import BertModel; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'onnxruntime', 'onnxscript')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
    monkeypatch.setitem(sys.modules, "onnxscript", None)          # as if not installed
    with pytest.raises(ImportError, match="export_onnx needs the packages onnx and onnxscript.*pip install onnx"):
        export_onnx(BertModel(TINY), "never-written.onnx")
