"""Chapter 10, §10.5: question answering on a user's own SQuAD files (`read_squad`, `squad_file_task`), with
SQuAD v2's questions without an answer (labelled [CLS]; the empty answer competes at prediction)."""
import functools
import inspect
import json
import types
from pathlib import Path

import pytest
import torch

from bert_lit.data import Answer, brown, minilm_checkpoint, squad_fixture
from bert_lit.encoder import BertConfig
from bert_lit.finetuning import FinetuneConfig, fit
from bert_lit.qa import (BertForQuestionAnswering, answer_questions, best_answer, cloze_questions, exact_match_score,
                         f1_score, qa_features, read_squad, squad_evaluate, squad_features, squad_file_task)
from bert_lit.tokenizer import BertTokenizer

torch.set_num_threads(1)

DATA = Path(__file__).resolve().parent / "data"
TRAIN, DEV = DATA / "squad_train.json", DATA / "squad_dev.json"
NO_ANSWER = "Who made the golden statue on the Main Building?"    # the first fixture paragraph does not say


@pytest.fixture(scope="module")
def tok():
    return BertTokenizer.from_pretrained(minilm_checkpoint())


def write(tmp_path, name, doc):
    "Write `doc` (a str as is, anything else as JSON) to tmp_path/name; return the path."
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def v2_doc(impossible_only=False):
    "A SQuAD v2.0 document on the first fixture paragraph: a question it does not answer, and (unless told) a real one."
    ex = squad_fixture()[0]
    qas = [{"id": "no-answer", "question": NO_ANSWER, "answers": [], "plausible_answers": [], "is_impossible": True}]
    if not impossible_only:
        qas.append({"id": ex.id, "question": ex.question, "is_impossible": False,
                    "answers": [{"text": a.text, "answer_start": a.start} for a in ex.answers]})
    return {"version": "v2.0", "data": [{"title": ex.title, "paragraphs": [{"context": ex.context, "qas": qas}]}]}


# ---- reading v1.1 files

def test_reads_the_v1_1_dev_sample_with_every_answer_and_offset():
    raw = json.loads(DEV.read_text())       # an independent walk over the JSON
    qas = [(art["title"], p["context"], q) for art in raw["data"] for p in art["paragraphs"] for q in p["qas"]]
    got = read_squad(DEV)
    assert len(got) == len(qas) == 5 and [len(x.answers) for x in got] == [1, 3, 1, 1, 1]
    for x, (title, context, q) in zip(got, qas):
        assert (x.id, x.title, x.context, x.question) == (q["id"], title, context, q["question"])
        assert x.answers == tuple(Answer(a["text"], a["answer_start"]) for a in q["answers"])
        assert all(x.context[a.start:a.start + len(a.text)] == a.text for a in x.answers)
    assert got[0].answers[0] == Answer("Saint Bernadette Soubirous", 515)     # SQuAD v1.1's own offset
    assert got == squad_fixture() and read_squad(str(DEV)) == got             # a str path works as well


def test_the_training_sample_is_cloze_questions_of_brown():
    got = read_squad(TRAIN)
    documents = {x.id.split("/")[0] for x in got}
    cloze = {q["id"]: q for q in cloze_questions([d for d in brown() if d.id in documents])}
    assert len(got) == 8 and len({x.context for x in got}) == 8
    for x in got:
        q = cloze[x.id]
        assert (x.question, x.context, x.answers) == (q["question"], q["context"], (Answer(q["answer"], q["answer_start"]),))
    assert TRAIN.stat().st_size < 8000 and DEV.stat().st_size < 8000      # samples, a few KB


# ---- every bad input: a ValueError naming the file, the place in it and the fix

def _qa(doc, i=0, j=0, k=0):
    return doc["data"][i]["paragraphs"][j]["qas"][k]


def _set(path, value):
    "A mutation that sets doc[...path] = value."
    def mutate(doc):
        *head, last = path
        for key in head: doc = doc[key]
        doc[last] = value
    return mutate


