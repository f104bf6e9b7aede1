"""Chapter 9: task heads (parity with transformers on the real MiniLM weights), the fine-tuning loop (resume),
word-label alignment, bad input and the command line."""
import importlib
import json
import math
import os
import random
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import transformers
from conftest import EPS32, fp32_atol

from bert_lit.data import UNIVERSAL_TAGS, FolderInUse, brown, hold_folder, minilm_checkpoint, vader_sentences
from bert_lit.encoder import BertConfig, BertModel
from bert_lit.finetuning import (BertForSequenceClassification, BertForTokenClassification,
                                 FinetuneConfig, classification_loss, classify, collate, encode_texts, encode_words, fit, labels_of,
                                 predict, tag, tag_words, with_labels, name_bio, name_spans,
                                 most_frequent_tag, word_accuracy, macro_f1, accuracy, bio_spans, entity_scores)
from bert_lit.pretraining import BertForPreTraining
from bert_lit.tokenizer import BertTokenizer


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def minilm():
    return minilm_checkpoint()


@pytest.fixture(scope="module")
def tokenizer(minilm):
    return BertTokenizer(minilm)


@pytest.fixture(scope="module")
def sentences():
    rows = vader_sentences()
    return [r.text for r in random.Random(0).sample(rows, 12)]


def perturb_head(model, seed):
    "A head with non-trivial weights (a fresh head is nearly zero, which would hide a transposed matrix)."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("bert."):
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return model


def load_pair(ours_cls, theirs_cls, folder, **kw):
    "Our head model from the real MiniLM checkpoint, and transformers' model with exactly the same weights."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = perturb_head(ours_cls.from_pretrained(folder, **kw), 0).eval()
    hf_cfg = transformers.BertConfig(attn_implementation="eager",
                                     **{k: v for k, v in ours.config.to_dict().items() if k != "model_type"})
    theirs = theirs_cls(hf_cfg).eval()
    result = theirs.load_state_dict(ours.state_dict(), strict=False)
    assert not result.unexpected_keys and not [k for k in result.missing_keys if "position_ids" not in k]
    return ours, theirs


# ---------------------------------------------------------------- parity with transformers
# MiniLM's real weights, real sentences, padded batches with pairs; compared at real tokens, twice:
# * in float32, within conftest.fp32_atol: the rounding error of L layers whose longest sums have K terms (the
#   feed-forward width), c·sqrt(L·K)·eps32·rms(output). Two correct float32 implementations differ only by the
#   order of their sums (CPU kernel set, thread count): measured 0.04x the bound (AVX2), 0.1x (AVX-512, where a
#   fixed 1e-5 failed at 1.8e-5). A wrong head, mask or scale differs by 1e-2 or more: far above it.
# * in float64 (both models converted), within the same model with eps64: the two must then agree to ~1e-13, so
#   even a bug too small to show in float32 (a LayerNorm eps of 1e-5 instead of 1e-12, say) fails.
# The losses: |d loss / d logits| summed over a row is at most 2 for (binary) cross-entropy, so a loss may differ
# by 2x the logits' bound; for the squared error, 2·|z - y| times it.
EPS64 = 2.0 ** -52


def batch_of(tokenizer, sentences):
    return tokenizer(sentences[:6], sentences[6:12], padding=True, return_tensors="pt")


def assert_parity(ours, theirs, inputs, pick, loss_factor=2.0):
    "pick(output) -> {name: tensor, ..., 'loss': scalar}: equal in fp32 and in fp64 within the error model above."
    cfg = ours.config
    with torch.no_grad():
        a32, b32 = pick(ours(**inputs)), pick(theirs(**inputs))
        wide = {k: v.double() if v.is_floating_point() else v for k, v in inputs.items()}
        a64, b64 = pick(ours.double()(**wide)), pick(theirs.double()(**wide))
    ours.float(), theirs.float()
    atol = max(fp32_atol(a64[k], cfg.intermediate_size, cfg.num_hidden_layers) for k in a64 if k != "loss")
    for k in a32:
        factor = loss_factor if k == "loss" else 1.0
        torch.testing.assert_close(a32[k], b32[k], atol=factor * atol, rtol=0, msg=lambda m: f"{k}, float32: {m}")
        torch.testing.assert_close(a64[k], b64[k], atol=factor * atol * EPS64 / EPS32, rtol=0,
                                   msg=lambda m: f"{k}, float64: {m}")


