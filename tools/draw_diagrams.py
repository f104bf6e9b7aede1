"""Draw the book's diagrams as standalone SVG files: python tools/draw_diagrams.py [OUT_DIR] (default nbs/figures).

Plain XML written by Python (no dependency), deterministic: a re-run leaves `git diff` empty. One colour per kind of
thing, in every figure: token ids and tensors grey, embeddings green, attention blue, feed-forward orange,
LayerNorm purple, the pooler teal, task heads red. Text is at least 13 px in a 720-px-wide picture: the book shows
a figure 660 px wide in a 1280-px window, where 13 px become 12. Labels use a tiny markup: `d_{k}` is a subscript, `K^{T}` a superscript.
"""
import re
import sys
from pathlib import Path
from xml.sax.saxutils import escape

WIDTH = 720
FONT = "'DejaVu Sans', Arial, sans-serif"
INK, GREY = "#1a1a1a", "#555555"
KINDS = {  # kind -> (fill, stroke)
    "data": ("#f2f2f2", "#6b6b6b"),       # token ids, hidden states: what flows between the layers
    "embedding": ("#d9f0d3", "#1b7837"),
    "attention": ("#dbe9f6", "#2166ac"),
    "ffn": ("#fde2c8", "#c45a00"),        # feed-forward
    "norm": ("#ece4f3", "#6a3d9a"),       # LayerNorm (and add & norm)
    "pooler": ("#d5f0ee", "#01665e"),
    "head": ("#f9d6d5", "#b2182b"),       # task heads and their logits
    "pad": ("#d0d0d0", "#9a9a9a"),        # padding: work that carries no information
    "chosen": ("#fff1b8", "#b8860b"),     # tokens chosen for the masked LM
    "plain": ("#ffffff", "#6b6b6b"),
    "segb": ("#eef7ea", "#1b7837"),       # segment B of a pair (a lighter embedding green)
}
HEAD_TINTS = ["#c6dbef", "#9ecae1", "#6baed6", "#4292c6"]   # attention heads 1, 2, 3, h: shades of attention blue
HEAD_LINES = ["#6baed6", "#4292c6", "#2171b5", "#08519c"]   # the same heads' outlines and connections

# Advance widths of DejaVu Sans in em (its metrics, rounded): enough to check that a label fits its box.
_EM = dict(zip("abcdefghijklmnopqrstuvwxyz", [.61, .64, .55, .64, .62, .35, .64, .63, .28, .28, .58, .28, .97, .63,
                                              .61, .64, .64, .41, .52, .39, .63, .59, .82, .59, .59, .53]))
_EM.update(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", [.68, .69, .70, .77, .63, .58, .78, .75, .30, .30, .66, .56, .86, .75,
                                              .79, .60, .79, .70, .64, .61, .73, .68, .99, .69, .61, .69]))
_EM.update({c: .64 for c in "0123456789"})
_EM.update({" ": .32, ",": .32, ".": .32, ":": .34, ";": .34, "(": .39, ")": .39, "[": .39, "]": .39, "#": .84,
            "+": .84, "=": .84, "×": .84, "→": .84, "−": .84, "-": .36, "/": .34, "%": .95, "…": 1.0, "'": .28,
            "√": .64, "·": .32, "⊕": .84, "≤": .84, "&": .78, "⋮": .5, "?": .53, "!": .40, "σ": .60, "Σ": .63})


def _runs(s):
    "Split a label into (text, shift) runs: shift -1 for `_{...}`, +1 for `^{...}`, 0 for plain text."
    out, i = [], 0
    for m in re.finditer(r"([_^])\{([^}]*)\}", s):
        if m.start() > i: out.append((s[i:m.start()], 0))
        out.append((m.group(2), -1 if m.group(1) == "_" else 1))
        i = m.end()
    if i < len(s): out.append((s[i:], 0))
    return out


def _small(size): return max(13, round(size * 0.75))


def text_width(s, size, bold=False):
    "Approximate rendered width of a label in px (DejaVu Sans)."
    w = sum(sum(_EM.get(c, .62) for c in t) * (size if k == 0 else _small(size)) for t, k in _runs(s))
    return w * (1.08 if bold else 1.0)


def num(v):
    "A coordinate, written the same way on every run."
    return f"{round(v, 1):g}"


