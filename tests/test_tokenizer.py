"""bert_lit.tokenizer against transformers' BertTokenizer (Rust-backed, v5) and Google's tokenization_test.py fixtures."""
import copy, errno, json, logging, os, random, subprocess, sys, time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st
from transformers import BertTokenizer as HFBertTokenizer, BertTokenizerLegacy

import bert_lit.tokenizer
from bert_lit import data
from bert_lit.tokenizer import (BasicTokenizer, BertTokenizer, WordpieceTokenizer, is_control, is_punctuation,
                                is_whitespace, load_vocab, save_vocab, train_wordpiece)

KEYS = ("input_ids", "token_type_ids", "attention_mask", "offset_mapping", "special_tokens_mask")


@pytest.fixture(scope="module")
def minilm():
    return data.minilm_checkpoint()


@pytest.fixture(scope="module")
def ours(minilm):
    return BertTokenizer.from_pretrained(minilm)


@pytest.fixture(scope="module")
def ref(minilm):
    return HFBertTokenizer.from_pretrained(minilm)


@pytest.fixture(scope="module")
def corpus_sentences():
    return [s for d in data.pretraining_corpus() for s in d.sentences]


def assert_same(ours, ref, texts, pairs=None, chunk=2000, **kwargs):
    "Encode in chunks with both tokenizers and require identical ids, types, masks, offsets and tokens."
    kwargs = dict(return_offsets_mapping=True, return_special_tokens_mask=True, **kwargs)
    for i in range(0, len(texts), chunk):
        a, b = texts[i:i + chunk], (pairs[i:i + chunk] if pairs is not None else None)
        got, want = ours(a, b, **kwargs), ref(a, b, **kwargs)
        for key in KEYS:
            g, w = got[key], [list(map(tuple, x)) if key == "offset_mapping" else x for x in want[key]]
            if g != w:
                j = next(j for j in range(len(g)) if g[j] != w[j])
                raise AssertionError(f"{key} differs for {a[j]!r} / {b and b[j]!r}:\n ours {g[j]}\n  ref {w[j]}")


def assert_same_tokens(ours, ref, texts):
    "`tokenize` (a separate code path from the ids) gives transformers' tokens."
    want = ref(texts, add_special_tokens=False)["input_ids"]
    for text, ids in zip(texts, want):
        assert ours.tokenize(text) == ref.convert_ids_to_tokens(ids), text


# ---- (a) every sentence of the corpora
def test_pretraining_corpus_and_sentiment_sentences(ours, ref, corpus_sentences):
    """All ~165k sentences. For speed the reference side calls the Rust tokenizer behind transformers' BertTokenizer
    directly (encode_batch; transformers' own wrapper is exercised by every other test)."""
    texts = corpus_sentences + [r.text for r in data.vader_sentences()]
    assert len(texts) > 150_000
    rust = copy.deepcopy(ref.backend_tokenizer)
    rust.no_padding(); rust.enable_truncation(512)
    for i in range(0, len(texts), 5000):
        chunk = texts[i:i + 5000]
        got = ours(chunk, truncation=True, return_offsets_mapping=True, return_special_tokens_mask=True)
        want = rust.encode_batch(chunk)
        for j, w in enumerate(want):
            row = (got.input_ids[j], got.token_type_ids[j], got.attention_mask[j], got.offset_mapping[j], got.special_tokens_mask[j])
            assert row == (w.ids, w.type_ids, w.attention_mask, w.offsets, w.special_tokens_mask), chunk[j]
            assert ours.tokenize(chunk[j])[:510] == w.tokens[1:-1], chunk[j]  # (truncated at 512 with [CLS], [SEP])
    assert_same(ours, ref, texts[::100], truncation=True)  # and through transformers' wrapper


# ---- (b) random Unicode
INTERESTING = ("\x00\x01\x05\x0b\x0c\x1c\x1f\x7f\x85\x9f\ufffd\u200b\u200d\u2060\ufeff\u00ad\u0378\ue000\U000f0000"
               "\u0300\u0301\u0308\u0327\u064b\u05b0\u20dd\u1734\u111c9\u0e33"  # combining marks, Mc, NFD oddities
               "\u4e2d\u6587\u535a\u3400\uf900\ufa6e\U00020000\U0002b820\U0002b91f\U0002b920\U0002f800\u3042\uac00\u1100"
               "\U0001f600\U0001f469\u200d\U0001f4bb\U0001f1fa\U0001f1f8\u2764\ufe0f"  # emoji, ZWJ sequences, flags
               "\u05d0\u05e9\u0627\u0644\u200f\u200e\u202e\u061c"  # RTL letters and marks
               " \t\n\r\u00a0\u1680\u2000\u2007\u200a\u2028\u2029\u202f\u205f\u3000\u180e"  # whitespace of every kind
               "\u03a3\u0130\u0131\u00df\ufb01\u1e9e\u2126\u212a\u01c5\u1f88\u0345"  # case oddities
               "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\u00bf\u2e43\u166d\u3002\uff01\u00b7")