@pytest.mark.parametrize("problem", ["single_label_classification", "multi_label_classification", "regression"])
def test_sequence_classification_parity(minilm, tokenizer, sentences, problem):
    labels = ["rating"] if problem == "regression" else ["a", "b", "c"]
    ours, theirs = load_pair(BertForSequenceClassification, transformers.BertForSequenceClassification, minilm,
                             labels=labels, problem_type=problem)
    enc = batch_of(tokenizer, sentences)
    g = torch.Generator().manual_seed(1)
    y = {"single_label_classification": torch.randint(0, 3, (6,), generator=g),
         "multi_label_classification": torch.randint(0, 2, (6, 3), generator=g).float(),
         "regression": torch.randn(6, generator=g) * 2}[problem]
    assert theirs.config.problem_type == problem
    loss_factor = 2.0
    if problem == "regression":                        # d/dz (z - y)^2 = 2 (z - y)
        with torch.no_grad():
            loss_factor = 2 * max(1.0, float((ours(**enc).logits.squeeze(-1) - y).abs().max()))
    assert_parity(ours, theirs, {**enc, "labels": y}, lambda o: {"logits": o.logits, "loss": o.loss}, loss_factor)


def test_token_classification_parity(minilm, tokenizer, sentences):
    ours, theirs = load_pair(BertForTokenClassification, transformers.BertForTokenClassification, minilm,
                             labels=[f"T{i}" for i in range(7)])
    enc = batch_of(tokenizer, sentences)
    real = enc["attention_mask"].bool()
    y = torch.randint(0, 7, enc["input_ids"].shape, generator=torch.Generator().manual_seed(2))
    y[~real] = -100
    y[:, 0] = -100
    assert ours.bert.pooler is None
    assert_parity(ours, theirs, {**enc, "labels": y}, lambda o: {"logits": o.logits[real], "loss": o.loss})


def test_fine_tuned_classifier_round_trip_with_transformers(minilm, tokenizer, sentences, tmp_path):
    "save_pretrained -> transformers loads it with the label names and gives the same logits; and back."
    ours, _ = load_pair(BertForSequenceClassification, transformers.BertForSequenceClassification, minilm,
                        labels=["negative", "positive"])
    ours.save_pretrained(tmp_path / "clf")
    theirs = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "clf", attn_implementation="eager").eval()
    assert theirs.config.id2label == {0: "negative", 1: "positive"}
    enc = batch_of(tokenizer, sentences)
    assert_parity(ours, theirs, enc, lambda o: {"logits": o.logits})
    theirs.save_pretrained(tmp_path / "back")
    back = BertForSequenceClassification.from_pretrained(tmp_path / "back").eval()
    assert labels_of(back.config) == ["negative", "positive"] and not back.load_report.newly_initialized
    assert_parity(back, theirs, enc, lambda o: {"logits": o.logits})


def check_head_from_a_pretraining_checkpoint(cls, folder):
    "Chapter 8's checkpoint: the encoder loads, the MLM/NSP heads are ignored, the new head is reported as new."
    cfg = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=64)
    torch.manual_seed(0)
    BertForPreTraining(cfg).save_pretrained(folder)
    with pytest.warns(UserWarning, match="random initialisation"):
        m = cls.from_pretrained(folder)
    r = m.load_report
    assert not r.missing and not r.unexpected and not r.mismatched
    assert any(k.startswith("cls.predictions") for k in r.ignored)
    assert all(not k.startswith("bert.") for k in r.newly_initialized) and r.newly_initialized
    return r


def test_heads_from_a_pretraining_checkpoint(tmp_path):
    for cls in (BertForSequenceClassification, BertForTokenClassification):   # QA: tests/test_qa.py
        check_head_from_a_pretraining_checkpoint(cls, tmp_path / cls.__name__)