class Svg:
    "A drawing: elements are appended as XML strings, `render` wraps them in a standalone SVG document."

    def __init__(self, height, title, desc):
        self.height, self.title, self.desc, self.items = height, title, desc, []

    def add(self, xml): self.items.append(xml)

    def text(self, x, y, s, size=14, anchor="middle", bold=False, italic=False, fill=INK, mono=False, halo=False,
             rotate=0):
        "A label at baseline y; `_{..}`/`^{..}` markup becomes sub-/superscript tspans; halo: white outline."
        attrs = f'x="{num(x)}" y="{num(y)}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"'
        w = text_width(s, size, bold) * (1.25 if mono else 1)
        lo = {"start": x, "middle": x - w / 2, "end": x - w}[anchor]
        if not rotate and (lo < 2 or lo + w > WIDTH - 2):
            raise ValueError(f"label {s!r} runs from x={lo:.0f} to {lo + w:.0f}, outside the picture (0 to {WIDTH})")
        if halo:                                  # a white band behind the label, over the lines it crosses
            w = text_width(s, size, bold) + 10
            left = {"start": x - 5, "middle": x - w / 2, "end": x - w + 5}[anchor]
            self.add(f'<rect x="{num(left)}" y="{num(y - size)}" width="{num(w)}" height="{num(size * 1.35)}" '
                     'fill="#ffffff"/>')
        if bold: attrs += ' font-weight="bold"'
        if italic: attrs += ' font-style="italic"'
        if mono: attrs += " font-family=\"'DejaVu Sans Mono', monospace\""
        if rotate: attrs += f' transform="rotate({rotate} {num(x)} {num(y)})"'
        body, cur = "", 0.0
        for t, k in _runs(s):
            if k == 0 and cur == 0: body += escape(t); continue
            target = {0: 0.0, -1: 0.3 * size, 1: -0.38 * size}[k]
            fs = f' font-size="{_small(size)}"' if k else ""
            body += f'<tspan dy="{num(target - cur)}"{fs}>{escape(t)}</tspan>'
            cur = target
        self.add(f"<text {attrs}>{body}</text>")

    def rect(self, x, y, w, h, kind="plain", rx=6, dash=False, stroke_width=1.5):
        fill, stroke = KINDS[kind]
        d = ' stroke-dasharray="6 4"' if dash else ""
        self.add(f'<rect x="{num(x)}" y="{num(y)}" width="{num(w)}" height="{num(h)}" rx="{rx}" fill="{fill}" '
                 f'stroke="{stroke}" stroke-width="{stroke_width}"{d}/>')

    def box(self, x, y, w, h, kind, lines, size=14, bold_first=False, rx=6, dash=False, fill_text=INK):
        "A rectangle of a kind with centred lines of text; refuses a label that does not fit."
        self.rect(x, y, w, h, kind, rx=rx, dash=dash)
        lines = [lines] if isinstance(lines, str) else lines
        sizes = [size if i == 0 else max(13, size - 1) for i in range(len(lines))]
        total = sum(s * 1.25 for s in sizes)
        base = y + (h - total) / 2
        for i, (line, s) in enumerate(zip(lines, sizes)):
            bold = bold_first and i == 0
            if text_width(line, s, bold) > w - 4:
                raise ValueError(f"label {line!r} ({text_width(line, s, bold):.0f} px) does not fit a box {w} px wide")
            base += s * 1.25
            self.text(x + w / 2, base - s * 0.3, line, size=s, bold=bold, fill=fill_text)

    def line(self, points, arrow=True, color="#444444", width=1.5, dash=False):
        "A polyline through points, with an arrowhead at the end unless arrow=False."
        pts = " ".join(f"{num(x)},{num(y)}" for x, y in points)
        extra = ' marker-end="url(#arrow)"' if arrow else ""
        if dash: extra += ' stroke-dasharray="5 4"'
        self.add(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="{width}"{extra}/>')

    def circle(self, x, y, r, kind="plain"):
        fill, stroke = KINDS[kind]
        self.add(f'<circle cx="{num(x)}" cy="{num(y)}" r="{r}" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>')

    def render(self):
        h = num(self.height)
        head = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{h}" viewBox="0 0 {WIDTH} {h}" '
                f'font-family="{FONT}" role="img" aria-labelledby="title desc">\n'
                f'<title id="title">{escape(self.title)}</title>\n<desc id="desc">{escape(self.desc)}</desc>\n'
                '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" '
                'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#444444"/></marker></defs>\n'
                f'<rect x="0" y="0" width="{WIDTH}" height="{h}" fill="#ffffff"/>\n')
        return head + "\n".join(self.items) + "\n</svg>\n"


def down(svg, x, y1, y2): svg.line([(x, y1), (x, y2)])


