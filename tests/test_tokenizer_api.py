"""bert_lit's BertTokenizer as a drop-in for transformers' (issue 17, tokenizer part): added tokens, padding options and
pad(), overflowing windows, pre-split words, alignment (word_ids, sequence_ids, token_to_chars, char_to_token), NumPy
tensors, train_new_from_iterator, and unknown keyword arguments. Each test encodes the same real sentences (Brown,
VADER) with bert_lit and with transformers 5 (BertTokenizer: Rust-backed, fast) and compares the outputs. Every test
failed before this change: the methods, options and keys it uses did not exist (or behaved otherwise, as noted)."""
import json

import numpy as np
import pytest
from transformers import BertTokenizer as HFBertTokenizer, BertTokenizerLegacy

from bert_lit import data
from bert_lit.tokenizer import BertTokenizer

KEYS = ("input_ids", "token_type_ids", "attention_mask", "special_tokens_mask", "offset_mapping", "overflow_to_sample_mapping")


@pytest.fixture(scope="module")
def minilm():
    return data.minilm_checkpoint()


@pytest.fixture(scope="module")
def texts():
    "A few hundred real sentences: Brown (detokenized) and VADER, plus accents, CJK and odd spacing."
    brown = [data.detokenize(s.words) for d in data.brown()[::20] for s in d.sentences[:6]][:200]
    vader = [r.text for r in data.vader_sentences()[::100]][:200]
    return brown + vader + ["Héllo  wörld\t\u00a0Café, naïve", "BERT是谷歌于2018年提出的预训练语言模型。", ""]


def fresh(minilm, **kwargs):
    "The same checkpoint in both libraries (each test changes its own copies)."
    ref = HFBertTokenizer.from_pretrained(minilm, **kwargs)
    assert len(ref) == 30522
    return BertTokenizer.from_pretrained(minilm, **kwargs), ref


def same(got, want, keys=KEYS):
    "Identical outputs, key by key (offsets compared as tuples)."
    assert set(got) == set(want), (set(got), set(want))
    for k in keys:
        if k not in want: continue
        g, w = got[k], want[k]
        if k == "offset_mapping":
            as_tuples = lambda x: [as_tuples(y) for y in x] if x and isinstance(x[0], list) else [tuple(o) for o in x]
            g, w = as_tuples(g), as_tuples(w)
        assert g == w, f"{k} differs:\n ours {str(g)[:400]}\n  ref {str(w)[:400]}"


# ---- added tokens
ADDED_TEXTS = ["<e1>Covid</e1> cases rose, said the WHO; covid-19 and COVID spread.", "xcovidy [unused1] hello<e1>world",
               "brandnewtok!brandnewtok <E1> Hello"]


def add_the_same(tok):
    "Plain tokens (one the vocabulary has), then special ones (one the vocabulary has), then a new named one."
    counts = [tok.add_tokens(["COVID", "hello", "brandnewtok"]),
              tok.add_special_tokens({"additional_special_tokens": ["<e1>", "</e1>", "[unused1]"]}),
              tok.add_tokens(["COVID"]), tok.add_special_tokens({"pad_token": "[PAD]"})]
    return counts


def test_added_tokens(minilm, texts):
    "Defect: no add_tokens / add_special_tokens; all_special_ids was sorted, not in transformers' order."
    ours, ref = fresh(minilm)
    assert (ours.all_special_tokens, ours.all_special_ids, ours.special_tokens_map) == (
        ref.all_special_tokens, ref.all_special_ids, ref.special_tokens_map)
    assert add_the_same(ours) == add_the_same(ref)
    assert (len(ours), ours.vocab_size, ours.get_vocab()) == (len(ref), ref.vocab_size, ref.get_vocab())
    assert (ours.all_special_tokens, ours.all_special_ids, ours.special_tokens_map) == (
        ref.all_special_tokens, ref.all_special_ids, ref.special_tokens_map)
    assert ours.extra_special_tokens == list(ref.extra_special_tokens)
    sample = ADDED_TEXTS + texts[::4]
    for t in sample: assert ours.tokenize(t) == ref.tokenize(t), t
    kw = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    same(ours(sample, **kw), ref(sample, **kw))
    same(ours(sample[:-1], sample[1:], **kw), ref(sample[:-1], sample[1:], **kw))
    ids = ours(sample).input_ids
    assert [ours.convert_ids_to_tokens(i) for i in ids] == [ref.convert_ids_to_tokens(i) for i in ids]
    assert ours.batch_decode(ids, skip_special_tokens=True) == ref.batch_decode(ids, skip_special_tokens=True)