# ---------------------------------------------------------------- bad input
def test_bad_labels_are_refused(minilm, tokenizer, sentences):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = BertForSequenceClassification.from_pretrained(minilm, labels=["neg", "pos"]).eval()
        tagger = BertForTokenClassification.from_pretrained(minilm, labels=["A", "B", "C"]).eval()
    enc = tokenizer(sentences[:2], padding=True, return_tensors="pt")
    T = enc["input_ids"].shape[1]
    with pytest.raises(ValueError, match=r"contains 2, outside \[0, 2\).*with_labels"):
        clf(**enc, labels=torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="contains -1"):
        clf(**enc, labels=torch.tensor([0, -1]))
    with pytest.raises(ValueError, match=r"shape \(3,\), expected \(2,\)"):
        clf(**enc, labels=torch.tensor([0, 1, 1]))
    with pytest.raises(TypeError, match="float labels"):
        BertForSequenceClassification(clf.config, labels=["r"], problem_type="regression")(**enc, labels=torch.tensor([1, 0]))
    with pytest.raises(TypeError, match="integer ids"):
        classification_loss(torch.zeros(2, 2), torch.tensor([0.5, 1.0]), "single_label_classification")
    with pytest.raises(ValueError, match="multi-label labels must have shape"):
        clf(**enc, labels=torch.tensor([0.5, 1.0]))               # float labels mean multi-label, as in transformers
    y = torch.full((2, T), -100)
    y[0, 1] = 3
    with pytest.raises(ValueError, match=r"contains 3, outside \[0, 3\).*-100"):
        tagger(**enc, labels=y)


def test_label_count_mismatch_with_a_saved_head(minilm, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        BertForSequenceClassification.from_pretrained(minilm, labels=["neg", "pos"]).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"classifier.weight: model expects \(3, 384\), checkpoint has \(2, 384\)"):
        BertForSequenceClassification.from_pretrained(tmp_path, labels=["a", "b", "c"])


def test_bad_texts_and_words(tokenizer):
    for bad in ["", "   ", None]:
        with pytest.raises(ValueError, match="needs some text"):
            encode_texts(tokenizer, ["fine", bad])
    with pytest.raises(ValueError, match="2 labels for 1 texts"):
        encode_texts(tokenizer, ["fine"], [0, 1])
    with pytest.raises(ValueError, match="no words"):
        encode_words(tokenizer, [])
    with pytest.raises(ValueError, match="more than max_length=8.*tag_words"):
        encode_words(tokenizer, "one two three four five six seven eight".split(), max_length=8)
    with pytest.raises(ValueError, match="1 labels for 2 words"):
        encode_words(tokenizer, ["a", "b"], [0])
    with pytest.raises(ValueError):
        with_labels(BertConfig(), [])
    with pytest.raises(ValueError, match="distinct"):
        with_labels(BertConfig(), ["a", "a"])
    with pytest.raises(ValueError, match="no training examples"):
        fit(BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
                                                     num_attention_heads=1, intermediate_size=8)), [])
    with pytest.raises(ValueError, match="warmup_ratio"):
        FinetuneConfig(warmup_ratio=1.0)


# ---------------------------------------------------------------- word-label alignment
def test_encode_words_labels_first_subtoken_only(tokenizer):
    docs = brown()[:3]
    for s in [s for d in docs for s in d.sentences][:200]:
        labels = list(range(len(s.words)))
        try:
            e = encode_words(tokenizer, s.words, labels)
        except ValueError:
            continue
        # the label sequence, read back at each word's first sub-token, is the word labels in order
        firsts = [i for i, w in enumerate(e["word_ids"]) if w is not None and e["word_ids"][i - 1] != w]
        assert [e["labels"][i] for i in firsts] == labels
        assert [e["word_ids"][i] for i in firsts] == list(range(len(s.words)))
        assert sum(l != -100 for l in e["labels"]) == len(s.words)
        # the ids are the tokenizer's own ids for each word, in order (an independent computation)
        expected = [tokenizer.cls_token_id] + [i for w in s.words for i in (tokenizer.encode(w)[1:-1] or [tokenizer.unk_token_id])] \
                   + [tokenizer.sep_token_id]
        assert e["input_ids"] == expected