alphabet = st.one_of(st.characters(exclude_categories=("Cs",)), st.sampled_from(INTERESTING),
                     st.characters(min_codepoint=32, max_codepoint=126))
fuzz_text = st.one_of(st.text(alphabet, max_size=40),
                      st.lists(st.one_of(st.text(alphabet, max_size=8), st.sampled_from(["[MASK]", "[CLS]", "[mask]", "[UNK]", "##", "[SEP"])), max_size=8).map("".join))


def test_random_unicode_strings(ours, ref):
    seen = []

    @settings(max_examples=1000, deadline=None, derandomize=True, database=None)
    @given(st.lists(fuzz_text, min_size=10, max_size=12))
    def check(texts):
        seen.extend(texts)
        assert_same(ours, ref, texts)
        assert_same_tokens(ours, ref, texts)

    check()
    assert len(seen) >= 10_000


def test_every_code_point_is_classified_like_the_reference(ref):
    """Normalizer + pre-tokenizer of the Rust reference on 'a' + c + 'a' for all 1,114,112 code points, cased,
    4096 code points per call (each character is normalised independently, so they do not interact).
    Uncased: test_every_python_tokenizes_like_transformers, on each Python."""
    from tokenizers import normalizers
    pre = ref.backend_tokenizer.pre_tokenizer
    cps = [cp for cp in range(0x110000) if not 0xD800 <= cp < 0xE000]
    for lowercase in (False,):
        norm, basic = normalizers.BertNormalizer(lowercase=lowercase), BasicTokenizer(do_lower_case=lowercase)
        rust = lambda text: [w for w, _ in pre.pre_tokenize_str(norm.normalize_str(text))]
        for i in range(0, len(cps), 4096):
            text = " ".join(f"a{chr(cp)}a" for cp in cps[i:i + 4096])
            if basic.tokenize(text) != rust(text):
                bad = [hex(cp) for cp in cps[i:i + 4096] if basic.tokenize(f"a{chr(cp)}a") != rust(f"a{chr(cp)}a")]
                raise AssertionError(f"lowercase={lowercase}: code points {bad[:10]} are treated differently")


# ---- (c) pairs, truncation, padding
def test_pairs_with_truncation_and_padding(ours, ref, corpus_sentences):
    rng = random.Random(0)
    texts = rng.sample(corpus_sentences, 1000)
    pairs = rng.sample(corpus_sentences, 1000)
    for kwargs in [dict(), dict(truncation=True, max_length=16), dict(truncation="longest_first", max_length=37, padding=True),
                   dict(max_length=20), dict(truncation=True, max_length=64, padding="max_length"),
                   dict(padding="longest"), dict(truncation=True, max_length=3)]:
        assert_same(ours, ref, texts, pairs, chunk=500, **kwargs)
        assert_same(ours, ref, texts, chunk=500, **kwargs)
    short = [" ".join(s.split()[:3]) for s in texts[:300]]
    for strategy in ("only_first", "only_second"):
        a, b = (texts[:300], short) if strategy == "only_first" else (short, texts[:300])
        assert_same(ours, ref, a, b, truncation=strategy, max_length=24)
    # tensors
    got = ours(texts[:8], pairs[:8], padding=True, truncation=True, max_length=40, return_tensors="pt")
    want = ref(texts[:8], pairs[:8], padding=True, truncation=True, max_length=40, return_tensors="pt")
    for k in ("input_ids", "token_type_ids", "attention_mask"): assert torch.equal(got[k], want[k])


def test_truncation_that_cannot_fit_is_an_error_in_both(ours, ref):
    for kwargs in [dict(truncation="only_first", max_length=5), dict(truncation="only_second", max_length=6)]:
        with pytest.raises(Exception): ref("a b c d e f", "g h", **kwargs)
        with pytest.raises(ValueError, match="longest_first"): ours("a b c d e f", "g h", **kwargs)
    with pytest.raises(Exception): ref("a b c", truncation="only_second", max_length=3)
    with pytest.raises(ValueError, match="text_pair"): ours("a b c", truncation="only_second", max_length=3)


