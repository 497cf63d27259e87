#!/usr/bin/env python3
"""Writes the small seed inputs committed under fuzz/corpus/ (run once; the
outputs are committed, so building and running the fuzzers needs no
Python). The seeds are deliberately tiny, valid files of each kind: the
fuzzers learn the formats from them, and larger seeds (the model fixtures
in tests/data) are added by fuzz/run.sh at run time.

    gguf/       a tiny LLaMA model in F32, one in F16/BF16 with GQA, a
                separate output matrix and byte tokens, a tiny Gemma 3, a tiny
                CLIP mmproj, a tiny idefics3 (SmolVLM) one and a tiny resampler
                (MiniCPM-V) one
    tokenizer/  mode byte + text, mode byte + ids (see fuzz_tokenizer.c)
    image/      option byte + a BMP, a PGM, a PPM, the JPEG fixture with an
                EXIF orientation segment inserted, and a 16000x1 and a
                1x12000 PNG
    embcache/   a valid cache entry and a truncated one, and the body of a
                kernel-choice entry (fuzz_embcache appends its check line)
"""
import os, struct, sys, zlib

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
T_F32, T_F16, T_BF16 = 0, 1, 30

def s(x):
    b = x.encode() if isinstance(x, str) else x
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
    return out + struct.pack({U32: '<I', F32: '<f', BOOL: '<?', I32: '<i'}[typ], val)

def f16(v):
    return struct.pack('<e', v)

def bf16(v):
    return struct.pack('<f', v)[2:]

def gguf(kvs, tensors, align=32):
    """tensors: (name, ne, type, values)"""
    infos, data = b'', b''
    for name, ne, typ, vals in tensors:
        if typ == T_F32:
            blob = struct.pack('<%df' % len(vals), *vals)
        elif typ == T_F16:
            blob = b''.join(f16(v) for v in vals)
        else:
            blob = b''.join(bf16(v) for v in vals)
        infos += s(name) + struct.pack('<I', len(ne)) + b''.join(struct.pack('<Q', x) for x in ne)
        infos += struct.pack('<IQ', typ, len(data))
        data += blob + b'\0' * ((-len(blob)) % align)
    head = b'GGUF' + struct.pack('<IQQ', 3, len(tensors), len(kvs)) + b''.join(kvs) + infos
    return head + b'\0' * ((-len(head)) % align) + data

def vals(n, seed, norm=False):
    return [1.0] * n if norm else [((seed * 31 + j * 17) % 13 - 6) / 40.0 for j in range(n)]

def llama(wtype=T_F32, gqa=False, separate_output=False, byte_tokens=False):
    d, ff, nh = 8, 16, 2
    nkv = 1 if gqa else 2
    hd = d // nh
    toks = ['<unk>', '<s>', '</s>', '\u2581', 'a', 'b', '\u2581a', 'ab']
    types = [2, 3, 3, 1, 1, 1, 1, 1]
    if byte_tokens:
        toks += ['<0x0A>', '<0xE2>', '<0x96>', '<0x81>', '<0xFF>', '<|eot_id|>', 'user']
        types += [6, 6, 6, 6, 6, 3, 4]
    nv = len(toks)
    kvs = [kv('general.architecture', STR, 'llama'),
           kv('llama.context_length', U32, 16),
           kv('llama.embedding_length', U32, d),
           kv('llama.block_count', U32, 1),
           kv('llama.feed_forward_length', U32, ff),
           kv('llama.attention.head_count', U32, nh),
           kv('llama.attention.head_count_kv', U32, nkv),
           kv('llama.rope.dimension_count', U32, hd),
           kv('llama.attention.layer_norm_rms_epsilon', F32, 1e-5),
           kv('tokenizer.ggml.model', STR, 'llama'),
           kv('tokenizer.ggml.tokens', ARR, toks, STR),
           kv('tokenizer.ggml.scores', ARR, [-float(i) for i in range(nv)], F32),
           kv('tokenizer.ggml.token_type', ARR, types, I32),
           kv('tokenizer.ggml.bos_token_id', U32, 1),
           kv('tokenizer.ggml.eos_token_id', U32, 2)]
    t = [('token_embd.weight', [d, nv], wtype), ('output_norm.weight', [d], T_F32),
         ('blk.0.attn_norm.weight', [d], T_F32), ('blk.0.attn_q.weight', [d, d], wtype),
         ('blk.0.attn_k.weight', [d, nkv * hd], wtype), ('blk.0.attn_v.weight', [d, nkv * hd], wtype),
         ('blk.0.attn_output.weight', [d, d], wtype), ('blk.0.ffn_norm.weight', [d], T_F32),
         ('blk.0.ffn_gate.weight', [d, ff], wtype), ('blk.0.ffn_up.weight', [d, ff], wtype),
         ('blk.0.ffn_down.weight', [ff, d], wtype)]
    if separate_output:
        t.append(('output.weight', [d, nv], T_BF16))
    out = []
    for i, (name, ne, typ) in enumerate(t):
        n = 1
        for x in ne:
            n *= x
        out.append((name, ne, typ, vals(n, i, name.endswith('norm.weight'))))
    return gguf(kvs, out)