def stack():
    "The whole model: ids -> embeddings -> N encoder layers -> per-token outputs and pooled [CLS] -> heads."
    s = Svg(516, "BERT, the whole model",
            "Token ids of shape (B, T) go through the embedding layer to vectors of shape (B, T, D), then through N "
            "encoder layers, each made of multi-head self-attention, add and LayerNorm, a feed-forward network, add "
            "and LayerNorm, keeping the shape (B, T, D). The outputs are one vector per token, (B, T, D), and the "
            "pooled [CLS] vector, (B, D). Task heads sit on top: masked LM, token tagging and question answering on "
            "the per-token vectors, next-sentence prediction and sequence classification on the pooled vector. "
            "BERT-base has N = 12 layers, D = 768 and h = 12 heads.")
    shape = lambda y, t: s.text(620, y, t, size=14, anchor="start", fill=GREY)
    s.box(110, 14, 420, 46, "data", ["token ids, segment ids, attention mask",
                                     "[CLS] my dog is cute [SEP] he likes play ##ing [SEP]"], size=14)
    shape(42, "(B, T)")
    down(s, 320, 60, 80)
    s.box(110, 80, 420, 46, "embedding", ["embeddings (chapter 2)", "token + position + segment → LayerNorm → dropout"])
    shape(108, "(B, T, D)")
    down(s, 320, 126, 150)
    s.rect(30, 150, 580, 136, "plain", rx=10, dash=True)
    s.text(44, 172, "encoder: N identical layers (chapters 3–5)", size=14, anchor="start", bold=True)
    for off in (16, 8):                                     # the layers behind the first one
        s.rect(84 + off, 184 + off, 484, 62, "plain", rx=8)
    s.rect(84, 184, 484, 62, "plain", rx=8)
    s.text(57, 222, "× N", size=18, bold=True)
    boxes = [(94, 126, "attention", "self-attention"), (234, 96, "norm", "add & norm"),
             (344, 104, "ffn", "feed-forward"), (462, 96, "norm", "add & norm")]
    for i, (x, w, kind, label) in enumerate(boxes):
        s.box(x, 196, w, 38, kind, label, size=14)
        if i: s.line([(boxes[i - 1][0] + boxes[i - 1][1], 215), (x, 215)])
    shape(196, "(B, T, D)")
    s.text(620, 216, "in and out", size=13, anchor="start", fill=GREY)
    s.text(620, 234, "of each layer", size=13, anchor="start", fill=GREY)
    s.line([(320, 286), (320, 306)])
    s.box(40, 306, 310, 50, "data", ["per-token outputs h_{1} … h_{T}", "last_hidden_state (B, T, D)"])
    s.line([(350, 331), (400, 331)])
    s.text(375, 324, "[CLS]", size=13)
    s.box(400, 306, 200, 50, "pooler", ["pooler: tanh(W h_{[CLS]} + b)", "pooler_output (B, D)"], size=13)
    heads = [(40, 96, "masked LM", "(B, T, V)"), (147, 96, "tagging", "(B, T, C)"), (254, 96, "QA span", "(B, T, 2)"),
             (400, 94, "NSP", "(B, 2)"), (506, 94, "classify", "(B, C)")]
    for x, w, name, shp in heads:
        src_x = 195 if x < 400 else 500
        s.line([(src_x, 356), (src_x, 368), (x + w / 2, 368), (x + w / 2, 384)])
        s.box(x, 384, w, 46, "head", [name, shp])
    s.text(40, 454, "heads: chapters 8 (masked LM, NSP), 9 (tagging, classification) and 10 (question answering)",
           size=13, anchor="start", fill=GREY)
    s.text(40, 478, "B batch, T sequence length (≤ 512), D hidden size, V vocabulary, C classes or tags.", size=13,
           anchor="start", fill=GREY)
    s.text(40, 502, "BERT-base: N = 12 layers, D = 768, h = 12 heads of d_{k} = 64, V = 30,522.", size=13,
           anchor="start", fill=GREY)
    return s


PAIR = "[CLS] my dog is cute [SEP] he likes play ##ing [SEP]".split()