# ---- decode
def test_decode_matches(ours, ref, corpus_sentences):
    ids = ref(corpus_sentences[::50] + ["I do not know , it ' s [UNK] [MASK] ."], truncation=True)["input_ids"]
    for skip in (False, True):
        for clean in (False, True):
            assert ours.batch_decode(ids, skip, clean) == ref.batch_decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=clean)
    assert ours.decode(torch.tensor(ids[0])) == ref.decode(ids[0])
    assert ours.convert_ids_to_tokens(ids[0]) == ref.convert_ids_to_tokens(ids[0])
    assert ours.convert_tokens_to_ids(["hello", "notaword!", "[MASK]"]) == ref.convert_tokens_to_ids(["hello", "notaword!", "[MASK]"])
    assert ours.vocab_size == len(ours) == ref.vocab_size == 30522


# ---- cased vocabulary made with the trainer; save_pretrained / from_pretrained round trips
@pytest.fixture(scope="module")
def cased_vocab(corpus_sentences):
    return train_wordpiece(corpus_sentences[::80], vocab_size=3000, do_lower_case=False)


def test_cased_vocabulary_against_transformers(cased_vocab, corpus_sentences, tmp_path):
    ours = BertTokenizer(save_vocab(cased_vocab, tmp_path / "vocab.txt"), do_lower_case=False)
    folder = tmp_path / "saved"
    ours.save_pretrained(folder)
    ref = HFBertTokenizer.from_pretrained(folder)
    assert ref.vocab_size == len(cased_vocab) and ref.convert_ids_to_tokens(list(range(5))) == cased_vocab[:5]
    assert ref("Hello World")["input_ids"] != ref("hello world")["input_ids"]  # really cased
    texts = corpus_sentences[1::20] + ["Héllo Wörld ÀÉÎ", "cafe\u0301 Café ΟΔΟΣ İstanbul"]
    assert_same(ours, ref, texts, truncation=True)
    rng = random.Random(1)
    fuzz = ["".join(rng.choice(INTERESTING + "abcdeABCDE") for _ in range(rng.randrange(30))) for _ in range(5000)]
    assert_same(ours, ref, fuzz)
    reloaded = BertTokenizer.from_pretrained(folder)
    assert (reloaded.do_lower_case, reloaded.model_max_length, reloaded.vocab) == (False, 512, ours.vocab)


def test_save_pretrained_of_minilm_loads_in_transformers(ours, ref, corpus_sentences, tmp_path):
    ours.save_pretrained(tmp_path)
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8") == (ours.vocab_file).read_text(encoding="utf-8")
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["do_lower_case"] is True
    assert_same(ours, HFBertTokenizer.from_pretrained(tmp_path), corpus_sentences[::50], truncation=True)


def test_trainer_vocab_is_valid(cased_vocab):
    assert len(cased_vocab) == len(set(cased_vocab)) == 3000
    assert cased_vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert train_wordpiece(iter(["low lower lowest newer"] * 4), 40) == train_wordpiece(["low lower lowest newer"] * 4, 40)
    with pytest.raises(TypeError, match="list"): train_wordpiece("one string", 100)
    with pytest.raises(ValueError, match="vocab_size"): train_wordpiece(["abc"], 3)


# ---- the difference table: default mode == Rust reference, google mode == Google's tokenization.py
DIFF_CASES = [  # text, Google's tokens (uncased, MiniLM vocab)
    ("a\u0378b", ["ab"]), ("a\ue000b", ["ab"]), ("a\u2028b", ["a", "b"]), ("ΟΔΟΣ", ["ο", "##δ", "##ος"]),
    ("a\U0002b820b", ["a", "[UNK]", "b"]), ("a\u2e43b", ["a", "[UNK]", "b"]), ("a [MASK] b", ["a", "[", "mask", "]", "b"]),
    ("\u200bzero\u200bwidth", ["zero", "##wi", "##dt", "##h"]),
]


