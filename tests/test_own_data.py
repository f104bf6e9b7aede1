"""Your own data, end to end (issue 16): the readers of chapter 9, labels given by name, transformers' label
keywords, and the commands `bert-lit finetune text-classification|token-classification`, `predict`, `evaluate`,
`encode` and `fill-mask` on the sample files in tests/data (real text: VADER movie sentences, Brown sentences).
Models are tiny (width 16) so that each command runs in seconds; the outputs are checked against the files, not
against the code that wrote them."""
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from bert_lit.cli import main
from bert_lit.config import BertConfig
from bert_lit.data import minilm_checkpoint
from bert_lit.finetuning import (BertForSequenceClassification, BertForTokenClassification, FinetuneConfig, fit,
                                 labels_of, read_table, read_tagged, encode_texts)
from bert_lit.pretraining import BertForMaskedLM
from bert_lit.tokenizer import BertTokenizer

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer.from_pretrained(minilm_checkpoint())


def tiny_config(tokenizer):
    return BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=16)


@pytest.fixture(scope="module")
def tiny_init(tmp_path_factory, tokenizer):
    "A checkpoint folder: MiniLM's vocabulary, a tiny random encoder."
    folder = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    BertForMaskedLM(tiny_config(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def lines(path):
    return [json.loads(l) for l in Path(path).read_text().splitlines()]


def finetune(tmp_path, init, task, train, validation, batch_size):
    "`bert-lit finetune TASK` on two sample files, one epoch; it must succeed. Returns the run folder."
    out = tmp_path / "run"
    assert main(["finetune", task, "--init", str(init), "--out", str(out), "--train-file", str(DATA / train),
                 "--validation-file", str(DATA / validation), "--epochs", "1", "--batch-size", batch_size,
                 "--no-progress"]) == 0
    return out


def test_readers_agree_with_the_files_as_written():
    import csv
    with open(DATA / "reviews_train.csv", newline="") as f:
        expected = list(csv.reader(f))[1:]
    assert [[r["text"], r["label"]] for r in read_table(DATA / "reviews_train.csv", ["text", "label"])] == expected
    assert len(read_table(DATA / "reviews_dev.jsonl")) == 60
    sentences = read_tagged(DATA / "pos_train.conll")
    blocks = (DATA / "pos_train.conll").read_text().strip().split("\n\n")
    assert len(sentences) == len(blocks) == 200
    assert sentences[0] == ([l.split("\t")[0] for l in blocks[0].splitlines()],
                            [l.split("\t")[1] for l in blocks[0].splitlines()])


def test_fit_takes_labels_by_name_exactly_as_ids(tokenizer):
    rows = read_table(DATA / "reviews_train.csv")[:32]
    names = ["negative", "positive"]
    runs = []
    for labels in ([r["label"] for r in rows], [names.index(r["label"]) for r in rows]):
        torch.manual_seed(0)
        model = BertForSequenceClassification(tiny_config(tokenizer), labels=names)
        fit(model, encode_texts(tokenizer, [r["text"] for r in rows], labels, 64),
            FinetuneConfig(epochs=1, batch_size=16), progress=False)
        runs.append(model.classifier.weight.detach().clone())
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)


def test_transformers_label_keywords_name_the_same_labels(tokenizer):
    import transformers
    folder = minilm_checkpoint()
    for kwargs in ({"num_labels": 3}, {"id2label": {0: "neg", 1: "pos"}}, {"label2id": {"a": 1, "b": 0}}):
        ref = transformers.BertForSequenceClassification.from_pretrained(str(folder), **kwargs)
        with pytest.warns(UserWarning):
            ours = BertForSequenceClassification.from_pretrained(folder, **kwargs)
        assert ours.classifier.out_features == ref.classifier.out_features
        if "label2id" in kwargs:       # transformers keeps LABEL_i names then; bert_lit names them from label2id
            assert labels_of(ours.config) == ["b", "a"] and ref.config.label2id == kwargs["label2id"]
        else:
            assert labels_of(ours.config) == [ref.config.id2label[i] for i in range(ref.config.num_labels)]


def test_text_classification_from_files_then_predict_and_evaluate(tmp_path, tiny_init, capsys):
    out = finetune(tmp_path, tiny_init, "text-classification", "reviews_train.csv", "reviews_dev.jsonl", "32")
    results = json.loads((out / "results.json").read_text())
    assert set(results["test"]) == {"accuracy", "f1"} and 0 <= results["test"]["accuracy"] <= 1
    assert json.loads((out / "model" / "config.json").read_text())["id2label"] == {"0": "negative", "1": "positive"}
    assert [r["split"] for r in lines(out / "metrics.jsonl")][-1] == "validation"
    dev = read_table(DATA / "reviews_dev.jsonl")
    assert main(["predict", "--model", str(out / "model"), "--input", str(DATA / "reviews_dev.jsonl"),
                 "--output", str(tmp_path / "pred.jsonl")]) == 0
    predicted = lines(tmp_path / "pred.jsonl")
    assert [p["text"] for p in predicted] == [r["text"] for r in dev]            # input order kept
    assert {p["label"] for p in predicted} <= {"negative", "positive"} and all(0.5 <= p["score"] <= 1 for p in predicted)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out / "model"), "--input", str(DATA / "reviews_dev.jsonl")]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    agree = sum(p["label"] == r["label"] for p, r in zip(predicted, dev)) / len(dev)
    assert scores["accuracy"] == pytest.approx(agree)                             # evaluate == predict, counted here