def embeddings():
    "Token + position + segment embeddings of a real sentence pair, summed, then LayerNorm and dropout."
    s = Svg(404, "BERT's input embeddings for a sentence pair",
            "The pair [CLS] my dog is cute [SEP] he likes play ##ing [SEP]: eleven tokens, segment id 0 for the "
            "first six (up to the first [SEP]) and 1 for the last five. Each position gets three vectors of D "
            "numbers: its token's embedding E, its position's embedding P_0 to P_10 and its segment's embedding S_0 "
            "or S_1. The three are added position by position, the sum goes through LayerNorm and dropout, and the "
            "result, of shape (B, T, D), is the input to the encoder.")
    x0, pitch, w = 88, 57, 55
    seg = [0] * 6 + [1] * 5
    cx = lambda i: x0 + i * pitch + w / 2
    for lo, hi, label in [(0, 5, "segment A (id 0)"), (6, 10, "segment B (id 1)")]:
        s.line([(x0 + lo * pitch, 24), (x0 + hi * pitch + w, 24)], arrow=False, color=GREY, width=1)
        s.text((x0 + lo * pitch + x0 + hi * pitch + w) / 2, 18, label, size=13, fill=GREY)
    rows = [(30, "input", "tokens", "data", lambda i, t: t),
            (74, "token", "embeddings", "embedding", lambda i, t: f"E_{{{t}}}"),
            (134, "position", "embeddings", "embedding", lambda i, t: f"P_{{{i}}}"),
            (194, "segment", "embeddings", "embedding", lambda i, t: f"S_{{{seg[i]}}}")]
    for r, (y, l1, l2, kind, label) in enumerate(rows):
        s.text(6, y + 15, l1, size=13, anchor="start")
        s.text(6, y + 31, l2, size=13, anchor="start")
        for i, t in enumerate(PAIR):
            k = "segb" if r == 3 and seg[i] else kind
            s.box(x0 + i * pitch, y, w, 34 if r else 32, k, label(i, t), size=13)
            if r >= 2: s.text(cx(i), y - 8, "+", size=16, bold=True)
    for i in range(len(PAIR)): down(s, cx(i), 228, 250)
    s.box(x0, 250, 11 * pitch - 3, 36, "norm",
          "the sum, layer-normalised per position (learned γ, β; ε = 10^{-12})", size=14)
    down(s, x0 + (11 * pitch - 3) / 2, 286, 302)
    s.box(x0, 302, 11 * pitch - 3, 34, "plain", "dropout (p = 0.1, in training only)", size=14, dash=True)
    down(s, x0 + (11 * pitch - 3) / 2, 336, 352)
    s.box(x0, 352, 11 * pitch - 3, 42, "data",
          ["to the encoder: (B, T, D), one vector of D numbers per token (here T = 11)"], size=14)
    return s


def matrix(s, x, y, w, h, label, strips=("1", "2", "…", "h")):
    "A (T, D) matrix drawn as h column blocks, one tint per head; returns the blocks' centre x."
    sw, xs = w / len(strips), []
    for i, name in enumerate(strips):
        fill = "#ffffff" if name == "…" else HEAD_TINTS[min(i, 3) if name != "h" else 3]
        s.add(f'<rect x="{num(x + i * sw)}" y="{num(y)}" width="{num(sw)}" height="{num(h)}" fill="{fill}" '
              f'stroke="{KINDS["attention"][1]}" stroke-width="1.2"/>')
        s.text(x + (i + .5) * sw, y + h / 2 + 5, name, size=13, fill="#ffffff" if name == "h" else INK)
        xs.append(x + (i + .5) * sw)
    if label: s.text(x + w / 2, y - 8, label, size=14)
    return xs


