"""tok.py: the SentencePiece (llama) tokenizer of a GGUF vocabulary, as the
runtime applies it: a leading space is added, spaces become U+2581, then the
adjacent pair whose merge is in the vocabulary with the highest score is
merged until none is; pieces left out of the vocabulary become <0xNN> bytes.
Checked against `rlaifv-infer --tokenize` by test_shapes.py."""
import heapq

import gguf


class Tokenizer:
    def __init__(self, path):
        r = gguf.Reader(path)
        self.tokens = r.kv["tokenizer.ggml.tokens"]
        self.scores = r.kv["tokenizer.ggml.scores"]
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.bos = r.kv["tokenizer.ggml.bos_token_id"]
        self.eos = r.kv["tokenizer.ggml.eos_token_id"]
        self.kv = {k: (r.kv_types[k], v) for k, v in r.kv.items() if k.startswith("tokenizer.")}

    def encode(self, text):
        if not text:
            return []
        syms = list(("\u2581" + text).replace(" ", "\u2581"))
        while True:
            best, at = None, -1
            for i in range(len(syms) - 1):
                j = self.ids.get(syms[i] + syms[i + 1])
                if j is not None and (best is None or self.scores[j] > best):
                    best, at = self.scores[j], i
            if at < 0:
                break
            syms[at:at + 2] = [syms[at] + syms[at + 1]]
        out = []
        for s in syms:
            if s in self.ids:
                out.append(self.ids[s])
            else:
                out += [self.ids[f"<0x{b:02X}>"] for b in s.encode()]
        return out

    def decode(self, ids):
        out = b""
        for i in ids:
            t = self.tokens[i]
            if t.startswith("<0x") and len(t) == 6:
                out += bytes([int(t[3:5], 16)])
            elif i not in (self.bos, self.eos):
                out += t.replace("\u2581", " ").encode()
        return out.decode("utf-8", "replace")