FIRST = ("data", 0, "paragraphs", 0, "qas", 0)
BAD = {      # name: (mutation of the dev file's JSON, or a raw text; substrings the message must hold)
    "not-json": ("{'data': []}", ["not a JSON file"]),
    "no-data": ({"version": "1.1"}, ["no 'data' list at the top", '{"data": [{"title"']),
    "data-not-list": ({"data": {"title": "x"}}, ["no 'data' list"]),
    "no-questions": ({"data": []}, ["no questions"]),
    "off-by-one": (_set(FIRST + ("answers", 0, "answer_start"), 516),
                   ["question '5733be284776f41900661182' (data[0].paragraphs[0].qas[0]), answer 0",
                    "'Saint Bernadette Soubirous' is not at character 516", "holds 'aint Bernadette Soubirous '",
                    "fix answer_start"]),
    "negative-start": (_set(FIRST + ("answers", 0, "answer_start"), -1), ["is not at character -1"]),
    "start-as-text": (_set(FIRST + ("answers", 0, "answer_start"), "515"), ["answer 0: needs", "integer 'answer_start'"]),
    "empty-answer": (_set(FIRST + ("answers", 0, "text"), " "), ["answer 0: needs a non-empty 'text'"]),
    "missing-id": (lambda d: _qa(d, 0, 0, 1).pop("id"), ["data[0].paragraphs[0].qas[1] has no 'id'", "unique id"]),
    "duplicate-id": (lambda d: _qa(d, 0, 1, 0).update(id=_qa(d)["id"]),
                     ["question ids used more than once: ['5733be284776f41900661182']", "make the ids unique"]),
    "empty-question": (_set(("data", 0, "paragraphs", 1, "qas", 0, "question"), "  "),
                       ["question '5733b1da4776f41900661068' (data[0].paragraphs[1].qas[0]) has an empty question"]),
    "no-answers": (_set(FIRST + ("answers",), []), ["(data[0].paragraphs[0].qas[0]) has no answers",
                                                    "is_impossible: true (SQuAD v2)"]),
    "impossible-with-answers": (_set(FIRST + ("is_impossible",), True), ["has is_impossible: true and answers"]),
    "no-context": (lambda d: d["data"][0]["paragraphs"][0].pop("context"),
                   ["data[0].paragraphs[0] needs a non-empty 'context' and a 'qas' list"]),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_files_are_refused_with_the_place_and_the_fix(tmp_path, name):
    change, needles = BAD[name]
    doc = json.loads(DEV.read_text())
    if callable(change): change(doc)
    else: doc = change
    path = write(tmp_path, f"{name}.json", doc)
    with pytest.raises(ValueError) as e:
        read_squad(path)
    assert str(e.value).startswith(f"{path}: ") and all(n in str(e.value) for n in needles), str(e.value)


def test_a_file_that_is_not_text_is_refused(tmp_path):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00data")
    with pytest.raises(ValueError, match="binary.json: not a JSON file"):
        read_squad(path)


# ---- SQuAD v2: questions without an answer

def test_v2_questions_without_an_answer_are_read_and_labelled_cls(tmp_path, tok):
    no_answer, answered = read_squad(write(tmp_path, "v2.json", v2_doc()))
    ex = squad_fixture()[0]
    assert (no_answer.id, no_answer.question, no_answer.answers) == ("no-answer", NO_ANSWER, ())
    assert answered == ex                                              # is_impossible: false reads as v1.1
    windows = squad_features(tok, no_answer, max_length=64, doc_stride=20)
    assert len(windows) > 1 and all((f["start_positions"], f["end_positions"]) == (0, 0) for f in windows)
    a = ex.answers[0]
    assert squad_features(tok, answered, 64, 20) == qa_features(tok, ex.question, ex.context, 64, 20, answer=(a.text, a.start))


TEXT = "one two three four five six seven eight nine ten"


def test_best_answer_returns_the_empty_answer_when_cls_outscores_every_span(tok):
    fs = qa_features(tok, "which number?", TEXT, max_length=12, doc_stride=3)     # several small windows
    assert len(fs) >= 3
    T = max(len(f["input_ids"]) for f in fs)
    s, e = torch.zeros(len(fs), T), torch.zeros(len(fs), T)
    s[:, 0], e[:, 0] = 6.0, 6.0                 # [CLS]: 12 in every window
    t = fs[1]["max_context"].index(True)        # a context token whose best window is window 1
    s[1, t], e[1, t] = 5.0, 5.0                 # a one-token span there scoring 10 < 12
    assert best_answer(fs, s, e, TEXT, null_answer=True) == dict(text="", start=0, end=0, score=12.0)
    span = best_answer(fs, s, e, TEXT)                      # v1.1: always a span
    assert span["score"] == 10.0 and span["text"] in TEXT.split()
    s[2, 0], e[2, 0] = 2.0, 2.0                 # one window is sure an answer is there: [CLS] 4 < 10 there
    assert best_answer(fs, s, e, TEXT, null_answer=True) == span   # the smallest [CLS] score speaks (a max would say '')


def test_scores_of_empty_answers_follow_squad_v2():
    assert f1_score("", "") == 1.0 and exact_match_score("", "") == 1.0     # v1.1's formula gave F1 0
    assert f1_score("a", "") == 1.0                                            # both empty after normalisation
    assert f1_score("", "The") == 0.0       # v1.1 unchanged: a gold answer that normalises to nothing scores 0
    assert f1_score("", "1882") == f1_score("1882", "") == 0.0
    assert squad_evaluate({"q1": [""], "q2": ["1882"]}, {"q1": "", "q2": "1882"}) == {"exact_match": 100.0, "f1": 100.0}
    assert squad_evaluate({"q1": [""], "q2": ["1882"]}, {"q1": "1882", "q2": ""}) == {"exact_match": 0.0, "f1": 0.0}


class CLSModel(torch.nn.Module):
    "A stand-in reader whose start and end logits are 10 at [CLS] and 0 at every other token."
    def __init__(self, cls_id):
        super().__init__()
        self.cls_id, self.dummy = cls_id, torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids=None, **kwargs):
        logits = (input_ids == self.cls_id).float() * 10.0     # (B, T)
        return types.SimpleNamespace(start_logits=logits, end_logits=logits)


