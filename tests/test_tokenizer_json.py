"""tokenizer.json (issue 16, part 3): folders written by transformers 5 (tokenizer.json + tokenizer_config.json, no
vocab.txt) load in bert_lit, and bert_lit's save_pretrained folders load in transformers 5 and in the tokenizers
library, with identical ids; what bert_lit cannot honour (BPE, Unigram, other pipelines, bad ids, damaged JSON) is
refused with the file named. References: transformers 5's BertTokenizer (Rust-backed) and tokenizers.Tokenizer."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tokenizers
import transformers
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from bert_lit import data
from bert_lit.tokenizer import BertTokenizer, read_tokenizer_json

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = [dict(), dict(do_lower_case=False), dict(strip_accents=False), dict(do_lower_case=False, strip_accents=True),
           dict(tokenize_chinese_chars=False)]
HARD = ["Héllo  wörld\t\u00a0Café, naïve ÀÉÎ ǖ", "BERT是谷歌于2018年提出的预训练语言模型。",
        "한국어 日本語のテキスト", "ΟΔΟΣ İstanbul ǅ ﬁ", "odd\u2028white\u3000space\r\nand\x0bcontrol\x05\u200b chars", "cafe\u0301 e\u0301",
        "a [MASK] b [SEP] [CLS]", "x" * 150 + " tail", "", "   ", "emoji 😀 and \U0002b820 \ue000"]


@pytest.fixture(scope="module")
def minilm():
    return data.minilm_checkpoint()


@pytest.fixture(scope="module")
def vocab(minilm):
    "MiniLM's vocab.txt read line by line here (not by bert_lit): token -> line number."
    lines = (minilm / "vocab.txt").read_text(encoding="utf-8").split("\n")
    return {t: i for i, t in enumerate(lines[:-1] if lines[-1] == "" else lines)}


@pytest.fixture(scope="module")
def texts():
    "A few hundred real sentences (Brown, VADER) and the hard cases: accents, CJK, odd whitespace, controls."
    brown = [data.detokenize(s.words) for d in data.brown()[::25] for s in d.sentences[:8]][:150]
    vader = [r.text for r in data.vader_sentences()[::150]][:150]
    return brown + vader + HARD


def encodings(tok, texts):
    "input_ids and token_type_ids of each text alone and of consecutive texts as pairs."
    singles, pairs = tok(texts), tok(texts[:-1], texts[1:])
    return singles["input_ids"], singles["token_type_ids"], pairs["input_ids"], pairs["token_type_ids"]


def rust_encodings(file, texts):
    "The same four lists from tokenizers.Tokenizer.from_file: the file alone, no tokenizer_config.json."
    rust = Tokenizer.from_file(str(file))
    singles, pairs = rust.encode_batch(texts), rust.encode_batch(list(zip(texts[:-1], texts[1:])))
    return [e.ids for e in singles], [e.type_ids for e in singles], [e.ids for e in pairs], [e.type_ids for e in pairs]


def transformers_folder(vocab, tmp_path, **options):
    "A folder as transformers 5 saves it: tokenizer.json and tokenizer_config.json, vocab.txt deleted if written."
    ref = transformers.BertTokenizer(vocab=dict(vocab), **options)  # vocab_file= would be ignored by transformers 5
    assert len(ref) == len(vocab) and ref.convert_tokens_to_ids("[CLS]") == vocab["[CLS]"]
    folder = tmp_path / "hf"
    ref.save_pretrained(folder)
    (folder / "vocab.txt").unlink(missing_ok=True)
    assert sorted(p.name for p in folder.iterdir()) == ["tokenizer.json", "tokenizer_config.json"]
    return ref, folder


# ---- transformers 5 -> bert_lit
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "uncased")
def test_folder_saved_by_transformers_5_loads_with_the_same_ids(vocab, texts, tmp_path, options):
    "Defect: BertTokenizer.from_pretrained raised FileNotFoundError 'no vocab file' on such a folder."
    ref, folder = transformers_folder(vocab, tmp_path, **options)
    ours = BertTokenizer.from_pretrained(folder)
    assert ours.vocab == vocab and ours.vocab_file == folder / "tokenizer.json"
    got, want = encodings(ours, texts), encodings(ref, texts)
    for g, w, what in zip(got, want, ("input_ids", "token_type_ids", "pair input_ids", "pair token_type_ids")):
        bad = next((i for i in range(len(w)) if g[i] != w[i]), None)
        assert bad is None, f"{what} differ for {texts[bad]!r}:\n ours {g[bad]}\n  ref {w[bad]}"
    assert ours.decode(got[0][0]) == ref.decode(want[0][0])


# ---- bert_lit -> transformers 5 and tokenizers
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "uncased")
def test_saved_folder_loads_in_transformers_5_and_tokenizers(minilm, vocab, texts, tmp_path, options):
    "Defect: save_pretrained wrote no tokenizer.json, so without vocab.txt neither library could load the folder."
    ours = BertTokenizer(minilm, **options)
    folder = tmp_path / "ours"
    assert [p.name for p in ours.save_pretrained(folder)] == ["vocab.txt", "tokenizer.json", "tokenizer_config.json"]
    (folder / "vocab.txt").unlink()  # only tokenizer.json describes the vocabulary now
    want = encodings(ours, texts)
    hf = transformers.AutoTokenizer.from_pretrained(folder)
    assert type(hf).__name__ == "BertTokenizer" and len(hf) == len(vocab)
    assert encodings(hf, texts) == want
    assert rust_encodings(folder / "tokenizer.json", texts) == want  # reads the normalizer from tokenizer.json alone
    assert encodings(BertTokenizer.from_pretrained(folder), texts) == want


def test_saved_tokenizer_json_is_what_transformers_5_writes(vocab, tmp_path, minilm):
    "The same vocabulary and options: bert_lit's tokenizer.json equals transformers 5's, as JSON."
    for i, options in enumerate(OPTIONS):
        _, folder = transformers_folder(vocab, tmp_path / str(i), **options)
        BertTokenizer(minilm, **options).save_pretrained(tmp_path / "ours")
        ours, theirs = (json.loads((f / "tokenizer.json").read_text(encoding="utf-8")) for f in (tmp_path / "ours", folder))
        assert ours == theirs, options


def test_every_option_survives_a_round_trip_through_tokenizer_json(minilm, texts, tmp_path):
    ours = BertTokenizer(minilm, do_lower_case=False, strip_accents=True, tokenize_chinese_chars=False,
                         model_max_length=64, max_input_chars_per_word=12)
    ours.save_pretrained(tmp_path)
    (tmp_path / "vocab.txt").unlink()
    back = BertTokenizer.from_pretrained(tmp_path)
    assert (back.do_lower_case, back.strip_accents, back.tokenize_chinese_chars, back.model_max_length) == (False, True, False, 64)
    assert back.wordpiece.max_input_chars_per_word == 12 and back.special == ours.special
    assert encodings(back, texts) == encodings(ours, texts)
    assert back("x" * 13).input_ids == [101, 100, 102]  # longer than 12 characters: [UNK]
    assert rust_encodings(tmp_path / "tokenizer.json", texts[:50]) == encodings(ours, texts[:50])


def test_older_bert_processing_post_processor(vocab, texts, tmp_path):
    "tokenizer.json files from older tokenizers releases carry BertProcessing; it means BERT's template."
    _, folder = transformers_folder(vocab, tmp_path)
    rust = Tokenizer.from_file(str(folder / "tokenizer.json"))
    rust.post_processor = processors.BertProcessing(("[SEP]", vocab["[SEP]"]), ("[CLS]", vocab["[CLS]"]))
    rust.save(str(folder / "tokenizer.json"))
    assert json.loads((folder / "tokenizer.json").read_text())["post_processor"]["type"] == "BertProcessing"
    assert encodings(BertTokenizer.from_pretrained(folder), texts) == rust_encodings(folder / "tokenizer.json", texts)


def test_loading_and_saving_need_neither_tokenizers_nor_transformers(minilm, tmp_path):
    "Both libraries blocked in a fresh interpreter: bert_lit writes and reads tokenizer.json on its own."
    code = ("import sys; sys.modules['tokenizers'] = sys.modules['transformers'] = None\n"
            "from pathlib import Path; from bert_lit.tokenizer import BertTokenizer\n"
            f"out = Path({str(tmp_path)!r}); BertTokenizer({str(minilm)!r}).save_pretrained(out); (out / 'vocab.txt').unlink()\n"
            "print(BertTokenizer.from_pretrained(out)('Hello world').input_ids)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0 and run.stdout.strip() == "[101, 7592, 2088, 102]", run.stderr[-2000:]


# ---- what cannot be honoured is refused, naming the file
def saved(tokenizer: Tokenizer, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder


def test_bpe_and_unigram_tokenizers_are_refused(tmp_path):
    "Defect: any folder without vocab.txt raised FileNotFoundError, which did not say what the folder held."
    bpe = Tokenizer(models.BPE(vocab={"[UNK]": 0, "a": 1, "b": 2, "ab": 3}, merges=[("a", "b")], unk_token="[UNK]"))
    unigram = Tokenizer(models.Unigram([("[UNK]", 0.0), ("a", -1.0), ("b", -2.0)], unk_id=0))
    wordlevel = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    for name, tok in [("BPE", bpe), ("Unigram", unigram), ("WordLevel", wordlevel)]:
        folder = saved(tok, tmp_path / name)
        with pytest.raises(ValueError, match=f"{re.escape(str(folder))}/tokenizer.json: model.type is '{name}'; bert_lit reads WordPiece"):
            BertTokenizer.from_pretrained(folder)
        with pytest.raises(ValueError, match="model.type is"): read_tokenizer_json(folder / "tokenizer.json")


def wordpiece(vocab) -> Tokenizer:
    "A BERT pipeline built with the tokenizers library, to change one stage of."
    tok = Tokenizer(models.WordPiece(dict(vocab), unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizers.BertNormalizer(), pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return tok


def test_wordpiece_pipelines_that_are_not_berts_are_refused(vocab, tmp_path):
    cases = {"normalizer": (normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()]), "normalizer.type is 'Sequence'"),
             "no normalizer": (None, "normalizer.type is None"),
             "clean_text": (normalizers.BertNormalizer(clean_text=False), "normalizer.clean_text is False"),
             "pre_tokenizer": (pre_tokenizers.Whitespace(), "pre_tokenizer is 'Whitespace'"),
             "post_processor": (processors.RobertaProcessing(("[SEP]", 102), ("[CLS]", 101)), "post_processor .* is not BERT's"),
             "template": (processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",  # B's type 0
                                                        special_tokens=[("[CLS]", 101), ("[SEP]", 102)]),
                          "post_processor .'TemplateProcessing'. is not BERT's template")}
    part_of = {"no normalizer": "normalizer", "clean_text": "normalizer", "template": "post_processor"}
    for name, (part, message) in cases.items():
        tok = wordpiece(vocab)
        setattr(tok, part_of.get(name, name), part)
        folder = saved(tok, tmp_path / name.replace(" ", "_"))
        with pytest.raises(ValueError, match=f"tokenizer.json: {message}"): BertTokenizer.from_pretrained(folder)
    prefixed = wordpiece(vocab)
    prefixed.model = models.WordPiece(dict(vocab), unk_token="[UNK]", continuing_subword_prefix="@@")
    with pytest.raises(ValueError, match="continuing_subword_prefix is '@@'; bert_lit reads '##' only"):
        BertTokenizer.from_pretrained(saved(prefixed, tmp_path / "prefix"))
    added = wordpiece(vocab)
    added.add_tokens([tokenizers.AddedToken("[unused5]", lstrip=True)])   # plain added tokens load (issue 17); lstrip not
    with pytest.raises(ValueError, match=r"added token '\[unused5\]' sets single_word, lstrip or rstrip"):
        BertTokenizer.from_pretrained(saved(added, tmp_path / "added"))
    assert BertTokenizer.from_pretrained(saved(wordpiece(vocab), tmp_path / "fine")).vocab == vocab  # the unchanged pipeline


def test_ids_with_gaps_or_repeats_are_refused(tmp_path):
    base = json.loads(BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"]).save_pretrained(tmp_path / "ok")[1].read_text())
    for name, vocab, message in [("gap", {"[UNK]": 0, "[CLS]": 1, "[SEP]": 3}, "has no token with id 2; ids must run from 0 to 2"),
                                 ("repeat", {"[UNK]": 0, "[CLS]": 1, "[SEP]": 1}, "'[CLS]' and '[SEP]' both have id 1"),
                                 ("string id", {"[UNK]": 0, "[CLS]": "1"}, "is not an integer id")]:
        folder = tmp_path / name; folder.mkdir()
        (folder / "tokenizer.json").write_text(json.dumps({**base, "added_tokens": [], "post_processor": None,
                                                           "model": {**base["model"], "vocab": vocab}}))
        with pytest.raises(ValueError, match=f"{re.escape(str(folder))}/tokenizer.json: .*{re.escape(message)}"): BertTokenizer.from_pretrained(folder)


def test_missing_files_name_both(tmp_path):
    "Defect: the error named only 'a vocab.txt or a folder holding one'."
    for load in (BertTokenizer.from_pretrained, BertTokenizer):
        with pytest.raises(FileNotFoundError, match=f"no vocab file at {re.escape(str(tmp_path))}: a folder must hold vocab.txt or tokenizer.json"):
            load(tmp_path)


def test_damaged_json_is_named(minilm, tmp_path):
    "Defect: no tokenizer.json was read at all; a damaged tokenizer_config.json raised a bare JSONDecodeError."
    text = (minilm / "tokenizer.json").read_text(encoding="utf-8")
    for name, content in [("cut", text[:5000].encode()), ("latin1", "{\"model\": \"caf\xe9\"}".encode("latin-1")), ("list", b"[1, 2]")]:
        folder = tmp_path / name; folder.mkdir()
        (folder / "tokenizer.json").write_bytes(content)
        with pytest.raises(ValueError, match=f"{re.escape(str(folder))}/tokenizer.json: (not valid JSON|expected a JSON object)"):
            BertTokenizer.from_pretrained(folder)
    folder = tmp_path / "config"; folder.mkdir()
    (folder / "tokenizer.json").write_text(text, encoding="utf-8")
    (folder / "tokenizer_config.json").write_text('{"do_lower_case": true,')
    with pytest.raises(ValueError, match=r"tokenizer_config.json: not valid JSON \(Expecting"): BertTokenizer.from_pretrained(folder)


def test_files_that_disagree_are_refused_unless_an_argument_chooses(vocab, texts, tmp_path):
    "transformers follows tokenizer_config.json, tokenizers follows tokenizer.json: a folder where they differ is ambiguous."
    ref, folder = transformers_folder(vocab, tmp_path)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "do_lower_case": False}))
    with pytest.raises(ValueError, match="tokenizer.json has do_lower_case=True but tokenizer_config.json has False.*pass do_lower_case="):
        BertTokenizer.from_pretrained(folder)
    chosen = BertTokenizer.from_pretrained(folder, do_lower_case=False)
    assert chosen("Hello").input_ids == transformers.AutoTokenizer.from_pretrained(folder)("Hello").input_ids  # theirs: the config


def test_the_constructor_sends_tokenizer_json_to_from_pretrained(vocab, tmp_path):
    "BertTokenizer(folder) would apply its own defaults over the file's settings: refused with the call to make."
    _, folder = transformers_folder(vocab, tmp_path, do_lower_case=False)
    with pytest.raises(ValueError, match=r"holds the tokenizer's settings .* BertTokenizer.from_pretrained\("):
        BertTokenizer(folder)
    assert BertTokenizer.from_pretrained(folder).do_lower_case is False