def test_difference_table(ours, ref, minilm):
    google = BertTokenizer.from_pretrained(minilm, mode="google")
    texts = [t for t, _ in DIFF_CASES] + ["ab" * 75, "cafe\u0301"]
    assert_same(ours, ref, texts)
    assert_same_tokens(ours, ref, texts)
    for text, want in DIFF_CASES:
        assert google.tokenize(text) == want, text
    long_word = google.tokenize("ab" * 75)
    assert ours.tokenize("ab" * 75) == ["[UNK]"] and "".join(t.removeprefix("##") for t in long_word) == "ab" * 75
    # Google's limit is 200 characters, the reference's 100
    assert google.tokenize("ab" * 101) == ["[UNK]"] and ours.tokenize("ab" * 50) != ["[UNK]"] and ours.tokenize("ab" * 50 + "a") == ["[UNK]"]
    # NFC: only the legacy Python tokenizer composes e + U+0301 (visible without lower-casing)
    cased = [BasicTokenizer(False).tokenize("cafe\u0301"), BasicTokenizer(False, mode="google").tokenize("cafe\u0301")]
    assert cased == [["cafe\u0301"], ["cafe\u0301"]]
    legacy = BertTokenizerLegacy(str(minilm / "vocab.txt"), do_lower_case=False)
    assert legacy.basic_tokenizer.tokenize("cafe\u0301") == ["caf\u00e9"]
    # Greek final sigma and the CJK block: the legacy Python tokenizer agrees with Google
    legacy_uncased = BertTokenizerLegacy(str(minilm / "vocab.txt"))
    for text in ("ΟΔΟΣ", "a\U0002b820b"):
        assert legacy_uncased.tokenize(text) == google.tokenize(text) != ours.tokenize(text)


# ---- Google's tokenization_test.py
def test_google_fixtures(tmp_path):
    tokens = ["[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un", "runn", "##ing", ","]
    tok = BertTokenizer(save_vocab(tokens, tmp_path / "vocab.txt"), mode="google")
    assert tok.tokenize("UNwant\u00e9d,running") == ["un", "##want", "##ed", ",", "runn", "##ing"]
    assert tok.convert_tokens_to_ids(["un", "##want", "##ed", ",", "runn", "##ing"]) == [7, 4, 5, 10, 8, 9]
    assert BasicTokenizer(mode="google").tokenize("ah\u535a\u63a8zz") == ["ah", "\u535a", "\u63a8", "zz"]
    assert BasicTokenizer(True, mode="google").tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["hello", "!", "how", "are", "you", "?"]
    assert BasicTokenizer(True, mode="google").tokenize("H\u00e9llo") == ["hello"]
    assert BasicTokenizer(False, mode="google").tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["HeLLo", "!", "how", "Are", "yoU", "?"]
    wp = WordpieceTokenizer(load_vocab(save_vocab(tokens[:-1], tmp_path / "v2.txt")), max_input_chars_per_word=200)
    split = lambda text: [t for w in text.split() for t in wp.tokenize(w)]
    assert split("") == [] and split("unwanted running") == ["un", "##want", "##ed", "runn", "##ing"]
    assert split("unwantedX running") == ["[UNK]", "runn", "##ing"]
    assert all(is_whitespace(c, "google") for c in [" ", "\t", "\r", "\n", "\u00a0"])
    assert not any(is_whitespace(c, "google") for c in ["A", "-"])
    assert is_control("\u0005", "google") and not any(is_control(c, "google") for c in ["A", " ", "\t", "\r", "\U0001F4A9"])
    assert all(is_punctuation(c, "google") for c in ["-", "$", "`", "."]) and not any(is_punctuation(c, "google") for c in ["A", " "])


def test_strip_accents_variants_match_transformers(minilm):
    text = " \tHäLLo!how  \n Are yoU?  "
    for lower in (True, False):
        for strip in (None, True, False):
            ref = HFBertTokenizer.from_pretrained(minilm, do_lower_case=lower, strip_accents=strip)
            ours = BertTokenizer.from_pretrained(minilm, do_lower_case=lower, strip_accents=strip)
            assert ours.tokenize(text) == ref.tokenize(text), (lower, strip)
    assert BasicTokenizer(True, strip_accents=False).tokenize(text) == ["hällo", "!", "how", "are", "you", "?"]
    assert BasicTokenizer(False, strip_accents=True).tokenize(text) == ["HaLLo", "!", "how", "Are", "yoU", "?"]