def multihead():
    "X -> Q, K, V -> h heads of d_k -> softmax(QK^T/sqrt(d_k))V per head -> concatenated -> W^O."
    s = Svg(556, "Multi-head self-attention",
            "The input X, of shape (T, D), is multiplied by three D × D matrices W^Q, W^K and W^V, giving Q, K and V, "
            "each (T, D). Their D columns are split into h blocks of d_k = D / h columns, one block per head. Each "
            "head i computes softmax(Q_i K_i^T / sqrt(d_k)) V_i, of shape (T, d_k). The h results are concatenated "
            "back into a (T, D) matrix and multiplied by W^O. BERT-base has h = 12 heads of d_k = 64.")
    s.box(230, 10, 260, 46, "data", ["X   (T, D)", "embeddings or the previous layer"])
    mats = {}
    for cx, name in [(130, "Q"), (360, "K"), (590, "V")]:
        s.line([(360, 56), (360, 66), (cx, 66), (cx, 78)])
        s.box(cx - 64, 78, 128, 34, "attention", f"× W^{{{name}}} + b", size=14)
        down(s, cx, 112, 136)
        mats[name] = matrix(s, cx - 92, 160, 184, 44, f"{name}  (T, D)")
    heads = [(20, "1"), (210, "2"), (520, "h")]
    for j, (x, i) in enumerate(heads):
        k = (0, 1, 3)[j]
        for m, name in enumerate("QKV"):
            s.line([(mats[name][k], 204), (x + 45 + 45 * m, 250)], arrow=False, color=HEAD_LINES[k], width=1.5)
    s.text(360, 228, "split the D columns into h heads of d_{k} = D / h columns each", size=13, fill=GREY, halo=True)
    for j, (x, i) in enumerate(heads):
        k = (0, 1, 3)[j]
        s.add(f'<rect x="{x}" y="250" width="180" height="66" rx="6" fill="#ffffff" stroke="{HEAD_LINES[k]}" '
              'stroke-width="2.5"/>')
        s.text(x + 90, 270, f"head {i}", size=14, bold=True)
        s.text(x + 90, 290, f"softmax(Q_{{{i}}}K_{{{i}}}^{{T}} / √d_{{k}}) V_{{{i}}}", size=14)
        s.text(x + 90, 309, "(T, d_{k})", size=13)
    s.text(455, 288, "…", size=18)
    cat = matrix(s, 268, 370, 184, 44, "")
    s.text(462, 390, "Concat(head_{1}, …, head_{h})", size=14, anchor="start")
    s.text(462, 409, "(T, D)", size=14, anchor="start")
    for j, (x, i) in enumerate(heads):
        k = (0, 1, 3)[j]
        s.line([(x + 90, 316), (cat[k], 370)], arrow=False, color=HEAD_LINES[k], width=1.5)
    down(s, 360, 414, 434)
    s.box(296, 434, 128, 34, "attention", "× W^{O} + b", size=14)
    down(s, 360, 468, 488)
    s.box(230, 488, 260, 46, "data", ["output   (T, D)", "then add & norm (chapter 5)"])
    s.text(560, 500, "BERT-base: h = 12,", size=13, anchor="start", fill=GREY)
    s.text(560, 518, "d_{k} = 768 / 12 = 64", size=13, anchor="start", fill=GREY)
    s.text(20, 500, "every W is D × D;", size=13, anchor="start", fill=GREY)
    s.text(20, 518, "each of the B sequences alike", size=13, anchor="start", fill=GREY)
    return s


def encoder_layer():
    "A post-LN BERT layer: self-attention, add, LayerNorm, feed-forward D -> 4D -> D with GELU, add, LayerNorm."
    s = Svg(640, "One BERT encoder layer (post-LayerNorm)",
            "The input x, of shape (B, T, D), goes through multi-head self-attention and dropout; the residual "
            "connection adds x back, and LayerNorm normalises the sum, giving A. Then the feed-forward network, a "
            "linear map from D to 4D, GELU, and a linear map back to D, followed by dropout; a second residual "
            "connection adds A back and a second LayerNorm gives the layer's output, again (B, T, D). The names "
            "beside each block are those of BERT checkpoints.")
    cx, left, w, res = 300, 170, 260, 110
    name = lambda y, t: s.text(458, y, t, size=13, anchor="start", fill=GREY, mono=True)
    s.box(left, 10, w, 44, "data", ["input x   (B, T, D)", "embeddings or the previous layer"])
    s.box(left, 78, w, 48, "attention", ["multi-head self-attention", "Q, K, V; h heads; × W^{O} (chapter 4)"])
    name(98, "attention.self.query/key/value")
    name(116, "attention.output.dense")
    s.box(left + 70, 140, w - 140, 26, "plain", "dropout", size=13, dash=True)
    s.box(left, 218, w, 34, "norm", "LayerNorm")
    name(240, "attention.output.LayerNorm")
    s.rect(left - 10, 290, w + 20, 132, "plain", rx=10, dash=True)
    s.text(left - 2, 286, "feed-forward network", size=13, anchor="start", fill=GREY, halo=True)
    s.box(left, 300, w, 34, "ffn", "Linear D → 4D")
    name(322, "intermediate.dense")
    s.text(458, 363, "(B, T, 4D)", size=13, anchor="start", fill=GREY)
    s.box(left + 60, 344, w - 120, 28, "ffn", "GELU", size=13)
    s.box(left, 382, w, 34, "ffn", "Linear 4D → D")
    name(404, "output.dense")
    s.box(left + 70, 432, w - 140, 26, "plain", "dropout", size=13, dash=True)
    s.box(left, 508, w, 34, "norm", "LayerNorm")
    name(530, "output.LayerNorm")
    s.box(left, 564, w, 44, "data", ["output   (B, T, D)", "the next layer's input"])
    for y1, y2 in [(54, 78), (126, 140), (166, 184), (208, 218), (252, 300), (334, 344), (372, 382), (416, 432),
                   (458, 474), (498, 508), (542, 564)]:
        down(s, cx, y1, y2)
    for ya, yb in [(66, 196), (272, 486)]:           # residual connections: from the branch point into the add
        s.circle(cx, ya, 4, "data")
        s.line([(cx, ya), (res, ya), (res, yb), (cx - 12, yb)], color="#333333", width=2)
        s.circle(cx, yb, 12, "plain")
        s.text(cx, yb + 6, "+", size=18, bold=True)
        s.text(res - 10, (ya + yb) / 2, "residual", size=13, rotate=-90, fill=GREY)
    s.text(cx + 22, 201, "add: x + Dropout(MultiHead(x))", size=13, anchor="start", fill=GREY)
    s.text(cx + 22, 491, "add: A + Dropout(FFN(A))", size=13, anchor="start", fill=GREY)
    s.text(458, 264, "= A   (B, T, D)", size=13, anchor="start", fill=GREY)
    s.text(20, 630, "Post-LN (BERT): LayerNorm after each add. Pre-LN (chapter 8.8) moves it to the branch's start.",
           size=13, anchor="start", fill=GREY)
    return s


