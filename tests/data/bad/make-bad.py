#!/usr/bin/env python3
"""Writes the small malformed GGUF files in this folder (run once; the
outputs are committed so the tests need no Python). Each starts from the
same tiny, valid LLaMA file (tiny-valid.gguf) and breaks one thing; the
error each must produce is listed in tests/cli.test."""
import struct, sys, os

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)

def s(x):
    b = x.encode()
    return struct.pack('<Q', len(b)) + b

def kv(key, typ, val, arr_type=None):
    out = s(key) + struct.pack('<I', typ)
    if typ == STR:
        return out + s(val)
    if typ == ARR:
        out += struct.pack('<IQ', arr_type, len(val))
        for v in val:
            out += s(v) if arr_type == STR else struct.pack({F32: '<f', I32: '<i'}[arr_type], v)
        return out
    fmt = {U32: '<I', F32: '<f', BOOL: '<?', I32: '<i'}[typ]
    return out + struct.pack(fmt, val)

def build(huge_string=False, bad_offset=False, bad_type=False, nan_weight=False, align=32):
    d, ff, nv = 32, 64, 8
    toks = ['<unk>', '<s>', '</s>', '\u2581', 'a', 'b', '\u2581a', '\u2581b']
    kvs = [
        kv('general.architecture', STR, 'llama'),
        kv('llama.context_length', U32, 16),
        kv('llama.embedding_length', U32, d),
        kv('llama.block_count', U32, 1),
        kv('llama.feed_forward_length', U32, ff),
        kv('llama.attention.head_count', U32, 2),
        kv('llama.attention.layer_norm_rms_epsilon', F32, 1e-5),
        kv('tokenizer.ggml.model', STR, 'llama'),
        kv('tokenizer.ggml.tokens', ARR, toks, STR),
        kv('tokenizer.ggml.scores', ARR, [0.0, 0, 0, -1, -2, -3, -4, -5], F32),
        kv('tokenizer.ggml.token_type', ARR, [2, 3, 3, 1, 1, 1, 1, 1], I32),
        kv('tokenizer.ggml.bos_token_id', U32, 1),
        kv('tokenizer.ggml.eos_token_id', U32, 2),
    ]
    if huge_string:
        kvs.append(s('general.name') + struct.pack('<I', STR) + struct.pack('<Q', 2**64 - 1))
    tensors = [('token_embd.weight', [d, nv]), ('output_norm.weight', [d]),
               ('blk.0.attn_norm.weight', [d]), ('blk.0.attn_q.weight', [d, d]),
               ('blk.0.attn_k.weight', [d, d]), ('blk.0.attn_v.weight', [d, d]),
               ('blk.0.attn_output.weight', [d, d]), ('blk.0.ffn_norm.weight', [d]),
               ('blk.0.ffn_gate.weight', [d, ff]), ('blk.0.ffn_up.weight', [d, ff]),
               ('blk.0.ffn_down.weight', [ff, d])]
    infos, data, off = b'', b'', 0
    for i, (name, ne) in enumerate(tensors):
        n = 1
        for x in ne:
            n *= x
        typ = 0
        if bad_type and name == 'blk.0.ffn_up.weight':
            typ = 99
        o = off
        if bad_offset and name == 'blk.0.ffn_down.weight':
            o = 1 << 40
        infos += s(name) + struct.pack('<I', len(ne)) + b''.join(struct.pack('<Q', x) for x in ne)
        infos += struct.pack('<IQ', typ, o)
        vals = [((i * 31 + j * 17) % 13 - 6) / 50.0 for j in range(n)]
        if name.endswith('norm.weight'):
            vals = [1.0] * n
        if nan_weight and name == 'blk.0.ffn_up.weight':
            vals[37] = float('nan')  # --check-tensors must name this tensor
        blob = struct.pack('<%df' % n, *vals)
        data += blob
        off += len(blob)
        pad = (-off) % align
        data += b'\0' * pad
        off += pad
    head = b'GGUF' + struct.pack('<IQQ', 3, len(tensors), len(kvs)) + b''.join(kvs) + infos
    head += b'\0' * ((-len(head)) % align)
    return head + data

here = os.path.dirname(os.path.abspath(__file__))
for name, kw in [('tiny-valid.gguf', {}), ('huge-string.gguf', {'huge_string': True}),
                 ('bad-offset.gguf', {'bad_offset': True}), ('unknown-type.gguf', {'bad_type': True}),
                 ('nan-weight.gguf', {'nan_weight': True})]:
    with open(os.path.join(here, name), 'wb') as f:
        f.write(build(**kw))
