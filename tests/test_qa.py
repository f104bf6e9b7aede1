"""Chapter 10: the question-answering head (parity with transformers on the real MiniLM weights, bad positions),
extractive-QA pre/post-processing, SQuAD v1.1 metrics and cloze questions."""
import math
import random
import warnings

import pytest
import torch
import transformers  # test-only: the reference for the windows and the head
from test_finetuning import assert_parity, batch_of, check_head_from_a_pretraining_checkpoint, load_pair

from bert_lit.data import brown, minilm_checkpoint, squad_fixture, vader_sentences
from bert_lit.encoder import BertConfig
from bert_lit.tokenizer import BertTokenizer
from bert_lit.qa import (BertForQuestionAnswering, answer_token_span, best_answer, best_context_window, cloze_questions, exact_match_score,
                         f1_score, normalize_answer, pad_features, qa_features, squad_evaluate, window_spans)

torch.set_num_threads(1)

SETTINGS = [(40, 8), (64, 16), (64, 100), (96, 32), (128, 50), (384, 128)]  # (max_length, doc_stride)


@pytest.fixture(scope="module")
def tok():
    return BertTokenizer(minilm_checkpoint())


@pytest.fixture(scope="module")
def minilm():
    return minilm_checkpoint()


@pytest.fixture(scope="module")
def sentences():
    return [r.text for r in random.Random(0).sample(vader_sentences(), 12)]


@pytest.fixture(scope="module")
def squad():
    return squad_fixture()


@pytest.fixture(scope="module")
def long_context(squad):
    "A real context longer than the tokenizer's 512 tokens: both fixture paragraphs, three times over."
    return " ".join([squad[0].context, squad[2].context] * 3)


def oracle_logits(features, T):
    "(B, T) start/end logits, +10 at every window's labels, 0 elsewhere (windows without the answer stay flat)."
    s, e = torch.zeros(len(features), T), torch.zeros(len(features), T)
    for b, f in enumerate(features):
        if f["start_positions"]: s[b, f["start_positions"]], e[b, f["end_positions"]] = 10.0, 10.0
    return s, e


def n_head(f):
    "Tokens before the context: [CLS] question [SEP]."
    return f["token_type_ids"].index(1)


# ---- end to end on the real SQuAD fixture