def test_answer_questions_passes_null_answer_on(tok):
    model, ex = CLSModel(tok.cls_token_id), squad_fixture()[0]
    assert answer_questions(model, tok, [ex.question], [ex.context], null_answer=True)[0]["text"] == ""
    assert answer_questions(model, tok, [ex.question], [ex.context])[0]["text"] != ""


def test_the_empty_answer_is_predicted_only_after_training_on_v2(tmp_path, tok):
    v2_train = write(tmp_path, "v2_train.json", v2_doc())
    v2_eval = write(tmp_path, "v2_eval.json", v2_doc(impossible_only=True))
    model = CLSModel(tok.cls_token_id)
    perfect, wrong = {"exact_match": 100.0, "f1": 100.0}, {"exact_match": 0.0, "f1": 0.0}
    assert squad_file_task(tok, train_file=v2_train, validation_file=v2_eval).evaluate(model) == perfect
    assert squad_file_task(tok, train_file=TRAIN, validation_file=v2_eval).evaluate(model) == wrong  # v1.1: a span


# ---- the task for the command line

def test_squad_file_task_keeps_the_command_line_signature():
    params = inspect.signature(squad_file_task).parameters
    assert [(n, p.kind.name, p.default) for n, p in params.items()] == [
        ("tokenizer", "POSITIONAL_OR_KEYWORD", inspect.Parameter.empty), ("train_limit", "POSITIONAL_OR_KEYWORD", None),
        ("seed", "POSITIONAL_OR_KEYWORD", 0), ("max_length", "POSITIONAL_OR_KEYWORD", 384),
        ("train_file", "KEYWORD_ONLY", None), ("validation_file", "KEYWORD_ONLY", None),
        ("test_file", "KEYWORD_ONLY", None)]