# ---- bad input
def test_bad_input(ours, tmp_path):
    for bad in (None, 3, 4.5, ["ok", None]):
        with pytest.raises(TypeError, match="must be a str"): ours(bad)
    with pytest.raises(TypeError, match="decode"): ours(b"bytes")
    with pytest.raises(TypeError, match="decode"): ours.tokenize(b"bytes")
    with pytest.raises(TypeError, match="text_pair"): ours("a", 5)
    with pytest.raises(ValueError, match="as long as"): ours(["a", "b"], ["c"])
    assert ours("").input_ids == [101, 102] and ours.tokenize("") == [] and ours.encode("   \x00 ") == [101, 102]
    assert ours([]) == {"input_ids": [], "token_type_ids": [], "attention_mask": []}
    assert ours([], padding=True, return_tensors="pt")["input_ids"].shape == (0, 0)
    with pytest.raises(ValueError, match="max_length=1"): ours("a b", truncation=True, max_length=1)
    with pytest.raises(ValueError, match="max_length=2"): ours("a", "b", truncation=True, max_length=2)
    with pytest.raises(ValueError, match="padding=True"): ours(["a", "a b c"], return_tensors="pt")
    with pytest.raises(ValueError, match="return_tensors"): ours("a", return_tensors="tf")
    with pytest.raises(ValueError, match="padding="): ours("a", padding="sideways")
    with pytest.raises(ValueError, match="truncation="): ours("a", truncation="middle")
    with pytest.raises(ValueError, match="outside the vocabulary"): ours.decode([5, 40000])
    with pytest.raises(ValueError, match="mode"): BertTokenizer(ours.vocab_file, mode="rust")
    with pytest.raises(ValueError, match="default mode"): BertTokenizer(ours.vocab_file, mode="google")("a", return_offsets_mapping=True)
    with pytest.raises(FileNotFoundError, match="vocab"): BertTokenizer(tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match="vocab"): BertTokenizer.from_pretrained(tmp_path)
    (tmp_path / "no_unk.txt").write_text("[CLS]\n[SEP]\nhello\n")
    with pytest.raises(ValueError, match=r"\[UNK\]"): BertTokenizer(tmp_path / "no_unk.txt")
    (tmp_path / "dup.txt").write_text("[UNK]\nhello\nworld\nhello\n")
    with pytest.raises(ValueError, match="twice"): BertTokenizer(tmp_path / "dup.txt")
    (tmp_path / "empty_line.txt").write_text("[UNK]\n\nhello\n")
    with pytest.raises(ValueError, match="line 2 is empty"): BertTokenizer(tmp_path / "empty_line.txt")
    (tmp_path / "only_unk.txt").write_text("[UNK]\nhello\n")
    minimal = BertTokenizer(tmp_path / "only_unk.txt")
    assert minimal.tokenize("hello [MASK]") == ["hello", "[UNK]", "[UNK]", "[UNK]"]
    with pytest.raises(ValueError, match=r"\[CLS\]"): minimal("hello")
    assert minimal("hello", add_special_tokens=False).input_ids == [1]
    with pytest.raises(ValueError, match=r"\[PAD\]"): minimal(["hello", "hello hello"], add_special_tokens=False, padding=True)


def test_batch_encoding_and_model_inputs(ours):
    enc = ours("This is an example sentence.", return_tensors="pt")
    assert isinstance(enc, dict) and set(enc) == {"input_ids", "token_type_ids", "attention_mask"}
    assert enc.input_ids.dtype == torch.long and enc.input_ids.shape == (1, 8) and enc.to("cpu").input_ids is not None
    with pytest.raises(AttributeError): enc.no_such_key
    assert ours.cls_token_id == 101 and ours.mask_token == "[MASK]" and ours.pad_token_id == 0
    off = ours(["a b", "c"], padding=True, return_offsets_mapping=True, return_tensors="pt")["offset_mapping"]
    assert off.shape == (2, 4, 2)


# ---- the default mode's Unicode tables (issue 13): shipped, generated, the same on every Python
ROOT = Path(__file__).resolve().parents[1]


def test_unicode_tables_file_is_what_its_generator_writes(tmp_path):
    """bert_lit/unicode_tables.json is not typed by hand: tools/make_unicode_tables.py probes the reference
    (tokenizers' BertNormalizer, BertPreTokenizer) on every code point and must reproduce it byte for byte."""
    out = tmp_path / "unicode_tables.json"
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_unicode_tables.py"), str(out)], check=True, capture_output=True)
    assert out.read_bytes() == (ROOT / "bert_lit" / "unicode_tables.json").read_bytes(), \
        "the reference's tables changed (a new tokenizers?): run python tools/make_unicode_tables.py and review the diff"