@pytest.mark.parametrize("max_length,doc_stride", SETTINGS)
def test_oracle_recovers_every_gold_answer(tok, squad, max_length, doc_stride):
    predictions, cut = {}, 0
    for x in squad:
        a = x.answers[0]
        feats = qa_features(tok, x.question, x.context, max_length, doc_stride, answer=(a.text, a.start))
        first, last = answer_token_span(tok(x.context, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"],
                                        x.context, a.text, a.start)
        for f in feats:  # a window that holds part of the answer only: labelled [CLS]
            lo, n = f["window_start"], sum(f["token_type_ids"]) - 1
            inside, touches = lo <= first and last < lo + n, lo <= last and first < lo + n
            assert (f["start_positions"] > 0) == inside
            cut += touches and not inside
        assert any(f["start_positions"] for f in feats), "some window must hold the whole answer"
        T = pad_features(feats)["input_ids"].shape[1]
        s, e = oracle_logits(feats, T + 3)
        for b, f in enumerate(feats):  # padded rows: whatever lies past a feature's tokens is ignored
            s[b, len(f["input_ids"]):], e[b, len(f["input_ids"]):] = 1000.0, 1000.0
        pred = best_answer(feats, s, e, x.context)
        assert pred["text"] == a.text == x.context[pred["start"]:pred["end"]] and pred["score"] == 20.0
        predictions[x.id] = pred["text"]
    assert squad_evaluate({x.id: [a.text for a in x.answers] for x in squad}, predictions) == {"exact_match": 100.0, "f1": 100.0}
    if (max_length, doc_stride) in [(40, 8), (64, 16)]: assert cut > 0, "small windows must cut some answer at a window edge"


def test_truncated_gold_answer_ends_on_a_wordpiece_boundary(tok, squad):
    # The fixture's gold 'Father Julius Nieuwl' stops inside 'Nieuwland'; the vocabulary splits it ni ##eu ##wl ##and,
    # so the gold end (character 242) is the end of '##wl': the label is exact and the oracle returns the exact text.
    x = next(x for x in squad if x.answers[0].text == "Father Julius Nieuwl")
    a = x.answers[0]
    enc = tok(x.context, add_special_tokens=False, return_offsets_mapping=True)
    first, last = answer_token_span(enc["offset_mapping"], x.context, a.text, a.start)
    assert tok.convert_ids_to_tokens(enc["input_ids"][first:last + 1]) == ["father", "julius", "ni", "##eu", "##wl"]
    assert enc["offset_mapping"][last][1] == a.start + len(a.text) == 242
    feats = qa_features(tok, x.question, x.context, 64, 16, answer=(a.text, a.start))
    s, e = oracle_logits(feats, max(len(f["input_ids"]) for f in feats))
    assert best_answer(feats, s, e, x.context)["text"] == "Father Julius Nieuwl"  # exact, not merely after normalisation
    # detokenised pieces would not match: lower case (EM survives normalisation, the exact string does not)
    assert tok.decode(enc["input_ids"][first:last + 1]) == "father julius nieuwl"
    # a gold answer ending *inside* a piece: the label covers the whole piece, so the best possible prediction
    # is one character longer; EM 0 and F1 = 2/3 (2 of 3 normalised words shared each way) is the right score
    cut = "Father Julius Nieuw"
    feats = qa_features(tok, x.question, x.context, 64, 16, answer=(cut, a.start))
    s, e = oracle_logits(feats, max(len(f["input_ids"]) for f in feats))
    pred = best_answer(feats, s, e, x.context)["text"]
    assert pred == "Father Julius Nieuwl"
    assert exact_match_score(pred, cut) == 0.0 and f1_score(pred, cut) == pytest.approx(2 / 3, abs=1e-12)


# ---- windows

def expected_windows(n, W, doc_stride):
    "Independent count: starts k * step, step = min(W, doc_stride); the first k with k * step + W >= n is the last."
    step = min(W, doc_stride)
    return 1 if n <= W else 1 + math.ceil((n - W) / step)


@pytest.mark.parametrize("max_length,doc_stride", SETTINGS + [(64, 1), (30, 5)])
def test_windows_cover_every_token_once_as_best_context(tok, squad, long_context, max_length, doc_stride):
    cases = [(x.question, x.context) for x in squad[::2]] + [(squad[1].question, long_context)]
    for question, context in cases:
        enc = tok(context, add_special_tokens=False, return_offsets_mapping=True, truncation=True, max_length=10**6)
        n = len(enc["input_ids"])
        q_ids = tok.encode(question, add_special_tokens=False)[:64]
        W = max_length - len(q_ids) - 3
        feats = qa_features(tok, question, context, max_length, doc_stride)
        assert len(feats) == expected_windows(n, W, doc_stride)
        covered, best = [0] * n, [0] * n
        for k, f in enumerate(feats):
            h, start = n_head(f), f["window_start"]
            m = len(f["input_ids"]) - h - 1
            assert f["input_ids"] == [tok.cls_token_id, *q_ids, tok.sep_token_id, *enc["input_ids"][start:start + m], tok.sep_token_id]
            assert f["token_type_ids"] == [0] * h + [1] * (m + 1) and f["attention_mask"] == [1] * len(f["input_ids"])
            assert f["offsets"] == [None] * h + [tuple(o) for o in enc["offset_mapping"][start:start + m]] + [None]
            assert not any(f["max_context"][:h]) and not f["max_context"][-1] and len(f["max_context"]) == len(f["input_ids"])
            assert len(f["input_ids"]) <= max_length and (m == W or k == len(feats) - 1)  # only the last window is short
            if k: assert start - feats[k - 1]["window_start"] == min(W, doc_stride)
            for t in range(start, start + m):
                covered[t] += 1
                best[t] += f["max_context"][h + t - start]
        assert feats[-1]["window_start"] + len(feats[-1]["input_ids"]) - n_head(feats[-1]) - 1 == n  # the last reaches the end
        assert min(covered) >= 1 and best == [1] * n


def test_best_context_window_is_the_most_central(tok):
    # brute force over (window, token): the chosen window has the largest min(left, right) + 0.01 * length,
    # and no earlier window ties with it
    for n, size, stride in [(10, 4, 3), (11, 4, 3), (50, 12, 5), (50, 12, 1), (7, 7, 3)]:
        spans = window_spans(n, size, stride)
        for t, w in enumerate(best_context_window(spans, n)):
            def score(s, m): return min(t - s, s + m - 1 - t) + m / 100 if s <= t < s + m else None
            scores = [score(s, m) for s, m in spans]
            assert scores[w] == max(x for x in scores if x is not None)
            assert all(x is None or x < scores[w] for x in scores[:w])
    assert best_context_window([(0, 4), (3, 4), (6, 4)], 10) == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    # the length term is more than a tie-break in long windows: token 247 of 380 has 118 tokens of context (right) in the
    # full window 0 and 119 (left) in the short window 1, but 118 + 3.66 > 119 + 2.52, so window 0 wins
    spans = window_spans(380, 366, 128)
    assert spans == [(0, 366), (128, 252)] and best_context_window(spans, 380)[247] == 0


@pytest.mark.parametrize("max_length,doc_stride", [(40, 8), (64, 16), (64, 45), (64, 100), (96, 32), (384, 128), (384, 300)])
def test_windows_match_transformers_overlap_convention(tok, squad, long_context, max_length, doc_stride):
    # Hugging Face's `stride` is the overlap of consecutive windows: overlap = W - doc_stride when doc_stride < W,
    # 0 (back-to-back windows) when doc_stride >= W. Its last window, like Google's, runs from the next step to the
    # end of the context (it is not shifted back to be full), so every window is identical, the last included.
    transformers.logging.set_verbosity_error()
    hf = transformers.BertTokenizerFast.from_pretrained(str(minilm_checkpoint()))
    for question, context in [(x.question, x.context) for x in squad] + [(squad[3].question, long_context)]:
        ours = qa_features(tok, question, context, max_length, doc_stride)
        W = max_length - n_head(ours[0]) - 1
        theirs = hf(question, context, truncation="only_second", max_length=max_length, stride=max(0, W - doc_stride),
                    return_overflowing_tokens=True, return_offsets_mapping=True)
        assert [f["input_ids"] for f in ours] == theirs["input_ids"]
        assert [f["token_type_ids"] for f in ours] == theirs["token_type_ids"]
        for k, f in enumerate(ours):
            seq = theirs.sequence_ids(k)
            assert [o for o, s in zip(f["offsets"], seq) if s == 1] == [tuple(o) for o, s in zip(theirs["offset_mapping"][k], seq) if s == 1]


def test_short_context_gives_one_window(tok):
    feats = qa_features(tok, "Which building has a golden statue of the Virgin Mary on its dome?", "The Main Building.",
                        answer=("Main Building", 4))
    assert len(feats) == 1 and all(feats[0]["max_context"][n_head(feats[0]):-1])
    f = feats[0]
    assert f["offsets"][f["start_positions"]] == (4, 8) and f["offsets"][f["end_positions"]] == (9, 17)


def test_question_is_truncated_to_max_query_length(tok, squad):
    x = squad[0]
    f = qa_features(tok, x.question, x.context, max_query_length=5)[0]
    assert n_head(f) == 7 and f["input_ids"][1:6] == tok.encode(x.question, add_special_tokens=False)[:5]


def test_pad_features(tok, squad):
    x = squad[0]
    feats = qa_features(tok, x.question, x.context, 64, 20, answer=(x.answers[0].text, x.answers[0].start))
    batch = pad_features(feats, pad_id=tok.pad_token_id)
    T = max(len(f["input_ids"]) for f in feats)
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "start_positions", "end_positions"}
    assert batch["input_ids"].shape == (len(feats), T) and batch["start_positions"].shape == (len(feats),)
    assert all(v.dtype == torch.long for v in batch.values())
    for b, f in enumerate(feats):
        n = len(f["input_ids"])
        assert batch["input_ids"][b].tolist() == f["input_ids"] + [tok.pad_token_id] * (T - n)
        assert batch["attention_mask"][b].tolist() == [1] * n + [0] * (T - n)
        assert batch["token_type_ids"][b].tolist() == f["token_type_ids"] + [0] * (T - n)
        assert (batch["start_positions"][b].item(), batch["end_positions"][b].item()) == (f["start_positions"], f["end_positions"])
    assert len({len(f["input_ids"]) for f in feats}) > 1  # padding really happened
    assert "start_positions" not in pad_features(qa_features(tok, x.question, x.context))