def test_squad_file_task_trains_with_fit_and_scores_the_files(tok):
    make = functools.partial(squad_file_task, train_file=TRAIN, validation_file=DEV)     # as the CLI calls it
    task = make(tok, None, 0, 128)
    assert task.head is BertForQuestionAnswering and task.head_kwargs == {}
    assert task.description == f"8 questions of squad_train.json ({len(task.train)} windows)"
    assert all(len(f["input_ids"]) <= 128 for f in task.train)
    assert sum(f["start_positions"] > 0 for f in task.train) >= 8          # each answer lies whole in a window
    torch.manual_seed(0)
    model = BertForQuestionAnswering(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                                                num_attention_heads=2, intermediate_size=64))
    before = model.qa_outputs.weight.detach().clone()
    records = fit(model, task.train, FinetuneConfig(epochs=2, batch_size=4, learning_rate=1e-3, log_every=1),
                  progress=False)
    assert len(records) >= 4 and not torch.equal(before, model.qa_outputs.weight)      # it trained
    result = task.evaluate(model)
    assert set(result) == {"exact_match", "f1"} and all(0 <= v <= 100 for v in result.values())
    assert task.evaluate(model, final=True) == result                      # no test file: the validation file
    on_train = make(tok, None, 0, 128, test_file=TRAIN).evaluate(model, final=True)
    predicted = answer_questions(model, tok, [x.question for x in read_squad(TRAIN)],
                                 [x.context for x in read_squad(TRAIN)], 128, 128 // 3)
    assert on_train == squad_evaluate({x.id: [x.answers[0].text] for x in read_squad(TRAIN)},
                                      {x.id: p["text"] for x, p in zip(read_squad(TRAIN), predicted)})


def test_without_validation_or_test_file_evaluate_gives_nothing(tok):
    model = CLSModel(tok.cls_token_id)
    task = squad_file_task(tok, 2, 0, 128, train_file=TRAIN)
    assert task.evaluate(model) == {} and task.evaluate(model, final=True) == {}
    only_test = squad_file_task(tok, 2, 0, 128, train_file=TRAIN, test_file=DEV)
    assert only_test.evaluate(model) == {} and set(only_test.evaluate(model, final=True)) == {"exact_match", "f1"}


def test_train_limit_samples_with_the_seed_and_the_stride_is_a_third(tmp_path, tok):
    ids = lambda task: [f["input_ids"] for f in task.train]
    a, b = (squad_file_task(tok, 3, seed, 128, train_file=TRAIN) for seed in (0, 0))
    assert ids(a) == ids(b) and a.description.startswith("3 questions of squad_train.json")
    everything = squad_file_task(tok, None, 0, 128, train_file=TRAIN)
    assert len(a.train) < len(everything.train) and all(x in ids(everything) for x in ids(a))
    assert {tuple(x) for s in range(6) for x in ids(squad_file_task(tok, 3, s, 128, train_file=TRAIN))} != set(map(tuple, ids(a)))
    long = squad_file_task(tok, None, 0, 64, train_file=write(tmp_path, "v2.json", v2_doc(impossible_only=True)))
    starts = [f["window_start"] for f in long.train]                      # a 158-token context in 64-token windows
    assert len(starts) > 2 and all(b - a == 64 // 3 for a, b in zip(starts, starts[1:]))


def test_bad_validation_or_test_files_are_refused_before_training(tmp_path, tok):
    bad = write(tmp_path, "bad_dev.json", {"version": "1.1"})
    for where in ("validation_file", "test_file"):
        with pytest.raises(ValueError, match="bad_dev.json: no 'data' list"):
            squad_file_task(tok, 2, 0, 128, train_file=TRAIN, **{where: bad})
    with pytest.raises(FileNotFoundError):
        squad_file_task(tok, 2, 0, 128, train_file=tmp_path / "missing.json")