def test_token_classification_from_conll_then_predict(tmp_path, tiny_init):
    out = tmp_path / "run"
    assert main(["finetune", "token-classification", "--init", str(tiny_init), "--out", str(out),
                 "--train-file", str(DATA / "pos_train.conll"), "--test-file", str(DATA / "pos_dev.conll"),
                 "--epochs", "1", "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["test"]) == {"accuracy"}                                  # POS tags are not BIO
    tags = {t for _, ts in read_tagged(DATA / "pos_train.conll") for t in ts}
    assert set(json.loads((out / "model" / "config.json").read_text())["label2id"]) == tags
    assert main(["predict", "--model", str(out / "model"), "--input", str(DATA / "pos_dev.conll"),
                 "--output", str(tmp_path / "tags.jsonl")]) == 0
    gold = read_tagged(DATA / "pos_dev.conll")
    got = lines(tmp_path / "tags.jsonl")
    assert [g["tokens"] for g in got] == [w for w, _ in gold]
    assert all(len(g["tags"]) == len(g["tokens"]) and set(g["tags"]) <= tags for g in got)


def test_encode_equals_transformers_mean_pooling(tmp_path):
    import transformers
    out = tmp_path / "emb.npy"
    assert main(["encode", "--model", "minilm", "--input", str(DATA / "reviews_unlabelled.txt"),
                 "--output", str(out)]) == 0
    vectors = np.load(out)
    texts = (DATA / "reviews_unlabelled.txt").read_text().splitlines()
    tok = transformers.AutoTokenizer.from_pretrained(str(minilm_checkpoint()))
    ref_model = transformers.AutoModel.from_pretrained(str(minilm_checkpoint())).eval()
    enc = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        h = ref_model(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=1).numpy()
    assert vectors.shape == (len(texts), 384)
    assert np.abs(vectors - ref).max() < 1e-5      # fp32 over 6 layers of width 384: errors of order 1e-6


def test_fill_mask_prints_top_k_per_mask(tiny_init, capsys):
    assert main(["fill-mask", "--model", str(tiny_init), "the [MASK] sat on the [MASK] .", "--top-k", "3"]) == 0
    shown = [l for l in capsys.readouterr().out.splitlines() if l.startswith("[MASK]")]
    assert len(shown) == 2 and all(len(l.split(": ", 1)[1].split(", ")) == 3 for l in shown)


@pytest.mark.parametrize("argv, said", [
    (["finetune", "pos", "--train-file", "tests/data/pos_train.conll"], "--train-file is for the tasks on your files"),
    (["finetune", "text-classification"], "give --train-file"),
    (["fill-mask", "x [MASK]"], "no masked-LM head"),
])
def test_mistakes_are_one_line_errors(argv, said, tiny_init, tmp_path, capsys):
    if argv[0] == "finetune":
        argv = [*argv, "--init", str(tiny_init), "--out", str(tmp_path / "run")]
    else:
        argv = [*argv, "--model", "minilm"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err, err


def test_question_answering_from_squad_files_then_predict_and_evaluate(tmp_path, tiny_init, capsys):
    from bert_lit.qa import read_squad
    out = finetune(tmp_path, tiny_init, "question-answering", "squad_train.json", "squad_dev.json", "4")
    results = json.loads((out / "results.json").read_text())
    assert set(results["test"]) == {"exact_match", "f1"}
    assert main(["predict", "--model", str(out / "model"), "--input", str(DATA / "squad_dev.json"),
                 "--output", str(tmp_path / "answers.jsonl")]) == 0
    questions = read_squad(DATA / "squad_dev.json")
    answers = lines(tmp_path / "answers.jsonl")
    assert [a["id"] for a in answers] == [q.id for q in questions]
    assert all(a["answer"] in q.context for a, q in zip(answers, questions))
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out / "model"), "--input", str(DATA / "squad_dev.json")]) == 0
    assert set(json.loads(capsys.readouterr().out.strip().splitlines()[-1])) == {"exact_match", "f1"}


