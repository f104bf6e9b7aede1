"""Issue 17, the models: the API that transformers users' code calls, each item against transformers itself.

Chapter 5.1 (BertConfig's generic keys, num_labels, id2label), chapter 5.2 (config.output_* honoured, return_dict,
inputs_embeds, get/set_input_embeddings, num_parameters, base_model, main_input_name, gradient checkpointing) and
the heads of chapters 8-10 (the same requests, return_dict=False, inputs_embeds).
"""
import pytest
import torch
import transformers

import bert_lit
from bert_lit.config import GENERIC_DEFAULTS
from conftest import fp32_atol

SMALL = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
             max_position_embeddings=64)
HEADS = ["BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForNextSentencePrediction",
         "BertForSequenceClassification", "BertForTokenClassification", "BertForQuestionAnswering"]


def pair(name, **config):
    "The same random weights in a transformers model and a bert_lit model of class `name`, both in eval mode."
    torch.manual_seed(0)
    theirs = getattr(transformers, name)(transformers.BertConfig(**SMALL, **config, attn_implementation="eager")).eval()
    ours = getattr(bert_lit, name)(bert_lit.BertConfig(**SMALL, **config)).eval()
    missing, unexpected = ours.load_state_dict(theirs.state_dict(), strict=False)
    assert not [k for k in missing if "position_ids" not in k] and not unexpected
    return theirs, ours


def close(ours, theirs, layers=2):
    """Equal up to float32 rounding: the small model's longest sum is the feed-forward's 37 terms, per layer.
    Per-token tensors of batch() are compared at its real tokens: bert_lit skips the padding (chapter 11) and leaves
    zeros there, transformers computes it."""
    keep = batch()["attention_mask"].bool()
    if ours.dim() >= 2 and ours.shape[:2] == keep.shape:
        assert (ours[~keep] == 0).all()
        ours, theirs = ours[keep], theirs[keep]
    torch.testing.assert_close(ours, theirs, atol=fp32_atol(theirs, 37, layers=layers), rtol=0)


def batch():
    ids = torch.tensor([[2, 11, 12, 13, 14, 3], [2, 21, 22, 3, 0, 0]])
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "token_type_ids": torch.zeros_like(ids)}


def test_generic_config_keys_read_as_transformers_defaults():
    ours, theirs = bert_lit.BertConfig(), transformers.BertConfig()
    for key in GENERIC_DEFAULTS:
        assert getattr(ours, key) == getattr(theirs, key), key
    assert (ours.num_labels, ours.id2label, ours.label2id) == (theirs.num_labels, theirs.id2label, theirs.label2id)


def test_config_takes_and_keeps_transformers_keywords():
    kwargs = dict(is_decoder=False, add_cross_attention=False, chunk_size_feed_forward=0, num_labels=3,
                  classifier_dropout=0.2, problem_type="single_label_classification")
    ours, theirs = bert_lit.BertConfig(**SMALL, **kwargs), transformers.BertConfig(**SMALL, **kwargs)
    for key in ("is_decoder", "chunk_size_feed_forward", "num_labels", "id2label", "label2id", "classifier_dropout",
                "problem_type"):
        assert getattr(ours, key) == getattr(theirs, key), key
    ours.output_hidden_states = theirs.output_hidden_states = True
    back = bert_lit.BertConfig.from_dict(ours.to_dict())
    assert back.output_hidden_states is True and back.num_labels == 3 and back.is_decoder is False
    with pytest.raises(AttributeError, match="no key 'not_a_key'"):
        ours.not_a_key


@pytest.mark.parametrize("name", HEADS)
def test_config_requests_return_dict_and_inputs_embeds_as_transformers(name):
    theirs, ours = pair(name)
    b = batch()
    for model in (theirs, ours):
        model.config.output_attentions = model.config.output_hidden_states = True
    t, o = theirs(**b), ours(**b)
    assert len(o.attentions) == len(t.attentions) == 2 and len(o.hidden_states) == len(t.hidden_states) == 3
    for x, y in zip(o.hidden_states, t.hidden_states):
        close(x, y)
    assert ours(**b, output_attentions=False).attentions is None            # the argument wins over the config
    for model in (theirs, ours):
        model.config.output_attentions = model.config.output_hidden_states = False
    t, o = theirs(**b, return_dict=False), ours(**b, return_dict=False)
    assert isinstance(o, tuple) and isinstance(t, tuple)
    if name not in ("BertForPreTraining", "BertForMaskedLM"):   # (masked-LM logits differ by design without labels)
        close(o[0], t[0])     # the first field: hidden states or logits
    embeds = theirs.get_input_embeddings()(b["input_ids"])
    t = theirs(inputs_embeds=embeds, attention_mask=b["attention_mask"])
    o = ours(inputs_embeds=embeds, attention_mask=b["attention_mask"])
    key = {"BertModel": "last_hidden_state", "BertForQuestionAnswering": "start_logits"}.get(name)
    if key is None and name not in ("BertForPreTraining", "BertForMaskedLM"):
        key = "logits"
    if key is not None:
        close(o[key], t[key])
    with pytest.raises(ValueError, match="not both"):
        ours(input_ids=b["input_ids"], inputs_embeds=embeds)