def gemma3(arch='gemma3'):
    """A 2-layer Gemma 3 text model: heads of key_length 8 (not d / heads),
    q/k and post norms, a window of 2 on layer 0 (the pattern of 2), linear
    RoPE scaling on layer 1. arch 'qwen3': the same without the window,
    the scaling and the post norms (Qwen3's q/k head norms)."""
    A = arch + '.'
    g3 = arch == 'gemma3'
    d, ff, nh, nkv, hd = 8, 16, 2, 1, 8
    toks = ['<pad>', '<eos>', '<bos>', '<unk>', '<start_of_turn>', '<end_of_turn>', '\n',
            '\u2581', 'a', 'b', '\u2581a', 'ab', '<0x0A>']
    types = [3, 3, 3, 2, 3, 3, 1, 1, 1, 1, 1, 1, 6]
    nv = len(toks)
    kvs = [kv('general.architecture', STR, arch),
           kv(A + 'context_length', U32, 16),
           kv(A + 'embedding_length', U32, d),
           kv(A + 'block_count', U32, 2),
           kv(A + 'feed_forward_length', U32, ff),
           kv(A + 'attention.head_count', U32, nh),
           kv(A + 'attention.head_count_kv', U32, nkv),
           kv(A + 'attention.key_length', U32, hd),
           kv(A + 'attention.value_length', U32, hd),
           *([kv(A + 'attention.sliding_window', U32, 2),
              kv(A + 'attention.sliding_window_pattern', U32, 2)] if g3 else []),
           kv(A + 'rope.freq_base', F32, 1e6),
           *([kv(A + 'rope.freq_base_swa', F32, 1e4),
              kv(A + 'rope.scaling.type', STR, 'linear'),
              kv(A + 'rope.scaling.factor', F32, 8.0)] if g3 else []),
           kv(A + 'attention.layer_norm_rms_epsilon', F32, 1e-6),
           kv('tokenizer.ggml.model', STR, 'llama'),
           kv('tokenizer.ggml.tokens', ARR, toks, STR),
           kv('tokenizer.ggml.scores', ARR, [-float(i) for i in range(nv)], F32),
           kv('tokenizer.ggml.token_type', ARR, types, I32),
           kv('tokenizer.ggml.bos_token_id', U32, 2),
           kv('tokenizer.ggml.eos_token_id', U32, 5)]
    t = [('token_embd.weight', [d, nv]), ('output_norm.weight', [d])]
    for il in range(2):
        b = 'blk.%d.' % il
        t += [(b + 'attn_norm.weight', [d]), (b + 'attn_q.weight', [d, nh * hd]),
              (b + 'attn_k.weight', [d, nkv * hd]), (b + 'attn_v.weight', [d, nkv * hd]),
              (b + 'attn_output.weight', [nh * hd, d]), (b + 'attn_q_norm.weight', [hd]),
              (b + 'attn_k_norm.weight', [hd]), (b + 'post_attention_norm.weight', [d]),
              (b + 'ffn_norm.weight', [d]), (b + 'ffn_gate.weight', [d, ff]),
              (b + 'ffn_up.weight', [d, ff]), (b + 'ffn_down.weight', [ff, d]),
              (b + 'post_ffw_norm.weight', [d])]
        if not g3:
            t = [x for x in t if not x[0].startswith(b + 'post_')]
    out = []
    for i, (name, ne) in enumerate(t):
        n = 1
        for x in ne:
            n *= x
        out.append((name, ne, T_F32, vals(n, i, name.endswith('norm.weight'))))
    return gguf(kvs, out)