def test_export_writes_an_onnx_file_that_onnx_runtime_runs_like_bert_lit(tmp_path, tiny_init, tokenizer, capsys):
    import onnxruntime
    out = tmp_path / "tiny.onnx"
    assert main(["export", "--model", str(tiny_init), "--out", str(out)]) == 0
    assert "BertForMaskedLM ->" in capsys.readouterr().out
    enc = tokenizer(TEXTS := ["the cat sat on the mat .", "a dog"], padding=True, return_tensors="np")
    session = onnxruntime.InferenceSession(str(out))
    names = [i.name for i in session.get_inputs()]
    got = session.run(None, {n: enc[n].astype("int64") for n in names})[0]
    model = BertForMaskedLM.from_pretrained(tiny_init)
    with torch.no_grad():
        ref = model(**{n: torch.from_numpy(enc[n].astype("int64")) for n in names}).logits.numpy()
    real = enc["attention_mask"].astype(bool)
    assert got.shape == ref.shape and np.abs(got[real] - ref[real]).max() < 1e-4   # fp32, width 16: ~1e-6 errors


def test_pretrain_takes_text_files_and_folders_as_they_come(tmp_path, capsys):
    "Was: --corpus took one file, one sentence a line; a folder or a novel's hard-wrapped paragraphs were refused or misread."
    from bert_lit.pretraining import read_corpus
    from bert_lit.data import vader_sentences
    texts = [r.text for r in vader_sentences()[:400]]
    books = tmp_path / "books"
    (books / "more").mkdir(parents=True)
    for k in range(8):                                       # 8 files of hard-wrapped paragraphs
        paragraphs = [" ".join(texts[50 * k + 5 * j: 50 * k + 5 * j + 5]) for j in range(10)]
        wrapped = "\n\n".join("\n".join(textwrap.wrap(p, 70)) for p in paragraphs)
        (books / ("more" if k % 2 else "") / f"book{k}.txt").write_text(wrapped + "\n")
    docs = read_corpus([books])
    assert len(docs) == 8 and all(not any("\n" in s for s in sentences) for _, sentences in docs)
    joined = " ".join(" ".join(s) for _, s in docs)
    assert " ".join(joined.split()) == " ".join(" ".join(" ".join(texts[50 * k: 50 * k + 50]) for k in
                                                         sorted(range(8), key=lambda k: ("more/" if k % 2 else "") + f"book{k}.txt")).split())
    out = tmp_path / "run"
    assert main(["pretrain", "--out", str(out), "--corpus", str(books), "--vocab-size", "300", "--hidden-size", "16",
                 "--layers", "1", "--heads", "2", "--intermediate-size", "32", "--max-seq-length", "32",
                 "--batch-size", "4", "--max-steps", "2", "--warmup-steps", "1", "--eval-batches", "1",
                 "--threads", "1", "--no-progress", "--no-nsp"]) == 0
    assert (out / "model" / "model.safetensors").is_file()
    one_file = tmp_path / "novel.txt"                        # a single file: its paragraphs are the documents
    one_file.write_text((books / "book0.txt").read_text())
    assert len(read_corpus(one_file)) == 10