def test_added_tokens_are_saved_and_reloaded(minilm, texts, tmp_path):
    "Defect: save_pretrained dropped added tokens; a tokenizer.json with added tokens beyond the vocabulary was refused."
    sample = ADDED_TEXTS + texts[::8]
    ours, ref = fresh(minilm)
    add_the_same(ours); add_the_same(ref)
    ours.save_pretrained(tmp_path / "ours"); ref.save_pretrained(tmp_path / "ref")
    for folder in ("ours", "ref"):
        for back in (BertTokenizer.from_pretrained(tmp_path / folder), HFBertTokenizer.from_pretrained(tmp_path / folder)):
            assert back(sample).input_ids == ref(sample).input_ids, (folder, type(back))
            assert (len(back), back.all_special_ids, list(back.extra_special_tokens)) == (
                len(ref), ref.all_special_ids, list(ref.extra_special_tokens)), (folder, type(back))
    config = json.loads((tmp_path / "ours" / "tokenizer_config.json").read_text())
    assert config["extra_special_tokens"] == ["<e1>", "</e1>", "[unused1]"]


# ---- sizes, names, flags
def test_constants(minilm):
    "Defect: none of these attributes existed."
    ours, ref = fresh(minilm)
    for pair in (False, True): assert ours.num_special_tokens_to_add(pair=pair) == ref.num_special_tokens_to_add(pair=pair)
    for name in ("max_len_single_sentence", "max_len_sentences_pair", "model_input_names", "bos_token", "eos_token",
                 "bos_token_id", "eos_token_id", "pad_token_type_id", "padding_side", "truncation_side"):
        assert getattr(ours, name) == getattr(ref, name), name
    assert ours.is_fast is BertTokenizerLegacy.from_pretrained(minilm).is_fast is False  # pure Python, as the slow class


def test_convert_tokens_to_string(minilm, texts):
    "Defect: no convert_tokens_to_string."
    ours, ref = fresh(minilm)
    for t in texts[::3] + ["don't stop, isn't it? [CLS] un ##aff"]:
        tokens = ref.tokenize(t)
        assert ours.convert_tokens_to_string(tokens) == ref.convert_tokens_to_string(tokens), t


# ---- padding
def test_padding_options(minilm, texts):
    "Defect: no pad_to_multiple_of, padding_side (in __call__ and in the constructor) or truncation_side; encode had no padding."
    ours, ref = fresh(minilm)
    batch, pairs = texts[:40], texts[40:80]
    for kw in [dict(padding=True, pad_to_multiple_of=8), dict(padding="max_length", max_length=45, pad_to_multiple_of=16),
               dict(padding=True, padding_side="left", return_special_tokens_mask=True),
               dict(padding="max_length", truncation=True, max_length=16, pad_to_multiple_of=8, padding_side="left")]:
        same(ours(batch, **kw), ref(batch, **kw)); same(ours(batch, pairs, **kw), ref(batch, pairs, **kw))
    with pytest.raises(ValueError, match="multiple of 8"):
        ours(batch, padding=True, truncation=True, max_length=13, pad_to_multiple_of=8)
    with pytest.raises(ValueError, match="multiple of"):
        ref(batch, padding=True, truncation=True, max_length=13, pad_to_multiple_of=8)
    lefty, ref_lefty = fresh(minilm, padding_side="left", truncation_side="left")
    for kw in [dict(padding=True), dict(truncation=True, max_length=12), dict(truncation="longest_first", max_length=20)]:
        same(lefty(batch, pairs, **kw), ref_lefty(batch, pairs, **kw))
    for t in batch[:10]:
        assert ours.encode(t, padding="max_length", max_length=64) == ref.encode(t, padding="max_length", max_length=64)
        assert ours.encode(t, t, truncation=True, max_length=10) == ref.encode(t, t, truncation=True, max_length=10)