# ---- best_answer on hand-made windows

TWELVE = "one two three four five six seven eight nine ten eleven twelve"  # one token per word, question "What?" = 2 tokens


def char(word):
    return TWELVE.index(word)


@pytest.fixture(scope="module")
def three_windows(tok):
    # max_length 11 -> W = 11 - 2 - 3 = 6 context tokens, doc_stride 3: windows over tokens 0-5, 3-8, 6-11;
    # 'six seven' (tokens 5-6) straddles the right edge of window 0 and the left edge of window 2: whole in window 1 only
    feats = qa_features(tok, "What?", TWELVE, max_length=11, doc_stride=3, answer=("six seven", char("six")))
    assert [f["window_start"] for f in feats] == [0, 3, 6] and all(n_head(f) == 4 for f in feats)
    return feats


def zeros(feats):
    return [torch.zeros(len(f["input_ids"])) for f in feats], [torch.zeros(len(f["input_ids"])) for f in feats]


def test_straddling_answer_is_found_in_the_window_that_holds_it(three_windows):
    feats = three_windows
    assert [(f["start_positions"], f["end_positions"]) for f in feats] == [(0, 0), (4 + 2, 4 + 3), (0, 0)]
    s, e = zeros(feats)
    s[1][6], e[1][7] = 10.0, 10.0
    assert best_answer(feats, s, e, TWELVE) == dict(text="six seven", start=char("six"), end=char("seven") + 5, score=20.0)