def test_tag_words_covers_long_sentences(tokenizer):
    torch.manual_seed(0)
    cfg = with_labels(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=16, max_position_embeddings=32), "xyz")
    model = BertForTokenClassification(cfg).eval()
    words = [w for d in brown()[:1] for s in d.sentences for w in s.words][:150]
    out = tag_words(model, tokenizer, [words, words[:5]], max_length=32)
    assert len(out[0]) == 150 and len(out[1]) == 5 and None not in out[0]
    # in pieces or whole, a word's tag depends only on its piece; the first piece agrees with tagging it alone
    first = tag_words(model, tokenizer, [words[:5]], max_length=32)[0]
    assert out[1] == first
    pairs = tag(model, tokenizer, "Mr. O'Neil's car, a  Ford\tCortina.")
    assert [w for w, _ in pairs] == ["Mr", ".", "O", "'", "Neil", "'", "s", "car", ",", "a", "Ford", "Cortina", "."]


# ---------------------------------------------------------------- the loop: exact resume
def tiny_classifier(tokenizer, seed=0):
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(seed)
    return BertForSequenceClassification(cfg, labels=["neg", "pos"])


def tiny_data(tokenizer, n=40):
    rows = random.Random(3).sample(vader_sentences(), n)
    return encode_texts(tokenizer, [r.text for r in rows], [r.label for r in rows], max_length=48)


def test_kill_and_resume_equals_uninterrupted(tokenizer, tmp_path):
    data = tiny_data(tokenizer)
    cfg = FinetuneConfig(epochs=2, batch_size=8, learning_rate=1e-3, save_every=2, log_every=1)
    whole = tiny_classifier(tokenizer)
    fit(whole, data, cfg, evaluate=lambda m: {"x": 1.0}, out_dir=tmp_path / "a", progress=False)

    calls = []
    def dies_once(model):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt          # killed at the end of epoch 1 (step 5), after the checkpoint of step 4
        return {"x": 1.0}
    part = tiny_classifier(tokenizer)
    with pytest.raises(KeyboardInterrupt):
        fit(part, data, cfg, evaluate=dies_once, out_dir=tmp_path / "b", progress=False)
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["step"] == 4
    resumed = tiny_classifier(tokenizer, seed=123)     # different initial weights: everything must come from the checkpoint
    fit(resumed, data, cfg, evaluate=dies_once, out_dir=tmp_path / "b", progress=False)
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    read = lambda d: (tmp_path / d / "metrics.jsonl").read_text().splitlines()
    strip = lambda lines: [{k: v for k, v in json.loads(l).items() if k != "seconds"} for l in lines]
    assert strip(read("a")) == strip(read("b"))
    assert len(strip(read("a"))) == 10 + 2


def test_resume_with_other_data_or_settings_is_refused(tokenizer, tmp_path):
    data = tiny_data(tokenizer, 16)
    cfg = FinetuneConfig(epochs=1, batch_size=8, log_every=1)
    fit(tiny_classifier(tokenizer), data, cfg, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="different data"):
        fit(tiny_classifier(tokenizer), data[:-1], cfg, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="different config"):
        fit(tiny_classifier(tokenizer), data, FinetuneConfig(epochs=1, batch_size=8, learning_rate=1e-4), out_dir=tmp_path,
            progress=False)


def test_training_lowers_the_loss_and_predict_keeps_order(tokenizer):
    data = tiny_data(tokenizer, 64)
    model = tiny_classifier(tokenizer)
    records = fit(model, data, FinetuneConfig(epochs=4, batch_size=16, learning_rate=3e-3, log_every=4), progress=False)
    assert records[-1]["loss"] < records[0]["loss"]
    out = predict(model, data, batch_size=5)
    with torch.no_grad():
        for e, z in zip(data[:10], out):
            ref = model(input_ids=torch.tensor([e["input_ids"]]), token_type_ids=torch.tensor([e["token_type_ids"]])).logits[0]
            # the same model, padded in a batch vs alone: float32 rounding only (conftest.fp32_atol)
            torch.testing.assert_close(z, ref, atol=fp32_atol(ref, 32, 2), rtol=0)
    got = classify(model, tokenizer, ["good", "bad movie"])
    assert [g["label"] for g in got] == [["neg", "pos"][int(z.argmax())] for z in predict(model, encode_texts(tokenizer, ["good", "bad movie"]))]


