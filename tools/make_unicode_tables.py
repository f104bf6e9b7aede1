"""Generate bert_lit/unicode_tables.json: the Unicode tables of the tokenizer's default mode.

    python tools/make_unicode_tables.py [OUT]        (default OUT: bert_lit/unicode_tables.json)

What it derives from: the reference itself. The default mode of bert_lit.tokenizer reproduces the
`BertTokenizer` of `transformers`, whose text processing is the Rust `tokenizers` library:
`normalizers.BertNormalizer` (clean text, strip accents, lower-case) and
`pre_tokenizers.BertPreTokenizer` (split at whitespace and punctuation). Those are compiled with
their own Unicode tables (general categories from Unicode 8.0, NFD from the normalisation crate,
lower-casing and whitespace from the Rust standard library), which do not change with the Python
that runs them. Python's `unicodedata` does change (Unicode 14.0 in 3.11, 15.0 in 3.12, 15.1 in
3.13), so the default mode reads these probed tables instead. Every code point 0..0x10FFFF except
the surrogates (which a Rust string cannot hold) is run through the reference with one option on
at a time:

- control:      BertNormalizer(clean_text only) deletes the character (U+FFFD, deleted too, is not
                listed: the tokenizer drops it by name, as the reference's source does);
- whitespace:   BertNormalizer(clean_text only) turns the character into a space;
- punctuation:  BertPreTokenizer splits "a" + c + "a" into three words;
- strip_accents: what BertNormalizer(strip_accents only) makes of the character (NFD, then the
                non-spacing marks dropped), for each character it changes, grouped by the result;
                the 11,172 Hangul syllables are listed as one range, decomposed by the algorithm of
                the Unicode standard (section 3.12), which the script checks against the reference;
- lower:        what BertNormalizer(lowercase only) makes of the character, for each character it
                changes: runs [first, last, step, delta] (every step-th code point maps to
                code point + delta) and, for results longer than one character, result -> ranges.

When to run it: after upgrading `tokenizers` (tests/test_tokenizer.py re-runs this script and
requires the committed file byte for byte, so a reference whose tables changed fails that test).
The output is deterministic (sorted, ASCII JSON). Needs `tokenizers`; runs in about 15 s.
"""
import json, sys
from pathlib import Path

from tokenizers import normalizers, pre_tokenizers

CODE_POINTS = [cp for cp in range(0x110000) if not 0xD800 <= cp < 0xE000]
HANGUL = (0xAC00, 0xD7A3)


def normalize_all(options: dict, sep: str) -> list[str]:
    "What BertNormalizer(**options) makes of each code point alone, in chunks joined by `sep` (kept as is)."
    norm = normalizers.BertNormalizer(**{**dict(clean_text=False, handle_chinese_chars=False,
                                                strip_accents=False, lowercase=False), **options})
    assert norm.normalize_str(sep) == sep
    out = []
    for i in range(0, len(CODE_POINTS), 4096):
        chars = [chr(cp) for cp in CODE_POINTS[i:i + 4096]]
        pieces = norm.normalize_str(sep.join(chars)).split(sep)
        if len(pieces) != len(chars):  # some result holds `sep`: one character at a time
            pieces = [norm.normalize_str(c) for c in chars]
        out += pieces
    return out


def pre_tokenizer_classes() -> list[str]:
    "How BertPreTokenizer splits 'a' + c + 'a': one word 'o' (ordinary), three 'p' (punctuation), two 'w' (whitespace)."
    pre, classes = pre_tokenizers.BertPreTokenizer(), []
    for i in range(0, len(CODE_POINTS), 4096):
        chars = [chr(cp) for cp in CODE_POINTS[i:i + 4096]]
        words, j = [w for w, _ in pre.pre_tokenize_str(" ".join(f"a{c}a" for c in chars))], 0
        for c in chars:
            if words[j] == f"a{c}a": classes.append("o"); j += 1
            elif words[j:j + 3] == ["a", c, "a"]: classes.append("p"); j += 3
            else: assert words[j:j + 2] == ["a", "a"], (hex(ord(c)), words[j:j + 3]); classes.append("w"); j += 2
        assert j == len(words)
    return classes