@pytest.mark.parametrize("name", HEADS)
def test_embeddings_parameters_and_attributes_as_transformers(name):
    theirs, ours = pair(name)
    assert torch.equal(ours.get_input_embeddings().weight, theirs.get_input_embeddings().weight)
    for kwargs in ({}, {"exclude_embeddings": True}, {"only_trainable": True}):
        assert ours.num_parameters(**kwargs) == theirs.num_parameters(**kwargs), kwargs
    assert ours.main_input_name == theirs.main_input_name == "input_ids"
    assert type(ours.base_model).__name__ == type(theirs.base_model).__name__ == "BertModel"
    assert ours.supports_gradient_checkpointing and theirs.supports_gradient_checkpointing
    table = torch.nn.Embedding(120, 32)
    ours.set_input_embeddings(table)
    assert ours.get_input_embeddings() is table and ours.config.vocab_size == 120


def test_gradient_checkpointing_gives_transformers_gradients():
    theirs, ours = pair("BertForSequenceClassification", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    b, labels = batch(), torch.tensor([0, 1])
    grads = {}
    for who, model in (("theirs", theirs), ("ours", ours)):
        model.train()
        model.gradient_checkpointing_enable()
        assert model.is_gradient_checkpointing
        model(**b, labels=labels).loss.backward()
        grads[who] = {k: p.grad for k, p in model.named_parameters() if p.grad is not None}
    assert grads["ours"].keys() == grads["theirs"].keys()
    scale = max(g.abs().max() for g in grads["theirs"].values())
    for k in grads["ours"]:
        # a weight's gradient also sums over the 12 tokens; its rounding comes from the largest gradients upstream
        torch.testing.assert_close(grads["ours"][k], grads["theirs"][k], atol=fp32_atol(scale, 37 * 12, layers=4), rtol=0)
    ours.gradient_checkpointing_disable()
    assert not ours.is_gradient_checkpointing


def saved(tmp_path, name, **config):
    "A folder written by transformers' save_pretrained, and the transformers model."
    torch.manual_seed(0)
    model = getattr(transformers, name)(transformers.BertConfig(**SMALL, **config))
    model.save_pretrained(tmp_path / name)
    return tmp_path / name, model


def same_info(ours, theirs):
    assert ours.keys() == theirs.keys()
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        assert set(ours[key]) == set(theirs[key]), key


@pytest.mark.filterwarnings("ignore")
def test_from_pretrained_keywords_and_loading_info_as_transformers(tmp_path):
    head, _ = saved(tmp_path, "BertForSequenceClassification")
    base, _ = saved(tmp_path, "BertModel")
    cases = [("BertForSequenceClassification", head, dict(num_labels=3, ignore_mismatched_sizes=True)),
             ("BertModel", head, dict(output_attentions=True, hidden_dropout_prob=0.0)),
             ("BertForSequenceClassification", base, {}),
             ("BertForTokenClassification", base, dict(num_labels=5))]
    for name, folder, kwargs in cases:
        o, o_info = getattr(bert_lit, name).from_pretrained(folder, output_loading_info=True, **kwargs)
        t, t_info = getattr(transformers, name).from_pretrained(folder, output_loading_info=True, **kwargs)
        same_info(o_info, t_info)
        for key in ("num_labels", "output_attentions", "hidden_dropout_prob"):
            assert getattr(o.config, key) == getattr(t.config, key), (name, key)
        loaded = {k for k in t.state_dict() if k not in t_info["missing_keys"] and "position_ids" not in k and
                  k not in {m[0] for m in t_info["mismatched_keys"]}}
        for k in loaded:
            assert torch.equal(o.state_dict()[k], t.state_dict()[k]), (name, k)
    with pytest.raises(TypeError, match="num_label"):
        bert_lit.BertModel.from_pretrained(base, num_label=3)
    with pytest.raises(ValueError, match="shape mismatch"):
        bert_lit.BertForSequenceClassification.from_pretrained(head, num_labels=3)   # without the option: refused


def test_save_pretrained_options(tmp_path):
    _, ours = pair("BertModel")
    ours.save_pretrained(tmp_path / "kept", safe_serialization=True)
    assert (tmp_path / "kept" / "model.safetensors").is_file()
    ours.save_pretrained(tmp_path / "skipped", is_main_process=False)
    assert not (tmp_path / "skipped").exists()
    with pytest.raises(ValueError, match="safetensors only"):
        ours.save_pretrained(tmp_path / "pickle", safe_serialization=False)
    back = transformers.BertModel.from_pretrained(tmp_path / "kept")
    assert torch.equal(back.embeddings.word_embeddings.weight, ours.embeddings.word_embeddings.weight)


def test_multiple_choice_and_next_sentence_heads_equal_transformers():
    theirs, ours = pair("BertForMultipleChoice")
    torch.manual_seed(1)
    ids = torch.randint(5, 99, (3, 4, 9))                       # 3 questions, 4 candidates, 9 tokens
    mask = torch.ones_like(ids)
    mask[:, :, 7:] = 0
    labels = torch.tensor([2, 0, 3])
    with torch.no_grad():
        t, o = theirs(input_ids=ids, attention_mask=mask, labels=labels), ours(input_ids=ids, attention_mask=mask, labels=labels)
    close(o.logits, t.logits)
    close(o.loss, t.loss)
    theirs, ours = pair("BertForNextSentencePrediction")
    b, nsp = batch(), torch.tensor([[1], [0]])                  # (B, 1) labels, as transformers accepts
    with torch.no_grad():
        t, o = theirs(**b, labels=nsp), ours(**b, labels=nsp)
    close(o.logits, t.logits)
    close(o.loss, t.loss)


def test_sequence_labels_of_minus_100_are_ignored_as_transformers():
    theirs, ours = pair("BertForSequenceClassification", num_labels=3)
    b = {k: torch.cat([v, v]) for k, v in batch().items()}
    labels = torch.tensor([2, -100, 0, -100])
    with torch.no_grad():
        t, o = theirs(**b, labels=labels), ours(**b, labels=labels)
    close(o.loss, t.loss)
    with pytest.raises(ValueError, match="contains 3"):
        ours(**b, labels=torch.tensor([3, 0, 0, 0]))


@pytest.mark.parametrize("name", ["BertModel", "BertForMaskedLM", "BertForPreTraining", "BertForSequenceClassification"])
def test_resize_token_embeddings_as_transformers(name):
    theirs, ours = pair(name)
    b = batch()
    t_table, o_table = theirs.resize_token_embeddings(105, pad_to_multiple_of=8), ours.resize_token_embeddings(105, pad_to_multiple_of=8)
    assert o_table.num_embeddings == t_table.num_embeddings == ours.config.vocab_size == theirs.config.vocab_size == 112
    assert torch.equal(o_table.weight[:99], t_table.weight[:99])          # the old rows kept, by both
    torch.testing.assert_close(o_table.weight[99:], o_table.weight[:99].mean(0).expand(13, -1))
    with torch.no_grad():
        t, o = theirs(**b), ours(**b)
    first = {"BertModel": "last_hidden_state", "BertForSequenceClassification": "logits"}.get(name)
    if first:
        close(o[first], t[first])
    else:                                                                  # masked-LM: the old tokens' logits agree
        key = "logits" if name == "BertForMaskedLM" else "prediction_logits"
        assert o[key].shape == t[key].shape == (2, 6, 112)
        close(o[key][..., :99], t[key][..., :99], layers=3)   # and the decoder
        decoder = ours.get_output_embeddings()
        assert decoder.weight is ours.get_input_embeddings().weight and decoder.bias is ours.cls.predictions.bias
        assert decoder.bias.shape == (112,)
    ours(input_ids=torch.tensor([[2, 111, 3]]))                               # a new id is accepted


def test_sentence_embeddings_of_pairs_and_token_embeddings_against_transformers():
    from bert_lit.data import minilm_checkpoint
    from bert_lit.pretrained import sentence_embeddings
    folder = minilm_checkpoint()
    pairs = [("How old is the universe?", "About 13.8 billion years."), ("Who wrote Hamlet?", "Shakespeare did.")]
    ours = bert_lit.BertModel.from_pretrained(folder)
    tokens = sentence_embeddings(ours, bert_lit.BertTokenizer.from_pretrained(folder), pairs, output_value="token_embeddings")
    theirs, hf_tok = transformers.BertModel.from_pretrained(folder).eval(), transformers.BertTokenizer.from_pretrained(folder)
    for (a, b), t in zip(pairs, tokens):
        with torch.no_grad():
            ref = theirs(**hf_tok(a, b, return_tensors="pt")).last_hidden_state[0]     # one pair, no padding
        assert t.shape == ref.shape
        torch.testing.assert_close(t, ref, atol=fp32_atol(ref, 1536, layers=6), rtol=0)   # MiniLM: I = 1536, L = 6
    vectors = sentence_embeddings(ours, bert_lit.BertTokenizer.from_pretrained(folder), pairs)
    torch.testing.assert_close(vectors, torch.nn.functional.normalize(torch.stack([t.mean(0) for t in tokens]), dim=1))