def test_default_mode_asks_unicodedata_nothing(monkeypatch, minilm):
    "Python's unicodedata differs between 3.11, 3.12 and 3.13: the default mode must not call it at all."
    class Refuse:
        def __getattr__(self, name): raise AssertionError(f"the default mode called unicodedata.{name}")
    monkeypatch.setattr(bert_lit.tokenizer, "unicodedata", Refuse())
    tok = BertTokenizer.from_pretrained(minilm)
    assert tok.tokenize(INTERESTING + " Héllo Wörld ΟΔΟΣ 한국어 cafe\u0ecex") and tok.decode(tok.encode("Ab, c!"))
    assert tok(INTERESTING, return_offsets_mapping=True).input_ids
    assert BasicTokenizer(do_lower_case=False).tokenize(INTERESTING)


SPECIAL_WORDS = ["[MASK]", "[CLS]", "[mask]", "[UNK]", "##", "[SEP", " "]


def random_unicode_texts(n=50_000, seed=13):
    """Strings like test_random_unicode_strings draws, from random.Random(seed): up to 40 characters (or words),
    each from the BMP, from any plane, from INTERESTING, printable ASCII, or a special-token spelling."""
    rng = random.Random(seed)
    def any_char(top):
        cp = rng.randrange(top - 0x800)
        return chr(cp + 0x800 if cp >= 0xD800 else cp)  # no surrogates: a Rust string cannot hold them
    draw = [lambda: any_char(0x10000), lambda: any_char(0x110000), lambda: rng.choice(INTERESTING),
            lambda: chr(rng.randrange(32, 127)), lambda: rng.choice(SPECIAL_WORDS)]
    return ["".join(rng.choice(draw)() for _ in range(rng.randrange(41))) for _ in range(n)]


CODE_POINTS = [cp for cp in range(0x110000) if not 0xD800 <= cp < 0xE000]
PROBE_CHUNK, PROBE_SEP = 8192, "zzsepzz"  # a word no probe can produce


def code_point_chunks():
    "Every code point as a probe 'a' + c + 'b', the probes of a chunk separated by the word PROBE_SEP."
    return [f" {PROBE_SEP} ".join(f"a{chr(cp)}b" for cp in CODE_POINTS[i:i + PROBE_CHUNK])
            for i in range(0, len(CODE_POINTS), PROBE_CHUNK)]


# run by each Python with PYTHONPATH at the checkout: the tokenizer module needs only the standard library
WORKER = """
import json, sys
from bert_lit.tokenizer import BasicTokenizer, BertTokenizer
job = json.load(open(sys.argv[1]))
ids = BertTokenizer(job["vocab"])(job["texts"])["input_ids"]
basic = BasicTokenizer()
json.dump(dict(ids=ids, words=[basic.tokenize(chunk) for chunk in job["probes"]]), open(sys.argv[2], "w"))
"""


def other_python(version):
    "The pyenv interpreter of `version` ('3.12'), or None."
    try: root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError): root = os.path.expanduser("~/.pyenv")
    found = sorted(Path(root, "versions").glob(f"{version}.*/bin/python{version}"))
    return found[-1] if found else None


@pytest.fixture(scope="module")
def unicode_job(ref, minilm, tmp_path_factory):
    """The inputs, and the reference's answers computed here (Python 3.11): transformers' ids for the texts (its
    Rust tokenizer), and the words of its normalizer + pre-tokenizer for the code-point probes."""
    from tokenizers import normalizers
    texts, probes = random_unicode_texts(), code_point_chunks()
    rust = copy.deepcopy(ref.backend_tokenizer)
    rust.no_padding(); rust.no_truncation()
    norm, pre = normalizers.BertNormalizer(lowercase=True), ref.backend_tokenizer.pre_tokenizer
    job = tmp_path_factory.mktemp("unicode") / "job.json"
    job.write_text(json.dumps(dict(texts=texts, probes=probes, vocab=str(minilm / "vocab.txt"))))
    return dict(file=job, texts=texts, want_ids=[e.ids for e in rust.encode_batch(texts)],
                want_words=[[w for w, _ in pre.pre_tokenize_str(norm.normalize_str(p))] for p in probes])


def split_probes(words):
    "The words of each probe of a chunk."
    out = [[]]
    for w in words:
        if w == PROBE_SEP: out.append([])
        else: out[-1].append(w)
    return out