def test_answer_whose_start_is_best_read_elsewhere_cannot_be_returned(tok):
    # run_squad.py's rule has a blind spot: 'five six seven' (tokens 4-6) lies whole only in window 1, but token 4
    # ties between windows 0 and 1 (1 token of context either way) and the first wins, so no window may start it.
    # Even oracle logits then give the best span that is allowed: 'six seven' (F1 0.8, EM 0).
    feats = qa_features(tok, "What?", TWELVE, max_length=11, doc_stride=3, answer=("five six seven", char("five")))
    assert [(f["start_positions"], f["end_positions"]) for f in feats] == [(0, 0), (4 + 1, 4 + 3), (0, 0)]
    assert [f["max_context"][4 + 4 - f["window_start"]] for f in feats[:2]] == [True, False]
    s, e = zeros(feats)
    s[1][5], e[1][7] = 10.0, 10.0
    pred = best_answer(feats, s, e, TWELVE)
    assert (pred["text"], pred["score"]) == ("six seven", 10.0) and f1_score(pred["text"], "five six seven") == 0.8


def test_start_outside_its_best_context_window_is_rejected(three_windows):
    feats = three_windows
    # token 5 ('six') is in windows 0 (at the right edge) and 1 (centre): its best context is window 1
    assert [f["max_context"][4 + 5 - f["window_start"]] for f in feats[:2]] == [False, True]
    s, e = zeros(feats)
    s[1][6], e[1][7] = 10.0, 10.0                      # the answer, in window 1
    s[0][:] = -1000.0                                  # in window 0 only 'six' may start a span...
    s[0][4 + 5], e[0][4 + 5] = 100.0, 100.0            # ...and it scores far higher, but it is window 1's token
    assert best_answer(feats, s, e, TWELVE)["text"] == "six seven"
    s[1][4 + 2], e[1][4 + 2] = 100.0, 100.0            # control: the same span in window 1 wins
    assert best_answer(feats, s, e, TWELVE)["text"] == "six"


@pytest.fixture(scope="module")
def one_window(tok):
    feats = qa_features(tok, "What?", TWELVE)
    assert len(feats) == 1 and n_head(feats[0]) == 4
    return feats


def test_max_answer_length_excludes_long_spans(one_window):
    s, e = zeros(one_window)
    s[0][4 + 1], e[0][4 + 10] = 50.0, 50.0             # 'two ... eleven': 10 tokens, the top score
    s[0][4 + 4], e[0][4 + 6] = 10.0, 10.0              # 'five six seven'
    assert best_answer(one_window, s, e, TWELVE, max_answer_length=10)["text"] == "two three four five six seven eight nine ten eleven"
    assert best_answer(one_window, s, e, TWELVE, max_answer_length=9)["text"] == "two three four five six seven"  # 50 + 10
    assert best_answer(one_window, s, e, TWELVE, max_answer_length=1)["text"] == "two"  # 50 + 0: one token


def test_end_before_start_is_excluded(one_window):
    s, e = zeros(one_window)
    s[0][4 + 8], e[0][4 + 2] = 50.0, 50.0              # start at 'nine', end at 'three': invalid
    s[0][4 + 4], e[0][4 + 6] = 10.0, 10.0
    # top-2 starts: nine, five; top-2 ends: three, seven. (nine, three) would score 100 but ends before it starts
    pred = best_answer(one_window, s, e, TWELVE, n_best=2)
    assert pred["text"] == "five six seven" and pred["score"] == 20.0


