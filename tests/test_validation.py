"""Issue 13: values are checked where they enter.

* config.json values of the wrong type or range are refused when the config is built (BertConfig, from_dict,
  from_json_file, read_config / from_pretrained), naming the key and the fix, not at the first forward pass;
* a config.json whose sizes disagree with the weights beside it is refused by from_pretrained with a message naming
  the config key and a tensor;
* model inputs given as lists, NumPy arrays or small integer dtypes are converted to torch.long (the result equals the
  torch.long input bit for bit); float and bool ids stay refused; bool and float masks work as integer ones.
Every case here failed before the change (a TypeError deep in torch, a late failure, or a silent acceptance).
"""
import json
import math

import numpy as np
import pytest
import torch

from bert_lit.data import minilm_checkpoint
from bert_lit.encoder import BertConfig, BertModel
from bert_lit.pretrained import read_config

SMALL = dict(vocab_size=50, hidden_size=24, num_hidden_layers=2, num_attention_heads=4, intermediate_size=40,
             max_position_embeddings=20, type_vocab_size=2)
MINILM = minilm_checkpoint()


# ---------------------------------------------------------------- config values

BAD_VALUES = [  # (key, value, error, what the message must say)
    ("layer_norm_eps", "1e-12", TypeError, r"layer_norm_eps='1e-12' must be a number, not str; write 1e-12 without"),
    ("layer_norm_eps", 0, ValueError, r"layer_norm_eps=0 must be a positive number"),
    ("layer_norm_eps", -1e-12, ValueError, r"layer_norm_eps=-1e-12 must be a positive number"),
    ("layer_norm_eps", math.nan, ValueError, r"layer_norm_eps=nan must be a positive number"),
    ("layer_norm_eps", None, TypeError, r"layer_norm_eps=None must be a number, not NoneType"),
    ("initializer_range", 0.0, ValueError, r"initializer_range=0.0 must be a positive number"),
    ("initializer_range", -0.02, ValueError, r"initializer_range=-0.02 must be a positive number"),
    ("initializer_range", "0.02", TypeError, r"initializer_range='0.02' must be a number.*write 0.02"),
    ("hidden_dropout_prob", 1.5, ValueError, r"hidden_dropout_prob=1.5 must be a probability in \[0, 1\]"),
    ("hidden_dropout_prob", -0.1, ValueError, r"hidden_dropout_prob=-0.1 must be a probability"),
    ("attention_probs_dropout_prob", 10, ValueError, r"attention_probs_dropout_prob=10 must be a probability"),
    ("attention_probs_dropout_prob", "0.1", TypeError, r"attention_probs_dropout_prob='0.1' must be a number"),
    ("hidden_dropout_prob", True, TypeError, r"hidden_dropout_prob=True must be a number, not bool"),
    ("hidden_act", ["gelu"], TypeError, r"hidden_act=\['gelu'\] must be a string, not list; use one of \["),
    ("hidden_act", None, TypeError, r"hidden_act=None must be a string"),
    ("pad_token_id", 2.0, TypeError, r"pad_token_id=2.0 must be an integer, not float; write 2"),
    ("pad_token_id", 2.5, TypeError, r"pad_token_id=2.5 must be an integer, not float"),
    ("pad_token_id", True, TypeError, r"pad_token_id=True must be an integer, not bool"),
    ("pad_token_id", -1, ValueError, r"pad_token_id=-1 is outside the vocabulary \[0, 50\)"),
    ("num_hidden_layers", True, TypeError, r"num_hidden_layers=True must be an integer, not bool"),
    ("hidden_size", 24.0, TypeError, r"hidden_size=24.0 must be an integer, not float; write 24"),
    ("hidden_size", "24", TypeError, r"hidden_size='24' must be an integer, not str; write 24 without quotes"),
    ("vocab_size", [50], TypeError, r"vocab_size=\[50\] must be an integer, not list"),
    ("type_vocab_size", 0, ValueError, r"type_vocab_size=0 must be a positive integer"),
]


@pytest.mark.parametrize("key, value, error, match", BAD_VALUES, ids=[f"{k}={v!r}" for k, v, *_ in BAD_VALUES])
def test_bad_config_values_are_refused_on_construction(key, value, error, match):
    with pytest.raises(error, match=match):
        BertConfig(**{**SMALL, key: value})
    with pytest.raises(error, match=match):
        BertConfig.from_dict({**SMALL, key: value})


