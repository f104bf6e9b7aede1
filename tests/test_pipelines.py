"""Appendix B: `pipeline(...)` against transformers' own pipelines on the same weights (tiny random heads saved to a
folder, and the real MiniLM): the same tokens and scores for fill-mask, the same label and score for text
classification, the same words, tags and offsets for token classification (texts of one-piece words, where
bert_lit's per-word tags and transformers' per-token tags are the same thing), and the same hidden states."""
import pytest
import torch
import transformers

from bert_lit import pipeline
from bert_lit.config import BertConfig
from bert_lit.data import minilm_checkpoint
from bert_lit.finetuning import BertForSequenceClassification, BertForTokenClassification
from bert_lit.pretraining import BertForMaskedLM
from bert_lit.tokenizer import BertTokenizer

TEXTS = ["the city council met on monday .", "john smith lives in paris and london ."]


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer.from_pretrained(minilm_checkpoint())


def saved(tmp_path, tokenizer, head, **kwargs):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64)
    model = head(config, **kwargs)
    with torch.no_grad():                      # larger weights than the initialisation: scores far from uniform
        for p in model.parameters():
            p.normal_(0, 0.3) if p.dim() > 1 else None
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    return str(tmp_path)


def test_fill_mask_matches_transformers(tmp_path, tokenizer):
    folder = saved(tmp_path, tokenizer, BertForMaskedLM)
    ours = pipeline("fill-mask", folder, top_k=5)("the city [MASK] met on monday .")
    ref = transformers.pipeline("fill-mask", model=folder, top_k=5)("the city [MASK] met on monday .")
    assert [r["token"] for r in ours] == [r["token"] for r in ref]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(ours, ref)) < 2e-3    # ours rounded to 3 decimals


def test_text_classification_matches_transformers(tmp_path, tokenizer):
    folder = saved(tmp_path, tokenizer, BertForSequenceClassification, labels=["neg", "neu", "pos"])
    ours = pipeline("text-classification", folder)(TEXTS)
    ref = transformers.pipeline("text-classification", model=folder)(TEXTS)
    assert [r["label"] for r in ours] == [r["label"] for r in ref]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(ours, ref)) < 1e-4    # ours rounded to 4 decimals


@pytest.mark.parametrize("strategy", ["none", "simple"])
def test_token_classification_matches_transformers_on_one_piece_words(tmp_path, tokenizer, strategy):
    folder = saved(tmp_path, tokenizer, BertForTokenClassification, labels=["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    for text in TEXTS:
        assert all(len(tokenizer.tokenize(w)) == 1 for w in text.split())
    ours = pipeline("ner", folder, aggregation_strategy=strategy)(TEXTS)
    ref = transformers.pipeline("token-classification", model=folder, aggregation_strategy=strategy)(TEXTS)
    key = "entity" if strategy == "none" else "entity_group"
    for o, r in zip(ours, ref):
        assert [(x[key], x["word"], x["start"], x["end"]) for x in o] == \
               [(x[key], x["word"], x["start"], x["end"]) for x in r]
        assert all(abs(a["score"] - float(b["score"])) < 1e-5 for a, b in zip(o, r))


def test_feature_extraction_matches_transformers():
    folder = str(minilm_checkpoint())
    ours = torch.tensor(pipeline("feature-extraction", "minilm")(TEXTS[1]))
    ref = torch.tensor(transformers.pipeline("feature-extraction", model=folder)(TEXTS[1]))
    assert ours.shape == ref.shape and (ours - ref).abs().max() < 1e-4    # fp32, 6 layers of width 384


def test_question_answering_returns_a_span_of_its_context(tmp_path, tokenizer):
    from bert_lit.qa import BertForQuestionAnswering
    folder = saved(tmp_path, tokenizer, BertForQuestionAnswering)
    qa = pipeline("question-answering", folder)
    context = "The Brown corpus was compiled at Brown University in 1961."
    got = qa(question="Where was it compiled?", context=context)
    assert set(got) == {"score", "start", "end", "answer"} and got["answer"] == context[got["start"]:got["end"]]
    assert qa([{"question": "When?", "context": context}] * 3) == [qa(question="When?", context=context)] * 3
    with pytest.raises(ValueError, match="dicts with 'question' and 'context'"):
        qa(["When?"])