def test_end_before_start_only_gives_no_answer(one_window):
    s, e = zeros(one_window)
    s[0][4 + 8], e[0][4 + 2] = 50.0, 50.0
    assert best_answer(one_window, s, e, TWELVE, n_best=1) == dict(text="", start=0, end=0, score=float("-inf"))
    s[0][4 + 1] = 60.0                                 # control: a start before the end makes it valid
    assert best_answer(one_window, s, e, TWELVE, n_best=1)["text"] == "two three"


def test_question_and_special_tokens_are_never_answers(one_window):
    s, e = zeros(one_window)
    for t in (0, 1, 2, 3, len(one_window[0]["input_ids"]) - 1):  # [CLS], 'what', '?', [SEP], final [SEP]
        s[0][t], e[0][t] = 100.0, 100.0
    s[0][4 + 4], e[0][4 + 6] = 1.0, 1.0
    assert best_answer(one_window, s, e, TWELVE)["text"] == "five six seven"
    assert best_answer(one_window, s, e, TWELVE, n_best=5)["score"] == float("-inf")  # the top 5 are all outside the context


def test_best_answer_accepts_lists_and_takes_the_best_over_windows(three_windows):
    s = [[0.0] * len(f["input_ids"]) for f in three_windows]
    e = [[0.0] * len(f["input_ids"]) for f in three_windows]
    s[1][5], e[1][7] = 3.0, 3.0                        # five..seven in window 1: 6
    s[2][4 + 2], e[2][4 + 3] = 4.0, 4.0                # 'nine ten' (tokens 8, 9) in window 2, where 'nine' is best: 8
    assert three_windows[2]["max_context"][4 + 2]
    assert best_answer(three_windows, s, e, TWELVE) == dict(text="nine ten", start=char("nine"), end=char("ten") + 3, score=8.0)


# ---- SQuAD metrics, values worked out by hand

def test_normalize_answer():
    assert normalize_answer("The Eiffel Tower") == "eiffel tower"                 # case, article
    assert normalize_answer("An apple, a pear and THE banana.") == "apple pear and banana"
    assert normalize_answer("Saint-Bernadette's (1858)!") == "saintbernadettes 1858"  # punctuation deleted, not spaced
    assert normalize_answer("theatre, another, then") == "theatre another then"   # articles only as whole words
    assert normalize_answer(" \t a  b\n\nc ") == "b c"                            # 'a' dropped, whitespace collapsed
    assert normalize_answer("") == "" and normalize_answer("the a an") == ""


def test_exact_match_and_f1_by_hand():
    assert exact_match_score("The Eiffel Tower!", "eiffel   tower") == 1.0
    assert exact_match_score("Eiffel Tower", "Eiffel Tower in Paris") == 0.0
    # pred {eiffel, tower}, gold {eiffel, tower, in, paris}: P = 2/2, R = 2/4
    assert f1_score("the Eiffel tower", "Eiffel Tower in Paris") == pytest.approx(2 * (2 / 2 * 2 / 4) / (2 / 2 + 2 / 4), abs=1e-12)
    # repeated words count as often as both sides have them: pred 'paris paris' vs 'paris' -> P = 1/2, R = 1
    assert f1_score("paris paris", "paris") == pytest.approx(2 / 3, abs=1e-12)
    # pred 'paris paris' vs 'paris paris france': 2 shared -> P = 2/2, R = 2/3 (a set would share only 1)
    assert f1_score("paris paris", "Paris, Paris, France") == pytest.approx(2 * (1 * 2 / 3) / (1 + 2 / 3), abs=1e-12)
    assert f1_score("", "Paris") == 0.0 and exact_match_score("", "Paris") == 0.0
    assert f1_score("London", "Paris") == 0.0 and f1_score("Paris", "the paris.") == 1.0