def test_good_values_of_every_numeric_kind_are_accepted():
    c = BertConfig(**SMALL, hidden_dropout_prob=0, attention_probs_dropout_prob=1, layer_norm_eps=1,
                   initializer_range=1, pad_token_id=None)
    assert c.hidden_dropout_prob == 0 and c.pad_token_id is None
    assert BertConfig(**SMALL, pad_token_id=49).pad_token_id == 49


def test_config_that_is_not_a_dict_is_refused():
    with pytest.raises(TypeError, match="a config is a dict of hyperparameters"):
        BertConfig.from_dict([("hidden_size", 24)])
    with pytest.raises(TypeError, match="extra must be a dict"):
        BertConfig(**SMALL, extra=["foo"])


@pytest.mark.parametrize("key, value, error, match", [
    ("layer_norm_eps", "1e-12", TypeError, r"layer_norm_eps='1e-12' must be a number"),
    ("hidden_dropout_prob", 1.5, ValueError, r"hidden_dropout_prob=1.5 must be a probability"),
    ("hidden_act", ["gelu"], TypeError, r"hidden_act=\['gelu'\] must be a string"),
    ("pad_token_id", 2.0, TypeError, r"pad_token_id=2.0 must be an integer"),
])
def test_config_json_with_bad_values_is_refused_on_load_naming_the_file(tmp_path, key, value, error, match):
    "from_json_file, read_config and from_pretrained refuse the file before building anything, naming it."
    cfg = json.loads((MINILM / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, key: value}))
    (tmp_path / "model.safetensors").symlink_to(MINILM / "model.safetensors")
    for load in (lambda: BertConfig.from_json_file(tmp_path / "config.json"), lambda: read_config(tmp_path),
                 lambda: BertModel.from_pretrained(tmp_path)):
        with pytest.raises(error, match=match) as e:
            load()
        assert str(tmp_path / "config.json") in str(e.value)


# ---------------------------------------------------------------- config sizes vs the weights

@pytest.mark.parametrize("edit, expected", [
    (dict(intermediate_size=3072), r"config.json says intermediate_size=3072 but encoder.layer.0.intermediate.dense"
                                   r".weight has shape \(1536, 384\) \(and 17 more tensors\); set intermediate_size=1536"),
    (dict(hidden_size=768), r"config.json says hidden_size=768 but embeddings\.\w+\.weight has shape \(\d+, 384\) "
                            r"\(and 121 more tensors\); set hidden_size=384 in config.json"),
    (dict(vocab_size=30000), r"config.json says vocab_size=30000 but embeddings.word_embeddings.weight has shape "
                             r"\(30522, 384\); set vocab_size=30522"),
    (dict(max_position_embeddings=256), r"config.json says max_position_embeddings=256 but "
                                        r"embeddings.position_embeddings.weight has shape \(512, 384\)"),
    (dict(type_vocab_size=3), r"config.json says type_vocab_size=3 but embeddings.token_type_embeddings.weight"),
    (dict(num_hidden_layers=4), r"config.json says num_hidden_layers=4 but the checkpoint has 6 layers "
                                r"\(encoder.layer.0 to encoder.layer.5\); set num_hidden_layers=6"),
])
def test_config_sizes_that_disagree_with_the_weights_name_the_key(tmp_path, edit, expected):
    cfg = json.loads((MINILM / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, **edit}))
    (tmp_path / "model.safetensors").symlink_to(MINILM / "model.safetensors")
    with pytest.raises(ValueError, match=expected) as e:
        BertModel.from_pretrained(tmp_path)
    lines = str(e.value).splitlines()
    assert lines[1].startswith("config.json says"), lines[1]             # the cause comes before the symptoms
    assert len(lines) <= 2 + 2 + 21                                      # and the symptoms do not fill the screen
    with pytest.warns(UserWarning, match=expected):                        # strict=False says the same, and loads
        BertModel.from_pretrained(tmp_path, strict=False)


# ---------------------------------------------------------------- model inputs

@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return BertModel(BertConfig(**SMALL)).eval()