def masking():
    "Masked LM's 15 % then 80/10/10 on a real sentence, and next-sentence pairs (IsNext / NotNext)."
    s = Svg(400, "The two pretraining tasks: masked LM and next-sentence prediction",
            "Masked LM: in the sentence [CLS] my dog is hairy and he likes to play [SEP], 2 of the 11 positions are "
            "chosen for prediction (15 %, rounded), here hairy and play, never [CLS] or [SEP]. A chosen token is "
            "replaced by [MASK] 80 % of the time, by a random token such as apple 10 % of the time, and kept 10 % of "
            "the time; in every case the model must predict the original token there. Next-sentence prediction: "
            "the pair [CLS] the man went to the store [SEP] he bought a gallon of milk [SEP] is labelled IsNext; "
            "half of the pairs instead take segment B from another document, such as penguins are flightless birds, "
            "labelled NotNext.")
    s.text(10, 22, "Masked LM: choose 15 % of the tokens, then 80 / 10 / 10", size=15, anchor="start", bold=True)
    s.text(10, 44, "here 2 of 11 positions (round(0.15 × 11) = 2), never [CLS] or [SEP]", size=13, anchor="start",
           fill=GREY)
    toks = "[CLS] my dog is hairy and he likes to play [SEP]".split()
    for i, t in enumerate(toks):
        s.box(30 + i * 60, 56, 56, 32, "chosen" if i in (4, 9) else "data", t, size=13)
    outcomes = [(40, "80 %: [MASK]", "my dog is [MASK]"), (260, "10 %: a random token", "my dog is apple"),
                (480, "10 %: kept", "my dog is hairy")]
    for x, l1, l2 in outcomes:
        s.line([(298, 88), (298, 104), (x + 105, 118), (x + 105, 132)] if x != 260 else [(298, 88), (298, 132)])
        s.box(x, 132, 210, 50, "chosen", [l1, l2])
    s.text(360, 206, "each time the model must predict “hairy” at that position (its label); other positions: −100",
           size=13, fill=GREY)
    s.text(10, 244, "Next-sentence prediction: segment B really follows A in half of the pairs", size=15,
           anchor="start", bold=True)
    rows = [(260, "he bought a gallon of milk", "IsNext", "label 0"),
            (316, "penguins are flightless birds", "NotNext", "label 1")]
    for y, b, label, lid in rows:
        s.text(30, y + 23, "50 %", size=14, bold=True)
        x = 56
        for w, kind, t in [(52, "data", "[CLS]"), (196, "data", "the man went to the store"), (52, "data", "[SEP]"),
                           (196, "segb", b), (52, "data", "[SEP]")]:
            s.box(x, y, w, 36, kind, t, size=13)
            x += w + 4
        s.line([(x, y + 18), (x + 14, y + 18)])
        s.box(x + 14, y, 712 - x - 14, 36, "head", [label, lid], size=13)
    s.text(360, 380, "A random B comes from another document; the NSP head reads the pooled [CLS] vector.",
           size=13, fill=GREY)
    return s


def bar(s, x, y, frac, width, kind="head", h=12):
    "A horizontal bar of frac × width px (an illustrative score)."
    fill, stroke = KINDS[kind]
    s.add(f'<rect x="{num(x)}" y="{num(y)}" width="{num(frac * width)}" height="{h}" fill="{stroke}" '
          'fill-opacity="0.75"/>')