def test_pad_method(minilm, texts):
    "Defect: no pad() method (a data collator's way to pad examples encoded earlier)."
    ours, ref = fresh(minilm)
    encs = [ref(t, return_special_tokens_mask=True) for t in texts[:30]]
    for kw in [dict(), dict(pad_to_multiple_of=8), dict(padding="max_length", max_length=80), dict(padding_side="left")]:
        same(ours.pad([dict(e) for e in encs], **kw), ref.pad(encs, **kw))
    same(ours.pad({"input_ids": [[5, 6], [7]]}), ref.pad({"input_ids": [[5, 6], [7]]}))
    same(ours.pad(dict(encs[0]), padding="max_length", max_length=90), ref.pad(encs[0], padding="max_length", max_length=90))
    got, want = ours.pad(encs, return_tensors="np"), ref.pad(encs, return_tensors="np")
    for k in want: np.testing.assert_array_equal(got[k], want[k]); assert got[k].dtype == want[k].dtype


def test_return_tensors_np(minilm, texts):
    "Defect: return_tensors='np' was refused (only 'pt')."
    ours, ref = fresh(minilm)
    got, want = ours(texts[:20], padding=True, return_tensors="np"), ref(texts[:20], padding=True, return_tensors="np")
    for k in want:
        assert isinstance(got[k], np.ndarray) and got[k].dtype == want[k].dtype and got[k].shape == want[k].shape
        np.testing.assert_array_equal(got[k], want[k])


# ---- overflow
def test_overflowing_windows(minilm, texts):
    "Defect: no stride / return_overflowing_tokens: the cut tokens were lost, and no overflow_to_sample_mapping."
    ours, ref = fresh(minilm)
    long_texts = [" ".join(texts[i:i + 3]) for i in range(0, 60, 3)]
    questions = [t[:40] for t in texts[100:120]]
    kw = dict(return_overflowing_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True)
    for extra in [dict(truncation=True, max_length=24, stride=6), dict(truncation=True, max_length=32, stride=0, padding=True)]:
        same(ours(long_texts, **kw, **extra), ref(long_texts, **kw, **extra))
    for strategy in ("only_second", "only_first", "longest_first"):  # longest_first: both segments cut, every combination
        a, b = (questions, long_texts) if strategy != "only_first" else (long_texts, questions)
        same(ours(a, b, truncation=strategy, max_length=40, stride=5, **kw), ref(a, b, truncation=strategy, max_length=40, stride=5, **kw))
    same(ours(long_texts[0], truncation=True, max_length=16, stride=3, return_overflowing_tokens=True),
         ref(long_texts[0], truncation=True, max_length=16, stride=3, return_overflowing_tokens=True))  # one text: still a batch
    lefty, ref_lefty = fresh(minilm, truncation_side="left")
    same(lefty(long_texts, truncation=True, max_length=20, stride=4, **kw), ref_lefty(long_texts, truncation=True, max_length=20, stride=4, **kw))
    got = ours(long_texts, truncation=True, max_length=24, stride=6, return_overflowing_tokens=True, padding=True, return_tensors="np")
    want = ref(long_texts, truncation=True, max_length=24, stride=6, return_overflowing_tokens=True, padding=True, return_tensors="np")
    for k in want: np.testing.assert_array_equal(got[k], want[k])


# ---- pre-split words and alignment
def test_is_split_into_words(minilm, texts):
    "Defect: is_split_into_words did not exist (a list of words was read as a batch of texts)."
    ours, ref = fresh(minilm)
    words = [t.split() for t in texts[:60]] + [["Héllo,", "a.b", "[MASK]", "中文"], []]
    kw = dict(is_split_into_words=True, return_offsets_mapping=True, return_special_tokens_mask=True)
    same(ours(words, **kw), ref(words, **kw))
    same(ours(words[:-1], words[1:], **kw), ref(words[:-1], words[1:], **kw))
    same(ours(words[0], **kw), ref(words[0], **kw))
    enc, want = ours(words, is_split_into_words=True), ref(words, is_split_into_words=True)
    assert [enc.word_ids(i) for i in range(len(words))] == [want.word_ids(i) for i in range(len(words))]