IDS = torch.tensor([[2, 11, 12, 13, 3], [2, 21, 3, 0, 0]])
MASK = (IDS != 0).long()
TYPES = torch.tensor([[0, 0, 1, 1, 1], [0, 0, 0, 0, 0]])
POSITIONS = torch.arange(5).expand(2, 5)


@pytest.mark.parametrize("convert", [
    lambda t: t.tolist(), lambda t: tuple(map(tuple, t.tolist())), lambda t: t.numpy(),
    lambda t: t.numpy().astype(np.int32), lambda t: t.numpy().astype(np.uint8),
    lambda t: t.to(torch.int8), lambda t: t.to(torch.int16), lambda t: t.to(torch.int32), lambda t: t.to(torch.uint8),
], ids=["list", "tuple", "numpy-int64", "numpy-int32", "numpy-uint8", "int8", "int16", "int32", "uint8"])
def test_lists_arrays_and_small_int_dtypes_are_converted(tiny, convert):
    with torch.no_grad():
        ref = tiny(IDS, MASK, TYPES, POSITIONS)
        out = tiny(convert(IDS), convert(MASK), convert(TYPES), convert(POSITIONS.contiguous()))
    torch.testing.assert_close(out.last_hidden_state, ref.last_hidden_state, atol=0, rtol=0)
    torch.testing.assert_close(out.pooler_output, ref.pooler_output, atol=0, rtol=0)


@pytest.mark.parametrize("mask", [MASK.bool(), MASK.float(), MASK.double(), MASK.bool().tolist(),
                                  MASK.numpy().astype(np.float32), MASK.numpy().astype(bool)],
                         ids=["bool", "float", "double", "bool-list", "numpy-float", "numpy-bool"])
def test_bool_and_float_masks_work_as_integer_ones(tiny, mask):
    "As in transformers: a mask of True/False or 1.0/0.0 means the same as one of 1/0."
    with torch.no_grad():
        torch.testing.assert_close(tiny(IDS, mask).last_hidden_state, tiny(IDS, MASK).last_hidden_state, atol=0, rtol=0)


@pytest.mark.parametrize("kw, error, match", [
    (dict(input_ids=IDS.float()), TypeError, r"input_ids must be a tensor of integer ids \(torch.long\), got torch.float32"),
    (dict(input_ids=IDS.bool()), TypeError, r"input_ids must be a tensor of integer ids .*got torch.bool"),
    (dict(input_ids=IDS.numpy().astype(np.float64)), TypeError, r"input_ids .*got torch.float64"),
    (dict(input_ids=IDS.float().tolist()), TypeError, r"input_ids .*got torch.float32"),
    (dict(input_ids=IDS, token_type_ids=TYPES.float()), TypeError, r"token_type_ids must be a tensor of integer ids"),
    (dict(input_ids=IDS, position_ids=POSITIONS.double()), TypeError, r"position_ids must be a tensor of integer ids"),
    (dict(input_ids=[[2, 11, 3], [2, 3]]), ValueError, r"input_ids is not a rectangular array .*padding=True"),
    (dict(input_ids=IDS, attention_mask=[[1, 1, 1, 1, 1], [1, 1]]), ValueError, r"attention_mask is not a rectangular"),
    (dict(input_ids=IDS, attention_mask="11111"), TypeError, r"attention_mask must be a tensor of 1 \(token\) and 0"),
    (dict(input_ids=IDS, attention_mask=[[1, 1, 1]]), ValueError, r"attention_mask has shape \(1, 3\) but input_ids"),
    (dict(input_ids=[2, 11, 3]), ValueError, r"add a batch dimension with input_ids\[None\]"),
    (dict(input_ids=IDS.to(torch.int8) - 1), ValueError, r"input_ids contains -1, outside \[0, 50\)"),
    (dict(input_ids=[[2] * 21]), ValueError, r"sequence of 21 tokens exceeds max_position_embeddings=20"),
    (dict(input_ids=np.full((1, 3), 60, dtype=np.uint8)), ValueError, r"input_ids contains 60, outside \[0, 50\)"),
])
def test_inputs_that_stay_refused(tiny, kw, error, match):
    with pytest.raises(error, match=match):
        tiny(**kw)