def heads():
    "The three task heads on one encoder: pooled [CLS] -> classes; every token -> tags; context -> start/end."
    s = Svg(512, "Three task heads on one BERT encoder",
            "One encoder, shared by every task, turns the input tokens into one vector per token, h_[CLS], h_1 and "
            "so on. Sequence classification puts the pooler and a linear layer from D to C classes on h_[CLS] alone, "
            "giving logits of shape (B, C), for example positive for a film review. Token classification puts a "
            "linear layer from D to C tags on every token's vector, giving (B, T, C), for example DET, NOUN, VERB, "
            "ADV. Question answering puts a linear layer from D to 2 on every token's vector, giving a start logit "
            "and an end logit per token, each (B, T); the answer is the span of context tokens from the best start "
            "to the best end, here william shakespeare. The bars are illustrative.")
    x0, pitch, w = 108, 72, 66
    cells = ["[CLS]", "t_{1}", "t_{2}", "t_{3}", "…", "t_{n}", "[SEP]"]
    outs = ["h_{[CLS]}", "h_{1}", "h_{2}", "h_{3}", "…", "h_{n}", "h_{[SEP]}"]
    for i, (a, b) in enumerate(zip(cells, outs)):
        s.box(x0 + i * pitch, 10, w, 32, "data", a, size=13)
        s.box(x0 + i * pitch, 114, w, 32, "data", b, size=13)
        down(s, x0 + i * pitch + w / 2, 42, 56)
        down(s, x0 + i * pitch + w / 2, 100, 114)
    s.rect(x0, 56, 6 * pitch + w, 44, "plain", rx=8, stroke_width=2.5)
    s.text(360, 83, "BERT encoder: embeddings and N layers, the same for every task", size=14)
    s.text(x0 - 8, 135, "(B, T, D)", size=13, anchor="end", fill=GREY)
    cls_x = x0 + w / 2
    s.line([(cls_x, 146), (cls_x, 164), (123, 164), (123, 182)])
    s.line([(x0 + pitch + w / 2, 156), (x0 + 6 * pitch + w / 2, 156)], arrow=False)
    for i in range(1, 7): s.line([(x0 + i * pitch + w / 2, 146), (x0 + i * pitch + w / 2, 156)], arrow=False)
    for cx in (360, 573): down(s, cx, 156, 182)
    panels = [(10, "sequence classification", "h_{[CLS]} only"), (247, "token classification", "every token"),
              (484, "question answering", "every context token")]
    for x, title, what in panels:
        s.rect(x, 182, 226, 320, "plain", rx=10, dash=True)
        s.text(x + 113, 203, title, size=14, bold=True)
        s.text(x + 113, 222, what, size=13, fill=GREY)
    # sequence classification
    s.box(30, 234, 186, 44, "pooler", ["pooler", "tanh(W h_{[CLS]} + b)"], size=13)
    down(s, 123, 278, 292)
    s.box(30, 292, 186, 44, "head", ["dropout, Linear D → C", "logits (B, C)"], size=13)
    s.text(123, 366, "“a gripping, funny film”", size=13, italic=True)
    for j, (label, frac) in enumerate([("positive", .9), ("negative", .15)]):
        s.text(98, 394 + 24 * j, label, size=13, anchor="end")
        bar(s, 106, 384 + 24 * j, frac, 110)
    s.text(123, 456, "class = argmax: positive", size=13)
    # token classification
    s.box(267, 234, 186, 44, "head", ["dropout, Linear D → C", "logits (B, T, C)"], size=13)
    for j, (tok, tag) in enumerate([("the", "DET"), ("dog", "NOUN"), ("barks", "VERB"), ("loudly", "ADV")]):
        y = 298 + 40 * j
        s.box(277, y, 80, 28, "data", tok, size=13)
        s.line([(357, y + 14), (377, y + 14)])
        s.box(377, y, 66, 28, "head", tag, size=13)
    s.text(360, 476, "one tag per token (argmax)", size=13)
    # question answering
    s.box(504, 234, 186, 44, "head", ["Linear D → 2", "start, end logits (B, T)"], size=13)
    s.text(597, 298, "who wrote hamlet ?", size=13, italic=True)
    s.text(626, 318, "start", size=13, fill=GREY)
    s.text(676, 318, "end", size=13, fill=GREY)
    scores = [("hamlet", .2, .1), ("was", .05, .05), ("written", .1, .1), ("by", .15, .05),
              ("william", .95, .25), ("shakespeare", .3, .9), (".", .05, .2)]
    for j, (tok, st, en) in enumerate(scores):
        y = 326 + 20 * j
        if tok in ("william", "shakespeare"):
            s.add(f'<rect x="494" y="{y}" width="206" height="18" fill="{KINDS["chosen"][0]}"/>')
        s.text(596, y + 14, tok, size=13, anchor="end")
        bar(s, 602, y + 3, st, 44)
        bar(s, 652, y + 3, en, 44)
    s.text(597, 488, "answer: best start ≤ end", size=13)
    return s