@pytest.mark.parametrize("version", ["3.11", "3.12", "3.13"])
def test_every_python_tokenizes_like_transformers(version, unicode_job, tmp_path):
    """50,000 random Unicode strings (ids) and every code point (the words of 'a' + c + 'b', uncased), tokenized by
    the default mode on Python `version` in a subprocess, against the reference run on this Python (3.11).
    Python's unicodedata is Unicode 14.0 / 15.0 / 15.1 on 3.11 / 3.12 / 3.13; the reference's tables are fixed."""
    assert sys.version_info[:2] == (3, 11), "the reference side runs on the project's Python, 3.11"
    python = sys.executable if version == "3.11" else other_python(version)
    if python is None: pytest.skip(f"Python {version} is not installed (pyenv install {version})")
    out = tmp_path / "out.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}
    run = subprocess.run([str(python), "-c", WORKER, str(unicode_job["file"]), str(out)], env=env, cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    got, texts = json.loads(out.read_text()), unicode_job["texts"]
    bad_texts = [i for i, (g, w) in enumerate(zip(got["ids"], unicode_job["want_ids"])) if g != w]
    bad_cps = []
    for c, (g, w) in enumerate(zip(got["words"], unicode_job["want_words"])):
        if g != w:
            gs, ws = split_probes(g), split_probes(w)
            assert len(gs) == len(ws) == len(CODE_POINTS[c * PROBE_CHUNK:(c + 1) * PROBE_CHUNK])
            bad_cps += [CODE_POINTS[c * PROBE_CHUNK + j] for j, (a, b) in enumerate(zip(gs, ws)) if a != b]
    assert not bad_texts and not bad_cps, (
        f"Python {version}: {len(bad_texts)} of {len(texts)} strings and {len(bad_cps)} code points differ from transformers, "
        f"e.g. {[texts[i] for i in bad_texts[:3]]!r}, {[hex(cp) for cp in bad_cps[:10]]}")


# ---- drop-in: an over-long text comes back whole, with transformers' warning (once per tokenizer)
@pytest.mark.filterwarnings("ignore:`max_length` is ignored")
def test_long_input_is_returned_whole_with_transformers_warning(minilm, caplog):
    ours, ref = BertTokenizer.from_pretrained(minilm), HFBertTokenizer.from_pretrained(minilm)  # fresh: nothing warned yet
    import transformers
    verbosity = transformers.logging.get_verbosity()               # other test files silence transformers
    transformers.logging.set_verbosity_warning()
    logging.getLogger("transformers").addHandler(caplog.handler)  # transformers' logger does not propagate
    try:
        with caplog.at_level(logging.WARNING):
            for tok in (ours, ref):
                caplog.clear()
                single, batch = tok("word " * 600), tok(["short one", "word " * 700, "word " * 650])
                pair = tok("word " * 300, "more " * 300)
                records = {id(r): r for r in caplog.records}.values()  # a record that also propagates is seen twice
                logged = [r.getMessage() for r in records if "Token indices" in r.getMessage()]
                tok.out = (single["input_ids"], batch["input_ids"], pair["input_ids"], pair["token_type_ids"], logged)
    finally:
        logging.getLogger("transformers").removeHandler(caplog.handler)
        transformers.logging.set_verbosity(verbosity)
    assert ours.out[:4] == ref.out[:4] and len(ours.out[0]) == 602 and len(ours.out[2]) == 603
    # ours warns once per tokenizer; transformers' own count depends on how its logging is set up, so its text is compared
    assert ours.out[4] == sorted(set(ref.out[4])) == ["Token indices sequence length is longer than the specified maximum sequence length "
                                         "for this model (602 > 512). Running this sequence through the model will result in indexing errors"]
    assert ours("word " * 600, max_length=20, padding=True).input_ids == ref("word " * 600, max_length=20, padding=True).input_ids


# ---- atomic saves: a write that fails half-way leaves the old file whole and says why
def test_save_vocab_that_fails_half_way_keeps_the_old_file(minilm, tmp_path):
    "A real short write: `ulimit -f` (EFBIG) in a subprocess while save_pretrained writes MiniLM's 232 kB vocab.txt."
    folder = tmp_path / "saved"; folder.mkdir()
    (folder / "vocab.txt").write_text("[UNK]\nold\n")
    script = (f"from bert_lit.tokenizer import BertTokenizer\n"
              f"BertTokenizer.from_pretrained({str(minilm)!r}).save_pretrained({str(folder)!r})")
    run = subprocess.run(["bash", "-c", f"ulimit -f 100; exec {sys.executable} -c \"$0\"", script],
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert (folder / "vocab.txt").read_text() == "[UNK]\nold\n"  # not a truncated new vocabulary
    assert run.returncode != 0 and "no space left on" in run.stderr and "vocab.txt" in run.stderr, run.stderr[-2000:]
    assert sorted(p.name for p in folder.iterdir()) == ["vocab.txt"]  # no temporary file left behind


def test_tokenizer_config_write_that_fails_keeps_the_old_file(ours, tmp_path, monkeypatch):
    ours.save_pretrained(tmp_path)
    old = (tmp_path / "tokenizer_config.json").read_text()
    (tmp_path / "tokenizer_config.json").write_text(old.replace("512", "256"))
    real_fsync = os.fsync
    def full_disk(fd):
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".tokenizer_config.json"): raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)
    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="no space left on .* tokenizer_config.json"): ours.save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer_config.json").read_text() == old.replace("512", "256")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokenizer.json", "tokenizer_config.json", "vocab.txt"]