def clip():
    S, p, W, F, nh, hid, nout = 4, 2, 4, 8, 2, 8, 8
    npatch = (S // p) ** 2
    kvs = [kv('general.architecture', STR, 'clip'),
           kv('clip.projector_type', STR, 'mlp'),
           kv('clip.has_vision_encoder', BOOL, True),
           kv('clip.vision.image_size', U32, S),
           kv('clip.vision.patch_size', U32, p),
           kv('clip.vision.embedding_length', U32, W),
           kv('clip.vision.feed_forward_length', U32, F),
           kv('clip.vision.attention.head_count', U32, nh),
           kv('clip.vision.block_count', U32, 1),
           kv('clip.vision.projection_dim', U32, nout),
           kv('clip.vision.attention.layer_norm_epsilon', F32, 1e-5),
           kv('clip.use_gelu', BOOL, False),
           kv('clip.vision.image_mean', ARR, [0.48, 0.45, 0.40], F32),
           kv('clip.vision.image_std', ARR, [0.26, 0.26, 0.27], F32)]
    t = [('v.patch_embd.weight', [p, p, 3, W]), ('v.class_embd', [W]),
         ('v.position_embd.weight', [W, npatch + 1]), ('v.pre_ln.weight', [W]),
         ('v.pre_ln.bias', [W])]
    for part in ['ln1', 'ln2']:
        t += [('v.blk.0.%s.weight' % part, [W]), ('v.blk.0.%s.bias' % part, [W])]
    for part in ['attn_q', 'attn_k', 'attn_v', 'attn_out']:
        t += [('v.blk.0.%s.weight' % part, [W, W]), ('v.blk.0.%s.bias' % part, [W])]
    t += [('v.blk.0.ffn_up.weight', [W, F]), ('v.blk.0.ffn_up.bias', [F]),
          ('v.blk.0.ffn_down.weight', [F, W]), ('v.blk.0.ffn_down.bias', [W]),
          ('mm.0.weight', [W, hid]), ('mm.0.bias', [hid]),
          ('mm.2.weight', [hid, nout]), ('mm.2.bias', [nout])]
    out = []
    for i, (name, ne) in enumerate(t):
        n = 1
        for x in ne:
            n *= x
        typ = T_F16 if name.endswith('attn_q.weight') else T_F32
        out.append((name, ne, typ, vals(n, i, name.endswith('ln1.weight'))))
    return gguf(kvs, out)

def idefics3():
    # SmolVLM's layout (SigLIP + pixel shuffle): a 2 x 2 patch grid merged
    # by scale 2 into one row, tiles of 4 pixels, the longest edge 8
    S, p, W, F, nh, sf, nout = 4, 2, 4, 8, 2, 2, 8
    npatch = (S // p) ** 2
    kvs = [kv('general.architecture', STR, 'clip'),
           kv('clip.has_vision_encoder', BOOL, True),
           kv('clip.vision.projection_dim', U32, nout),
           kv('clip.vision.image_size', U32, S),
           kv('clip.vision.patch_size', U32, p),
           kv('clip.vision.embedding_length', U32, W),
           kv('clip.vision.feed_forward_length', U32, F),
           kv('clip.vision.block_count', U32, 1),
           kv('clip.vision.attention.head_count', U32, nh),
           kv('clip.vision.image_mean', ARR, [0.5, 0.5, 0.5], F32),
           kv('clip.vision.image_std', ARR, [0.5, 0.5, 0.5], F32),
           kv('clip.projector_type', STR, 'idefics3'),
           kv('clip.vision.attention.layer_norm_epsilon', F32, 1e-6),
           kv('clip.vision.projector.scale_factor', U32, sf),
           kv('clip.use_gelu', BOOL, True),
           kv('clip.vision.preproc_image_size', U32, 2 * S)]
    t = [('v.patch_embd.weight', [p, p, 3, W]), ('v.patch_embd.bias', [W]),
         ('v.position_embd.weight', [W, npatch])]
    for part in ['ln1', 'ln2']:
        t += [('v.blk.0.%s.weight' % part, [W]), ('v.blk.0.%s.bias' % part, [W])]
    for part in ['attn_q', 'attn_k', 'attn_v', 'attn_out']:
        t += [('v.blk.0.%s.weight' % part, [W, W]), ('v.blk.0.%s.bias' % part, [W])]
    t += [('v.blk.0.ffn_up.weight', [W, F]), ('v.blk.0.ffn_up.bias', [F]),
          ('v.blk.0.ffn_down.weight', [F, W]), ('v.blk.0.ffn_down.bias', [W]),
          ('v.post_ln.weight', [W]), ('v.post_ln.bias', [W]),
          ('mm.model.fc.weight', [W * sf * sf, nout])]
    out = []
    for i, (name, ne) in enumerate(t):
        n = 1
        for x in ne:
            n *= x
        out.append((name, ne, T_F32, vals(n, i, name.endswith('ln1.weight'))))
    return gguf(kvs, out)

def resampler():
    # MiniCPM-V's layout (SigLIP with a 70 x 70 position table + resampler):
    # slices of 4 pixels, width 4, a resampler of one 128-channel head and
    # 2 queries; the wide square matrices F16 to keep the seed small
    S, p, W, F, nh, D, Q = 4, 2, 4, 8, 2, 128, 2
    kvs = [kv('general.architecture', STR, 'clip'),
           kv('clip.has_vision_encoder', BOOL, True),
           kv('clip.projector_type', STR, 'resampler'),
           kv('clip.minicpmv_version', I32, 3),
           kv('clip.vision.image_size', U32, S),
           kv('clip.vision.patch_size', U32, p),
           kv('clip.vision.embedding_length', U32, W),
           kv('clip.vision.feed_forward_length', U32, F),
           kv('clip.vision.block_count', U32, 1),
           kv('clip.vision.attention.head_count', U32, nh),
           kv('clip.vision.attention.layer_norm_epsilon', F32, 1e-6),
           kv('clip.minicpmv_query_num', I32, Q),
           kv('clip.vision.image_mean', ARR, [0.5, 0.5, 0.5], F32),
           kv('clip.vision.image_std', ARR, [0.5, 0.5, 0.5], F32),
           kv('clip.use_gelu', BOOL, True)]
    t = [('resampler.query', [D, Q]), ('resampler.proj.weight', [D, D]),
         ('resampler.kv.weight', [W, D])]
    for part in ['q', 'k', 'v', 'out']:
        t += [('resampler.attn.%s.weight' % part, [D, D]), ('resampler.attn.%s.bias' % part, [D])]
    for part in ['q', 'kv', 'post']:
        t += [('resampler.ln_%s.weight' % part, [D]), ('resampler.ln_%s.bias' % part, [D])]
    t += [('v.patch_embd.weight', [p, p, 3, W]), ('v.patch_embd.bias', [W]),
          ('v.position_embd.weight', [W, 4900])]
    for part in ['attn_k', 'attn_v', 'attn_q', 'attn_out']:
        t += [('v.blk.0.%s.weight' % part, [W, W]), ('v.blk.0.%s.bias' % part, [W])]
    t += [('v.blk.0.ln1.weight', [W]), ('v.blk.0.ln1.bias', [W]),
          # the converter's swapped names: ffn_down is fc1 (W -> F)
          ('v.blk.0.ffn_down.weight', [W, F]), ('v.blk.0.ffn_down.bias', [F]),
          ('v.blk.0.ffn_up.weight', [F, W]), ('v.blk.0.ffn_up.bias', [W]),
          ('v.blk.0.ln2.weight', [W]), ('v.blk.0.ln2.bias', [W]),
          ('v.post_ln.weight', [W]), ('v.post_ln.bias', [W])]
    out = []
    for i, (name, ne) in enumerate(t):
        n = 1
        for x in ne:
            n *= x
        typ = T_F16 if len(ne) == 2 and ne[0] == D and ne[1] == D else T_F32
        out.append((name, ne, typ, vals(n, i, 'ln' in name and name.endswith('weight'))))
    return gguf(kvs, out)

def bmp(w, h):
    row = (w * 3 + 3) & ~3
    px = b''.join(bytes([(x * 40) & 255, (y * 60) & 255, 128] * 1) for y in range(h) for x in range(w))
    rows = b''.join(px[y * w * 3:(y + 1) * w * 3] + b'\0' * (row - w * 3) for y in range(h))
    info = struct.pack('<IiiHHIIiiII', 40, w, h, 1, 24, 0, len(rows), 2835, 2835, 0, 0)
    return b'BM' + struct.pack('<IHHI', 14 + 40 + len(rows), 0, 0, 54) + info + rows

def with_exif(jpeg, orientation):
    # APP1 "Exif\0\0" + little-endian TIFF with one IFD entry: 0x0112 SHORT.
    tiff = b'II*\0' + struct.pack('<I', 8) + struct.pack('<H', 1)
    tiff += struct.pack('<HHII', 0x0112, 3, 1, orientation) + struct.pack('<I', 0)
    body = b'Exif\0\0' + tiff
    return jpeg[:2] + b'\xff\xe1' + struct.pack('>H', len(body) + 2) + body + jpeg[2:]

def png(w, h):
    # 8-bit RGB, filter 0 rows. Long thin ones reach the preprocessing of a
    # huge padded square, whose cost must follow the real pixels.
    raw = b''.join(b'\0' + bytes((x * 7 + y * 3) % 256 for x in range(w * 3)) for y in range(h))
    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))