def ranges(cps) -> list[list[int]]:
    "Sorted code points as inclusive [first, last] ranges."
    out = []
    for cp in sorted(cps):
        if out and out[-1][1] == cp - 1: out[-1][1] = cp
        else: out.append([cp, cp])
    return out


def runs(pairs) -> list[list[int]]:
    "Sorted (code point, target) pairs as [first, last, step, delta]: first, first+step, ..., last -> cp + delta."
    out = []
    for cp, target in pairs:
        delta = target - cp
        if out:
            first, last, step, d = out[-1]
            if d == delta and (first == last and cp - last <= 2 or cp - last == step):
                out[-1] = [first, cp, cp - last, d]; continue
        out.append([cp, cp, 1, delta])
    return [[f, l, s if f != l else 1, d] for f, l, s, d in out]


def hangul_nfd(cp: int) -> str:
    "The canonical decomposition of a Hangul syllable (The Unicode Standard, section 3.12)."
    s = cp - 0xAC00
    l, v, t = 0x1100 + s // 588, 0x1161 + s % 588 // 28, 0x11A7 + s % 28
    return chr(l) + chr(v) + (chr(t) if t != 0x11A7 else "")


def tables() -> dict:
    clean = normalize_all(dict(clean_text=True), "|")
    dropped = [cp for cp, s in zip(CODE_POINTS, clean) if s == ""]
    spaces = [cp for cp, s in zip(CODE_POINTS, clean) if s == " "]
    assert all(s in ("", " ", chr(cp)) for cp, s in zip(CODE_POINTS, clean))
    assert 0 in dropped and 0xFFFD in dropped and ord(" ") in spaces
    classes = pre_tokenizer_classes()
    punct = {cp for cp, k in zip(CODE_POINTS, classes) if k == "p"}
    # the pre-tokenizer's whitespace is the normaliser's (or already deleted by it): splitting at spaces suffices
    pre_space = {cp for cp, k in zip(CODE_POINTS, classes) if k == "w"}
    assert pre_space <= set(spaces) | set(dropped), sorted(map(hex, pre_space - set(spaces) - set(dropped)))

    strip = {cp: s for cp, s in zip(CODE_POINTS, normalize_all(dict(strip_accents=True), "\n")) if s != chr(cp)}
    assert all(strip.pop(cp) == hangul_nfd(cp) for cp in range(HANGUL[0], HANGUL[1] + 1))
    by_result = {}
    for cp, s in strip.items(): by_result.setdefault(s, []).append(cp)

    lower = {cp: s for cp, s in zip(CODE_POINTS, normalize_all(dict(lowercase=True), "\n")) if s != chr(cp)}
    multi = {}
    for cp, s in lower.items():
        if len(s) > 1: multi.setdefault(s, []).append(cp)
    # what the tokenizer produces from these tables must never be whitespace or a separator to the pre-tokenizer
    kept = set(CODE_POINTS) - set(spaces) - set(dropped)  # what reaches strip_accents and lower
    made = {ord(c) for t in (strip, lower) for cp, s in t.items() if cp in kept for c in s}
    assert not made & (pre_space | set(dropped)), sorted(map(hex, made & (pre_space | set(dropped))))
    return {
        "about": "Generated by tools/make_unicode_tables.py from the reference (tokenizers' BertNormalizer and "
                 "BertPreTokenizer); do not edit. Ranges are inclusive [first, last] code points.",
        "control": ranges(cp for cp in dropped if cp != 0xFFFD),
        "whitespace": ranges(spaces),
        "punctuation": ranges(punct),
        "strip_accents": {s: ranges(cps) for s, cps in sorted(by_result.items())},
        "hangul_syllables": list(HANGUL),
        "lower_runs": runs(sorted((cp, ord(s)) for cp, s in lower.items() if len(s) == 1)),
        "lower_other": {s: ranges(cps) for s, cps in sorted(multi.items())},
    }


def dumps(t: dict) -> str:
    "One table per line: small diffs when the reference changes."
    return "{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v, sort_keys=True, separators=(',', ':'))}"
                              for k, v in t.items()) + "\n}\n"


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "bert_lit" / "unicode_tables.json"
    text = dumps(tables())
    out.write_text(text, encoding="ascii")
    print(f"wrote {out} ({len(text):,} bytes)")