# ---- validation where input enters
def test_config_flags_must_be_json_booleans(minilm, tmp_path):
    "A string 'false' is true in Python: refused (transformers refuses it too), with the fix; JSON false works."
    folder = tmp_path / "tok"; folder.mkdir()
    (folder / "vocab.txt").write_bytes((minilm / "vocab.txt").read_bytes())
    for value in ("false", "False", "true"):
        (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": value}))
        with pytest.raises(TypeError, match=f"do_lower_case='{value}' must be true or false .* write {value.lower()} without quotes"):
            BertTokenizer.from_pretrained(folder)
        with pytest.raises(TypeError): HFBertTokenizer.from_pretrained(folder)
    for key, value, match in [("strip_accents", "no", "write true or false"), ("tokenize_chinese_chars", 1, "not int"),
                              ("model_max_length", "512", "must be an integer"), ("unk_token", 100, "must be a string")]:
        (folder / "tokenizer_config.json").write_text(json.dumps({key: value}))
        with pytest.raises(TypeError, match=match): BertTokenizer.from_pretrained(folder)
    with pytest.raises(TypeError, match="do_lower_case='no' must be True or False"): BertTokenizer(folder, do_lower_case="no")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    ours, ref = BertTokenizer.from_pretrained(folder), HFBertTokenizer.from_pretrained(folder)
    assert ours.do_lower_case is False and ours("Hello World").input_ids == ref("Hello World").input_ids != ours("hello world").input_ids


def test_vocab_with_a_byte_order_mark(minilm, tmp_path):
    """A UTF-8 BOM before the first line (Windows editors) is not part of token 0: ids as for the file without it.
    (transformers 5 keeps it: its token 0 is '\\ufeff[PAD]', and it appends a new [PAD] as id 30522.)"""
    (tmp_path / "vocab.txt").write_bytes(b"\xef\xbb\xbf" + (minilm / "vocab.txt").read_bytes())
    ours = BertTokenizer(tmp_path / "vocab.txt")
    ref = HFBertTokenizer(str(minilm / "vocab.txt"))  # the same file without the BOM
    assert ours.convert_ids_to_tokens(0) == "[PAD]" and len(ours) == 30522
    texts = ["a", "hello [PAD] world", "the cat sat on the mat."]
    assert ours(texts, padding=True).input_ids == ref(texts, padding=True).input_ids


def test_non_integer_ids_are_refused(ours, ref):
    "int(7592.9) is 7592: a float id is refused, never truncated (transformers' decode refuses floats too)."
    for bad in ([101, 7592.0, 102], [101.5], 7592.0, ["7592"], [True, 102], torch.tensor([101.0, 102.0])):
        with pytest.raises(TypeError, match="token ids must be integers"): ours.decode(bad)
        with pytest.raises(TypeError, match="token ids must be integers"): ours.convert_ids_to_tokens(bad)
    with pytest.raises(TypeError): ref.decode([101, 7592.0, 102])
    good = [101, 7592, 102]
    for ids in (good, tuple(good), torch.tensor(good), __import__("numpy").array(good)):
        assert ours.decode(ids) == ref.decode(good) and ours.convert_ids_to_tokens(ids) == ref.convert_ids_to_tokens(good)
    assert ours.convert_ids_to_tokens(7592) == ref.convert_ids_to_tokens(7592) == "hello"
    assert ours.convert_ids_to_tokens(torch.tensor(7592)) == "hello"