def test_squad_evaluate_takes_best_gold_and_mean_over_questions():
    gold = {"q1": ["Denver Broncos", "The Denver Broncos"], "q2": ["Santa Clara, California", "Levi's Stadium"],
            "q3": ["1882"], "q4": ["golden statue"]}
    pred = {"q1": "denver broncos", "q2": "Levi's Stadium in Santa Clara", "q3": "", "q4": "a golden statue", "extra": "ignored"}
    # q2: vs 'santa clara california' 2 shared of 5 pred / 3 gold -> F1 1/2; vs 'levis stadium' 2 of 5 / 2 -> F1 4/7 (best)
    got = squad_evaluate(gold, pred)
    assert got["exact_match"] == pytest.approx(100 * (1 + 0 + 0 + 1) / 4, abs=1e-12)
    assert got["f1"] == pytest.approx(100 * (1 + 4 / 7 + 0 + 1) / 4, abs=1e-12)


# ---- bad input: a ValueError that names the problem

def test_bad_qa_inputs(tok, squad):
    x = squad[0]
    for q, c in [("", x.context), ("   \n", x.context), (x.question, ""), (x.question, "\t ")]:
        with pytest.raises(ValueError, match="empty or only whitespace"):
            qa_features(tok, q, c)
    with pytest.raises(ValueError, match=r"max_length=18 leaves no room for the context: \[CLS\] \+ 15 question tokens "
                                         r"\(max_query_length=64\) \+ 2 \[SEP\] = 18; pass max_length >= 19"):
        qa_features(tok, x.question, x.context, max_length=18)
    assert len(qa_features(tok, x.question, x.context, max_length=19)) == len(tok.tokenize(x.context))  # one token a window
    long_q = " ".join(["why"] * 200)
    with pytest.raises(ValueError, match=r"max_length=60 .* 64 question tokens \(max_query_length=64\).*max_length >= 68"):
        qa_features(tok, long_q, x.context, max_length=60)
    assert len(qa_features(tok, long_q, x.context, max_length=68)[0]["input_ids"]) == 68  # one context token fits
    for bad in (0, -3):
        with pytest.raises(ValueError, match=f"doc_stride={bad}: it is the step between window starts"):
            qa_features(tok, x.question, x.context, doc_stride=bad)
    with pytest.raises(ValueError, match="max_query_length=0"):
        qa_features(tok, x.question, x.context, max_query_length=0)
    a = x.answers[0]
    with pytest.raises(ValueError, match=r"answer text 'Saint Bernadette Soubirous' is not at character 514 .* holds ' Saint Bernadette Soubirou'"):
        qa_features(tok, x.question, x.context, answer=(a.text, a.start - 1))
    with pytest.raises(ValueError, match="is not at character"):
        qa_features(tok, x.question, x.context, answer=(a.text, len(x.context) + 5))
    with pytest.raises(ValueError, match="is not at character -1"):
        qa_features(tok, x.question, x.context, answer=("A", -1))
    with pytest.raises(ValueError, match="answer text is empty"):
        qa_features(tok, x.question, x.context, answer=("", 3))
    with pytest.raises(ValueError, match="covers no token"):
        qa_features(tok, x.question, x.context, answer=(" ", x.context.index(" ")))


def test_bad_best_answer_inputs(one_window):
    s, e = zeros(one_window)
    with pytest.raises(ValueError, match=r"n_best=0: pass n_best >= 1"):
        best_answer(one_window, s, e, TWELVE, n_best=0)
    with pytest.raises(ValueError, match=r"max_answer_length=0: pass max_answer_length >= 1"):
        best_answer(one_window, s, e, TWELVE, max_answer_length=0)
    with pytest.raises(ValueError, match="1 features but 2 start"):
        best_answer(one_window, s * 2, e, TWELVE)
    with pytest.raises(ValueError, match="only 3 logits"):
        best_answer(one_window, [s[0][:3]], e, TWELVE)
    with pytest.raises(ValueError, match="non-empty list"):
        pad_features([])
    mixed = [dict(one_window[0]), dict(one_window[0], start_positions=0, end_positions=0)]
    with pytest.raises(ValueError, match="start_positions is in 1 of 2 features"):
        pad_features(mixed)


def test_bad_metric_inputs():
    with pytest.raises(ValueError, match=r"2 of 3 questions have no prediction: \['b', 'c'\]"):
        squad_evaluate({"a": ["x"], "b": ["y"], "c": ["z"]}, {"a": "x"})
    with pytest.raises(ValueError, match="non-empty list of texts"):
        squad_evaluate({"a": "x"}, {"a": "x"})
    with pytest.raises(ValueError, match="non-empty list of texts"):
        squad_evaluate({"a": []}, {"a": "x"})
    with pytest.raises(ValueError, match="no gold questions"):
        squad_evaluate({}, {})