# ---------------------------------------------------------------- task data and metrics
def test_metrics_by_hand():
    assert accuracy([1, 0, 1], [1, 1, 1]) == pytest.approx(2 / 3)
    assert macro_f1([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx((2 / 3 + 0.8) / 2)
    with pytest.raises(ValueError, match="2 predictions for 3"):
        accuracy([1, 0], [1, 0, 1])
    base = most_frequent_tag([type("S", (), {"words": ("the", "run", "run", "The"), "coarse": ("DET", "VERB", "NOUN", "DET")})()])
    assert base(["The", "THE", "run", "unknown"]) == ["DET", "DET", "VERB", "DET"]


def test_names():   # cloze questions: tests/test_qa.py
    docs = brown()[:40]
    for s in [s for d in docs for s in d.sentences][:500]:
        tags = name_bio(s)
        for a, b in name_spans(s):
            assert tags[a] == "B-NAME" and all(t == "I-NAME" for t in tags[a + 1:b])
            assert all(t.lower().split("-")[0].startswith("np") or "-tl" in t.lower() for t in s.tags[a:b])


# ---------------------------------------------------------------- the command line
def cli(argv):
    "`bert-lit ARGV` (Appendix A), imported when called: the library's tests do not need the command line."
    return importlib.import_module("bert_lit.cli").main(argv)


@pytest.fixture(scope="module")
def tiny_init(minilm, tmp_path_factory):
    "A tiny model folder (MiniLM's vocabulary, random weights) for --init ... --from-scratch."
    folder = tmp_path_factory.mktemp("tiny")
    cfg = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    BertModel(cfg).save_pretrained(folder)
    BertTokenizer(minilm).save_pretrained(folder)
    return folder


def tiny_args(init, out, *more):
    return ["finetune", "sentiment", "--init", str(init), "--from-scratch", "--out", str(out), "--train-limit", "48",
            "--epochs", "1", "--batch-size", "16", "--no-progress", *more]


def one_line_error(capsys, *needles):
    "The command's stderr is one line holding every needle, and no traceback."
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def test_cli_runs_resumes_and_writes_results(tiny_init, tmp_path, capsys):
    "The real sentiment task through the tiny model; a second call resumes; another run's checkpoint is refused."
    args = tiny_args(tiny_init, tmp_path / "run")
    assert cli(args) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["test"]["by_domain"]["all"]["n"] == 2449 and 0 <= results["test"]["accuracy"] <= 1
    assert set(results["test"]["by_domain"]) == {"all", "movie", "tweets", "amazon", "nyt"}
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["split"] for l in lines] == ["train", "validation"]
    model = BertForSequenceClassification.from_pretrained(tmp_path / "run" / "model")
    assert labels_of(model.config) == ["negative", "positive"]
    assert cli(args) == 0                                               # resumes at the end: nothing to redo
    assert (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() == lines
    assert json.loads((tmp_path / "run" / "results.json").read_text())["test"] == results["test"]
    assert cli(["nonsense"]) == 2
    capsys.readouterr()
    # other settings on the same folder: refused in one line naming the option (was: a traceback), folder untouched
    assert cli(args + ["--learning-rate", "1e-3"]) == 1
    one_line_error(capsys, "holds a run with other options", "--learning-rate 5e-05 when the run began, 0.001 now")
    assert (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() == lines


# ---------------------------------------------------------------- the run's folder: atomic writes, held, clear errors
def test_resume_drops_a_cut_last_metrics_line(tokenizer, tmp_path):
    "A metrics.jsonl whose last line was cut short (a crash or a full disk mid-write) still resumes (was: JSONDecodeError)."
    data, cfg = tiny_data(tokenizer, 16), FinetuneConfig(epochs=2, batch_size=8, log_every=1)
    fit(tiny_classifier(tokenizer), data, cfg, out_dir=tmp_path, progress=False)
    metrics = tmp_path / "metrics.jsonl"
    whole = metrics.read_text()
    metrics.write_text(whole + '{"step": 5, "split": "tr')
    fit(tiny_classifier(tokenizer), data, cfg, out_dir=tmp_path, progress=False)      # at the end: nothing to redo
    assert metrics.read_text() == whole
    metrics.write_text(whole.replace("\n", "\n{\n", 1))                            # damage before the end: named
    with pytest.raises(ValueError, match=r"metrics.jsonl, line 2, is not JSON"):
        fit(tiny_classifier(tokenizer), data, cfg, out_dir=tmp_path, progress=False)


def test_saves_never_write_through_links(tiny_init, tmp_path):
    "Every file of a run is replaced, never written through: a link at its name leaves the linked file alone."
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "run"
    (out / "model").mkdir(parents=True)
    names = ["metrics.jsonl", "results.json", "model/config.json", "model/vocab.txt", "model/tokenizer_config.json"]
    for name in names:
        (out / name).symlink_to(victim)
    assert cli(tiny_args(tiny_init, out)) == 0
    assert victim.read_text() == "precious\n"
    assert not [n for n in names if (out / n).is_symlink()]
    assert json.loads((out / "results.json").read_text())["task"] == "sentiment"


def test_a_folder_in_use_is_refused(tokenizer, tiny_init, tmp_path, capsys):
    "While another run holds the folder, fit and the command refuse it at once (was: both ran, interleaving files)."
    out = tmp_path / "run"
    with hold_folder(out):                                 # what another run's hold looks like
        with pytest.raises(FolderInUse, match="in use by another run"):
            fit(tiny_classifier(tokenizer), tiny_data(tokenizer, 16), FinetuneConfig(epochs=1, batch_size=8),
                out_dir=out, progress=False)
        assert cli(tiny_args(tiny_init, out)) == 1
        one_line_error(capsys, "in use by another run", f"(process {os.getpid()})")
    assert sorted(p.name for p in out.iterdir()) == [".lock"]
    assert cli(tiny_args(tiny_init, out)) == 0              # released: the next run goes ahead


# ---------------------------------------------------------------- BIO tags and entity scores (moved from test_finetuning_qa.py)

def test_bio_spans_by_hand():
    assert bio_spans(["B-PER", "I-PER", "I-PER", "O"]) == [("PER", 0, 3)]
    assert bio_spans(["O", "I-LOC", "I-LOC", "O"]) == [("LOC", 1, 3)]              # I after O starts an entity
    assert bio_spans(["I-PER", "I-LOC"]) == [("PER", 0, 1), ("LOC", 1, 2)]          # a type switch starts one
    assert bio_spans(["B-PER", "I-LOC", "I-LOC"]) == [("PER", 0, 1), ("LOC", 1, 3)]
    assert bio_spans(["B-PER", "B-PER"]) == [("PER", 0, 1), ("PER", 1, 2)]          # adjacent B: two entities
    assert bio_spans(["O", "O", "B-ORG", "I-ORG"]) == [("ORG", 2, 4)]               # trailing entity closed at the end
    assert bio_spans(["B-MISC-X", "I-MISC-X"]) == [("MISC-X", 0, 2)]
    assert bio_spans([]) == [] and bio_spans(["O", "O"]) == []


def test_entity_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"], ["O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "I-ORG", "B-PER"], ["B-LOC"]]
    # gold: PER(0,2) LOC(3,4) | ORG(0,1) PER(2,3) -> 4; pred: PER(0,2) ORG(3,4) | ORG(0,2) PER(2,3) | LOC(0,1) -> 5
    # correct: PER(0,2), PER(2,3) -> 2
    got = entity_scores(gold, pred)
    assert (got["gold"], got["predicted"], got["correct"]) == (4, 5, 2)
    assert got["precision"] == 2 / 5 and got["recall"] == 2 / 4
    assert got["f1"] == pytest.approx(2 * (2 / 5) * (2 / 4) / (2 / 5 + 2 / 4), abs=1e-12)
    assert entity_scores([["O", "B-PER"]], [["O", "O"]]) == dict(precision=0.0, recall=0.0, f1=0.0, gold=1, predicted=0, correct=0)
    assert entity_scores([], []) == dict(precision=0.0, recall=0.0, f1=0.0, gold=0, predicted=0, correct=0)


@pytest.mark.parametrize("tags,bad,pos", [(["O", "X-PER"], "'X-PER'", 1), (["B-", "O"], "'B-'", 0), (["O", "O", "b-PER"], "'b-PER'", 2),
                                          (["B_PER"], "'B_PER'", 0), (["I"], "'I'", 0), (["O", None], "None", 1), (["o"], "'o'", 0)])
def test_bad_bio_tag(tags, bad, pos):
    with pytest.raises(ValueError, match=rf"tag {bad} at position {pos} is not BIO"):
        bio_spans(tags)


def test_bad_entity_score_inputs():
    with pytest.raises(ValueError, match="sequence 1: 2 gold tags but 1 predicted"):
        entity_scores([["O"], ["O", "B-PER"]], [["O"], ["O"]])
    with pytest.raises(ValueError, match="2 gold but 1 predicted sequences"):
        entity_scores([["O"], ["O"]], [["O"]])



# ---------------------------------------------------------------- outputs, one tag list, gradient accumulation, torchrun
def test_head_output_indexes_like_transformers(tokenizer, sentences):
    "out[0] and out.to_tuple() (was: TypeError on a plain dataclass); the loss first when labels are given."
    model = tiny_classifier(tokenizer).eval()
    enc = tokenizer(sentences[:3], padding=True, return_tensors="pt")
    out = model(**enc)
    assert out[0] is out.logits and out.to_tuple() == (out.logits,)
    out = model(**enc, labels=torch.tensor([0, 1, 1]))
    assert out[0] is out.loss and out.to_tuple() == (out.loss, out.logits) and list(out.keys()) == ["loss", "logits"]


def test_universal_tags_are_the_order_the_committed_runs_used():
    "Label ids are positions in UNIVERSAL_TAGS: one tuple (chapter 0's), in the order nbs/runs/pos_minilm was trained with."
    import bert_lit.finetuning as ft
    assert ft.UNIVERSAL_TAGS is UNIVERSAL_TAGS
    assert UNIVERSAL_TAGS == ("ADJ", "ADP", "ADV", "CONJ", "DET", "NOUN", "NUM", "PRON", "PRT", "VERB", ".", "X")


def double_model(head, labels, seed=0):
    "A tiny head in float64 without dropout: runs that should be equal agree to float64 rounding."
    cfg = BertConfig(vocab_size=211, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                     max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(seed)
    return head(cfg, labels=labels).double()


def uneven_examples(n=13):
    "Examples of 3..11 tokens; token labels on some tokens only, so micro-batches are means over unequal counts."
    g = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        ids = [2] + torch.randint(5, 211, (1 + i % 9,), generator=g).tolist() + [3]
        tags = [-100] + [t % 3 if k % 3 else -100 for k, t in enumerate(ids[1:-1])] + [-100]
        out.append({"input_ids": ids, "token_type_ids": [0] * len(ids), "labels": tags, "word_ids": list(range(len(ids)))})
    return out


@pytest.mark.parametrize("head", ["sentences", "tokens"])
def test_gradient_accumulation_equals_one_larger_batch(head):
    """fit with batches of 6 in k = 1, 2, 4 micro-batches (rows 3+3, 2+2+2; the epoch's last batch of 1 row in fewer)
    trains the same model. float64: every weight is rounded to ~1e-16 of itself per operation, so the runs agree to
    ~1e-13 after 6 AdamW steps; 1e-10 leaves a margin of 1000. Weighting micro-batches equally instead of by their
    rows/labelled tokens moves the weights by ~1e-4 (lr 1e-3), a million times more. (Was: no grad_accum_steps.)"""
    examples = uneven_examples()
    if head == "sentences":
        examples = [{**e, "labels": sum(e["input_ids"]) % 2} for e in examples]
        for e in examples:
            del e["word_ids"]
    cls = BertForSequenceClassification if head == "sentences" else BertForTokenClassification
    models, records = {}, {}
    for k in (1, 2, 4):
        models[k] = double_model(cls, ["a", "b", "c"])
        records[k] = fit(models[k], examples, FinetuneConfig(epochs=2, batch_size=6, learning_rate=1e-3, log_every=1,
                                                             grad_accum_steps=k), progress=False)
    for k in (2, 4):
        for (name, a), b in zip(models[1].state_dict().items(), models[k].state_dict().values()):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=0, msg=lambda m: f"k={k}, {name}: {m}")
        assert [r["loss"] for r in records[k]] == pytest.approx([r["loss"] for r in records[1]], abs=1e-12)


def test_gradient_accumulation_weights_by_counts_not_micro_batches():
    "The power of the test above: equal weights per micro-batch give another model (so that test can fail)."
    import bert_lit.training as training
    examples = uneven_examples()
    real = training.weighted_backward
    def equal_weights(model, micro_batches, loss_fn, count_fn, precision="fp32", scaler=None):
        return real(model, micro_batches, loss_fn, lambda b: {k: 1 for k in count_fn(b)}, precision, scaler)
    models = {}
    for k in (1, 2):
        models[k] = double_model(BertForTokenClassification, ["a", "b", "c"])
        training.weighted_backward = equal_weights
        try:
            fit(models[k], examples, FinetuneConfig(epochs=1, batch_size=6, learning_rate=1e-3, grad_accum_steps=k),
                progress=False)
        finally:
            training.weighted_backward = real
    diff = max((a - b).abs().max().item() for a, b in zip(models[1].state_dict().values(), models[2].state_dict().values()))
    assert diff > 1e-7


USER_SCRIPT = r"""
import sys, torch, torch.distributed as dist
sys.path.insert(0, sys.argv[2])
from bert_lit.encoder import BertConfig
from bert_lit.finetuning import BertForSequenceClassification, FinetuneConfig, fit
g = torch.Generator().manual_seed(0)
data = [{"input_ids": [2, *torch.randint(5, 211, (2 + i % 7,), generator=g).tolist(), 3], "labels": i % 2}
        for i in range(16)]
for e in data:
    e["token_type_ids"] = [0] * len(e["input_ids"])
torch.manual_seed(0)
model = BertForSequenceClassification(BertConfig(vocab_size=211, hidden_size=16, num_hidden_layers=1,
    num_attention_heads=2, intermediate_size=16, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
    labels=["a", "b"])
rows = []
model.bert.register_forward_pre_hook(lambda m, a, k: rows.append(k["input_ids"].shape[0]), with_kwargs=True)
records = fit(model, data, FinetuneConfig(epochs=1, batch_size=8, log_every=1), progress=False)
joined = dist.is_initialized()
rank, world = (dist.get_rank(), dist.get_world_size()) if joined else (0, 1)
if rank == 0:
    torch.save({"joined": joined, "world": world, "rows": sum(rows), "loss": [r["loss"] for r in records],
                "state": model.state_dict()}, sys.argv[1])
"""


def test_a_users_script_under_torchrun_joins_and_shards(tmp_path):
    """A script of one's own that calls fit() under torchrun joins the process group and computes its half of each
    batch (was: every process trained the whole batch alone). Its losses are the single process's: the same batches,
    sums over the processes' rows in another order (float32, loss ~0.7: agree to ~1e-6)."""
    script = tmp_path / "mine.py"
    script.write_text(USER_SCRIPT)
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "one.pt"), root], capture_output=True, text=True,
                         timeout=120, env=env)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
                          str(script), str(tmp_path / "two.pt"), root], capture_output=True, text=True, timeout=180, env=env)
    assert two.returncode == 0, two.stderr
    one, two = (torch.load(tmp_path / f"{n}.pt", weights_only=True) for n in ("one", "two"))
    assert (one["joined"], one["world"], two["joined"], two["world"]) == (False, 1, True, 2)
    assert one["rows"] == 16 and two["rows"] == 8                          # process 0 computed half of every batch
    assert two["loss"] == pytest.approx(one["loss"], abs=1e-5)