def unpadded():
    "A padded batch (B x T, padding greyed) against the same tokens packed, with cu_seqlens offsets."
    s = Svg(470, "A padded batch against the same tokens packed",
            "Three sequences of 5, 8 and 3 tokens padded to a batch of 3 × 8 = 24 positions, 8 of them padding "
            "(greyed). Packed, the same 16 real tokens form one matrix of 16 rows, the sequences one after another, "
            "delimited by the offsets cu_seqlens = [0, 5, 13, 16]. Every token-wise operation (embeddings, the "
            "projections, the feed-forward block, LayerNorm) then works on 16 rows instead of 24, and attention "
            "within each sequence computes 5² + 8² + 3² = 98 scores instead of 3 × 8² = 192.")
    seqs = ["[CLS] my dog barks [SEP]".split(), "[CLS] he likes to play in snow [SEP]".split(),
            "[CLS] hi [SEP]".split()]
    T, pitch, w, packed = 8, 48, 46, 44
    s.text(10, 22, "padded: B × T = 3 × 8 = 24 positions", size=15, anchor="start", bold=True)
    for b, seq in enumerate(seqs):
        y = 36 + 34 * b
        s.text(10, y + 19, f"sequence {b + 1}", size=13, anchor="start")
        for t in range(T):
            real = t < len(seq)
            s.box(110 + t * pitch, y, w, 28, "data" if real else "pad", seq[t] if real else "[PAD]", size=13,
                  fill_text=INK if real else GREY)
    for j, line in enumerate(["16 real tokens", "8 padding (a third)", "every layer computes", "all 24"]):
        s.text(512, 56 + 20 * j, line, size=13, anchor="start", fill=GREY if j > 1 else INK)
    s.line([(302, 142), (302, 176)])
    s.text(314, 165, "unpad: keep the real tokens only", size=13, anchor="start", fill=GREY)
    s.text(10, 200, "packed: N = 16 rows, (N, D)", size=15, anchor="start", bold=True)
    x, starts = 10, [0]
    for b, seq in enumerate(seqs):
        for t in seq:
            s.box(x, 214, packed - 2, 28, "data", t, size=13)
            x += packed
        starts.append(starts[-1] + len(seq))
    for k, off in enumerate(starts):
        bx = 10 + off * packed - 1
        s.line([(bx, 206), (bx, 258)], arrow=False, color=INK, width=2.5)
        s.text(bx + 2 if k == 3 else bx, 276, str(off), size=13, bold=True, anchor="end" if k == 3 else "middle")
    for b, seq in enumerate(seqs):
        mid = 10 + (starts[b] + starts[b + 1]) / 2 * packed - 1
        s.text(mid, 258, f"sequence {b + 1}", size=13, fill=GREY)
    s.text(10, 304, "cu_seqlens = [0, 5, 13, 16]: where each sequence starts and ends (cumulative lengths)", size=13,
           anchor="start")
    s.text(10, 340, "work skipped", size=15, anchor="start", bold=True)
    rows = [("token-wise layers (embeddings, projections, feed-forward, LayerNorm):", "24 rows → 16 rows"),
            ("attention scores, each sequence within its own range:", "3 × 8² = 192 → 5² + 8² + 3² = 98")]
    for j, (what, saving) in enumerate(rows):
        s.text(10, 366 + 44 * j, what, size=13, anchor="start")
        s.text(30, 386 + 44 * j, saving, size=14, anchor="start", bold=True)
    s.text(10, 458, "(Chapter 11 re-pads for attention on a CPU; GPU kernels for varying lengths take cu_seqlens.)",
           size=13, anchor="start", fill=GREY)
    return s


DIAGRAMS = {"unpadded.svg": unpadded, "heads.svg": heads, "masking.svg": masking, "encoder_layer.svg": encoder_layer, "stack.svg": stack, "embeddings.svg": embeddings, "multihead.svg": multihead}


def main(out=None):
    "Write every diagram into `out` (default: nbs/figures next to this file's project)."
    out = Path(out) if out else Path(__file__).resolve().parents[1] / "nbs" / "figures"
    out.mkdir(parents=True, exist_ok=True)
    for name, draw in DIAGRAMS.items():
        (out / name).write_text(draw().render(), encoding="utf-8")
    return sorted(DIAGRAMS)


if __name__ == "__main__":
    print("wrote", ", ".join(main(sys.argv[1] if len(sys.argv) > 1 else None)))