# ---- the head: parity with transformers (chapter 9's error model), bad positions, a pretraining checkpoint

def test_question_answering_parity(minilm, tok, sentences):
    ours, theirs = load_pair(BertForQuestionAnswering, transformers.BertForQuestionAnswering, minilm)
    enc = batch_of(tok, sentences)
    real = enc["attention_mask"].bool()
    lengths = enc["attention_mask"].sum(1)
    start = torch.stack([torch.randint(1, int(n), (1,), generator=torch.Generator().manual_seed(i))[0]
                         for i, n in enumerate(lengths)])
    end = torch.minimum(start + 2, lengths - 1)
    inputs = {**enc, "start_positions": start, "end_positions": end}
    # the loss over the real tokens (padding is no answer), computed here from each model's logits
    assert_parity(ours, theirs, inputs,
                  lambda o: {"start_logits": o.start_logits[real], "end_logits": o.end_logits[real],
                             "loss": (real_tokens_ce(o.start_logits, start, real) + real_tokens_ce(o.end_logits, end, real)) / 2})
    with torch.no_grad():
        out = ours(**inputs)
    torch.testing.assert_close(out.loss, (real_tokens_ce(out.start_logits, start, real)
                                          + real_tokens_ce(out.end_logits, end, real)) / 2)


def real_tokens_ce(logits, target, real, ignore=None):
    "Cross-entropy of logits (B, T) over the real tokens only; rows whose target is `ignore` are left out."
    z = logits.masked_fill(~real, float("-inf"))
    rows = torch.ones_like(target, dtype=torch.bool) if ignore is None else target != ignore
    return -z[rows].log_softmax(-1).gather(1, target[rows, None]).mean()


def test_positions_past_the_sequence_are_ignored_as_transformers_bad_ones_refused(minilm, tok, sentences):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qa = BertForQuestionAnswering.from_pretrained(minilm).eval()
        theirs = transformers.BertForQuestionAnswering.from_pretrained(minilm).eval()
    torch.nn.init.normal_(qa.qa_outputs.weight, std=0.5)                 # a head that is not near zero
    theirs.qa_outputs.load_state_dict(qa.qa_outputs.state_dict())
    enc = tok(sentences[:3], padding=True, return_tensors="pt")
    T = enc["input_ids"].shape[1]
    positions = {"start_positions": torch.tensor([1, T, T + 7]), "end_positions": torch.tensor([2, 3, T])}
    real = enc["attention_mask"].bool()
    with torch.no_grad():
        ours, t = qa(**enc, **positions).loss, theirs(**enc)
    s, e = positions["start_positions"].clamp(max=T), positions["end_positions"].clamp(max=T)   # T: ignored
    ref = (real_tokens_ce(t.start_logits, s, real, ignore=T) + real_tokens_ce(t.end_logits, e, real, ignore=T)) / 2
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="start_positions contains -1"):
        qa(**enc, start_positions=torch.tensor([0, -1, 1]), end_positions=torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="both start_positions and end_positions"):
        qa(**enc, start_positions=torch.tensor([0, 1]))


def test_qa_head_from_a_pretraining_checkpoint(tmp_path):
    r = check_head_from_a_pretraining_checkpoint(BertForQuestionAnswering, tmp_path)
    assert sorted(r.newly_initialized) == ["qa_outputs.bias", "qa_outputs.weight"]


def test_output_indexes_like_transformers(tok, sentences):
    "out[0] and out.to_tuple() (was: TypeError on a plain dataclass); the loss first when positions are given."
    torch.manual_seed(0)
    qa = BertForQuestionAnswering(BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=16)).eval()
    enc = tok(sentences[:2], padding=True, return_tensors="pt")
    out = qa(**enc)
    assert out[0] is out.start_logits and out[1] is out.end_logits and len(out.to_tuple()) == 2
    out = qa(**enc, start_positions=torch.tensor([1, 2]), end_positions=torch.tensor([2, 3]))
    assert out.to_tuple() == (out.loss, out.start_logits, out.end_logits) and out["end_logits"] is out.end_logits


def test_cloze_questions():
    qs = cloze_questions(brown()[:40])
    assert len(qs) > 50
    for q in qs:
        assert q["context"][q["answer_start"]:][:len(q["answer"])] == q["answer"]
        assert "_____" in q["question"]