def gemma3_mmproj():
    # Gemma 3's projector (seed gemma3-mmproj.gguf): SigLIP (patch bias,
    # post-LN, no class token) over a 2 x 2 patch grid, pooled 2 x 2 into one
    # row, the soft-embedding norm and the F16 input projection (x @ W, GGUF
    # [n_text, W])
    S, p, W, F, nh, nout = 4, 2, 4, 8, 2, 8
    kvs = [kv('general.architecture', STR, 'clip'),
           kv('clip.has_vision_encoder', BOOL, True),
           kv('clip.projector_type', STR, 'gemma3'),
           kv('clip.vision.image_size', U32, S),
           kv('clip.vision.patch_size', U32, p),
           kv('clip.vision.embedding_length', U32, W),
           kv('clip.vision.feed_forward_length', U32, F),
           kv('clip.vision.block_count', U32, 1),
           kv('clip.vision.attention.head_count', U32, nh),
           kv('clip.vision.image_mean', ARR, [0.5, 0.5, 0.5], F32),
           kv('clip.vision.image_std', ARR, [0.5, 0.5, 0.5], F32),
           kv('clip.vision.attention.layer_norm_epsilon', F32, 1e-6),
           kv('clip.vision.projector.scale_factor', U32, 2),
           kv('clip.use_gelu', BOOL, True)]
    t = [('v.patch_embd.weight', [p, p, 3, W], T_F32), ('v.patch_embd.bias', [W], T_F32),
         ('v.position_embd.weight', [W, (S // p) ** 2], T_F32)]
    blk = [('ln1.weight', [W]), ('ln1.bias', [W]), ('ln2.weight', [W]), ('ln2.bias', [W]),
           ('ffn_up.weight', [W, F]), ('ffn_up.bias', [F]), ('ffn_down.weight', [F, W]),
           ('ffn_down.bias', [W])]
    blk += [(q + s, [W, W] if s == '.weight' else [W])
            for q in ['attn_q', 'attn_k', 'attn_v', 'attn_out'] for s in ['.weight', '.bias']]
    t += [('v.blk.0.' + n, ne, T_F32) for n, ne in blk]
    t += [('v.post_ln.weight', [W], T_F32), ('v.post_ln.bias', [W], T_F32),
          ('mm.soft_emb_norm.weight', [W], T_F32),
          ('mm.input_projection.weight', [nout, W], T_F16)]
    out = []
    for i, (name, ne, typ) in enumerate(t):
        n = 1
        for x in ne:
            n *= x
        out.append((name, ne, typ, vals(n, i, name.endswith('ln1.weight'))))
    return gguf(kvs, out)

def emb_entry(rows, cols, key):
    raw = struct.pack('<%df' % (rows * cols), *[i / 7.0 for i in range(rows * cols)])
    z = zlib.compress(raw)
    h = b'RVEMB' + bytes([1, 0, 0]) + key + struct.pack('<IIQIQ', rows, cols, len(raw),
                                                        zlib.crc32(raw), len(z))
    return h + z

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    top = os.path.dirname(here)
    c = os.path.join(here, 'corpus')
    files = {
        'gguf/llama-f32.gguf': llama(),
        'gguf/llama-f16-gqa-bytes.gguf': llama(T_F16, gqa=True, separate_output=True,
                                               byte_tokens=True),
        'gguf/clip.gguf': clip(),
        'gguf/gemma3-mmproj.gguf': gemma3_mmproj(),
        'gguf/idefics3.gguf': idefics3(),
        'gguf/gemma3.gguf': gemma3(),
        'gguf/qwen3.gguf': gemma3('qwen3'),
        'gguf/resampler.gguf': resampler(),
        'tokenizer/text-plain': b'\x00Once upon a time, there was a little girl.',
        'tokenizer/text-special': b'\x02<s>Hi</s> \xe2\x96\x81 caf\xc3\xa9 \xf0\x9f\x98\x80 \xff\xfe',
        'tokenizer/ids': b'\x01' + struct.pack('<12H', 1, 300, 5, 6, 7, 200, 2, 0, 511, 512, 0xffff, 3),
        'image/bmp': b'\x01' + bmp(5, 3),
        'image/pgm': b'\x02' + b'P5\n3 2\n255\n' + bytes(range(0, 240, 40)),
        'image/ppm': b'\x43' + b'P6\n2 2\n255\n' + bytes(range(12)),
        'image/png-thin': b'\x3e' + png(16000, 1),
        'image/png-tall': b'\x3f' + png(1, 12000),
        'embcache/valid': emb_entry(4, 8, bytes(range(32))),
    }
    jpg = open(os.path.join(top, 'tests', 'data', 'shapes_100x80.jpg'), 'rb').read()
    files['image/jpeg-exif6'] = b'\x0b' + with_exif(jpg, 6)
    files['embcache/truncated'] = files['embcache/valid'][:90]
    types = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q5_K', 'Q6_K']
    files['embcache/kchoice'] = (
        'rlaifv kernel choice 1\n'
        'key AuthenticAMD|26|2|AMD EPYC|0.1.0 rev 1 sets avx512 avx2 scalar\n'
        'sets avx512 avx2 scalar\n' +
        ''.join('choice %s avx512 avx2\n' % t for t in types) +
        ''.join('speed %s %s 40.000 10.000 20.000 1.000\n' % (t, s)
                for t in types for s in ('avx512', 'avx2'))).encode()
    for name, data in files.items():
        path = os.path.join(c, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(data)

main()