def test_alignment(minilm, texts):
    "Defect: the BatchEncoding had no word_ids, sequence_ids, token_to_chars or char_to_token."
    ours, ref = fresh(minilm)
    a, b = texts[:30], texts[30:60]
    for kw in [dict(), dict(padding=True, padding_side="left"), dict(truncation=True, max_length=20, stride=4, return_overflowing_tokens=True)]:
        for got, want in [(ours(a, **kw), ref(a, **kw)), (ours(a, b, **kw), ref(a, b, **kw))]:
            for i in range(len(want["input_ids"])):
                assert got.word_ids(i) == want.word_ids(i) and got.sequence_ids(i) == want.sequence_ids(i), (kw, i)
                n = len(want["input_ids"][i])
                assert [got.token_to_chars(i, j) for j in range(n)] == [want.token_to_chars(i, j) for j in range(n)]
                for seq in (0, 1):
                    chars = range(len(max(a[i % len(a)], b[i % len(b)], key=len)) + 2)
                    assert [got.char_to_token(i, c, sequence_index=seq) for c in chars] == [
                        want.char_to_token(i, c, sequence_index=seq) for c in chars], (kw, i, seq)
    one, one_ref = ours(a[0], b[0]), ref(a[0], b[0])
    assert one.word_ids() == one_ref.word_ids() and one.token_to_chars(1) == one_ref.token_to_chars(1)
    assert one.char_to_token(0) == one_ref.char_to_token(0)


def test_pairs_as_tuples(minilm, texts):
    "Defect: a batch of (text, pair) tuples raised TypeError ('text[0] must be a str')."
    ours, ref = fresh(minilm)
    pairs = list(zip(texts[:50], texts[50:100]))
    kw = dict(return_offsets_mapping=True, truncation=True, max_length=32)
    same(ours(pairs, **kw), ref(pairs, **kw))
    same(ours(pairs, **kw), ours([a for a, _ in pairs], [b for _, b in pairs], **kw))


# ---- training
def test_train_new_from_iterator(minilm, texts):
    """Defect: no train_new_from_iterator. The two trainers differ (likelihood vs frequency merges, section 1.5), so the
    vocabularies differ; what must agree: size, special tokens at the same ids, the options, and the encodings of
    transformers' BertTokenizer built on our new vocabulary."""
    ours, ref = fresh(minilm)
    corpus = [data.detokenize(s.words) for d in data.brown()[:60] for s in d.sentences]
    batches = (corpus[i:i + 100] for i in range(0, len(corpus), 100))  # transformers' form: an iterator of batches
    new, new_ref = ours.train_new_from_iterator(batches, vocab_size=800), ref.train_new_from_iterator(iter(corpus), vocab_size=800)
    assert len(new) == len(new_ref) == 800
    assert (new.all_special_tokens, new.all_special_ids) == (new_ref.all_special_tokens, new_ref.all_special_ids)
    assert (new.do_lower_case, new.model_max_length) == (new_ref.do_lower_case, new_ref.model_max_length)
    vocab = new.get_vocab()
    assert len(vocab) == 800
    check = HFBertTokenizer(vocab=vocab)
    assert len(check) == 800
    kw = dict(return_offsets_mapping=True, truncation=True)
    same(new(texts, **kw), check(texts, **kw))


# ---- unknown keyword arguments
def test_unknown_keywords_are_refused(minilm):
    "Defect: BertTokenizer(..., paddingside='left') was stored as a special token, silently; padding_side was not an option."
    with pytest.raises(TypeError, match=r"unknown keyword arguments \['paddingside'\]"):
        BertTokenizer.from_pretrained(minilm, paddingside="left")
    with pytest.raises(TypeError, match="paddingside"):
        BertTokenizer(minilm, paddingside="left")
    ours, ref = fresh(minilm)
    assert ours("a b", padding_side="left", padding="max_length", max_length=6) == ref("a b", padding_side="left", padding="max_length", max_length=6)
    with pytest.raises(TypeError, match="paddingside"):
        ours("a b", paddingside="left")
    with pytest.raises(TypeError, match="paddingside"):
        ours.encode("a b", paddingside="left")
    with pytest.raises(ValueError, match="expected 'left' or 'right'"):
        BertTokenizer(minilm, padding_side="middle")
