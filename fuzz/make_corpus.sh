#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/corpus/<target>/ from tiny files made by lnlab itself (and
# a few written by hand), so each fuzzer starts from valid inputs of its format. Usage:
#   fuzz/make_corpus.sh [path/to/lnlab]      (default ./lnlab)
set -euo pipefail
cd "$(dirname "$0")/.."
LNLAB="$(realpath "${1:-./lnlab}")"
C=fuzz/corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=1
rm -rf "$C"
mkdir -p "$C"/{safetensors,model_file,llmc,shard,hfconfig,config_json,tokenizer,state,flags,resume,study_config}

# A token shard over a vocabulary of 8, and tiny runs on it.
python3 - "$T/tok.bin" <<'PY'
import struct, sys
toks = [(i * 5 + i // 3) % 8 for i in range(200)]
hdr = [20240520, 1, len(toks)] + [0] * 253
open(sys.argv[1], 'wb').write(struct.pack('<256i', *hdr) + struct.pack('<%dH' % len(toks), *toks))
PY
tiny=(--data "$T/tok.bin" --vocab 8 --heads 1 --dim 4 --seq 4 --batch 2 --quiet)
"$LNLAB" train "${tiny[@]}" --layers 1 --preset pre --steps 2 --out "$T/pre"
"$LNLAB" train "${tiny[@]}" --layers 1 --preset peri --norm rmsnorm --steps 3 --stop-after 2 --out "$T/peri" 2>/dev/null
"$LNLAB" train "${tiny[@]}" --preset hybrid --layers 2 --steps 1 --out "$T/hyb"
python3 - "$T" "$C" <<'PY'
import json, os, shutil, struct, sys
T, C = sys.argv[1], sys.argv[2]
def put(target, name, data):
    open(os.path.join(C, target, name), 'wb').write(data)
def read(p): return open(p, 'rb').read()
pre, hyb = read(T + '/pre/model.safetensors'), read(T + '/hyb/model.safetensors')
state = read(T + '/peri/checkpoints/state_00000002.safetensors')
peri = read(T + '/peri/checkpoints/model_00000002.safetensors')
for n, d in [('pre', pre), ('hybrid', hyb), ('state', state)]:
    put('safetensors', n + '.safetensors', d)
# a Hugging Face style file: no lnlab metadata, transformer. prefix, F16 and BF16 tensors
def st(tensors, meta=None):
    h, data, off = {}, b'', 0
    if meta is not None: h['__metadata__'] = meta
    for name, dt, shape, raw in tensors:
        h[name] = {'dtype': dt, 'shape': shape, 'data_offsets': [off, off + len(raw)]}
        data += raw; off += len(raw)
    j = json.dumps(h).encode(); j += b' ' * (-len(j) % 8)
    return struct.pack('<Q', len(j)) + j + data
put('safetensors', 'hf_mixed.safetensors', st([
    ('transformer.wte.weight', 'F16', [2, 2], struct.pack('<4H', 0x3c00, 0x8001, 0x7c00, 0x7e00)),
    ('a', 'BF16', [3], struct.pack('<3H', 0x3f80, 0xff80, 1)),
    ('b', 'F64', [], struct.pack('<d', 2.5)),
    ('c', 'I64', [2], struct.pack('<2q', -3, 1 << 40)),
    ('d', 'U8', [0, 3], b'')], {'format': 'pt'}))
for n, d in [('pre', pre), ('hybrid', hyb), ('peri', peri)]:
    put('model_file', n + '.st', b'\x00' + d)
def config_of(d):
    return json.loads(d[8:8 + struct.unpack('<Q', d[:8])[0]])['__metadata__']['lnlab.config'].encode()
put('config_json', 'pre.json', config_of(pre))
put('config_json', 'hybrid.json', config_of(hyb))
# lnlab's llm.c extension (version 1003) of the Peri-LN model: config JSON, then every tensor in
# table order in the in-memory layout (the Conv1D matrices transposed back to (out, in))
n = struct.unpack('<Q', peri[:8])[0]
h = json.loads(peri[8:8 + n]); data = peri[8 + n:]
cfg = config_of(peri); cfg += b' ' * (-len(cfg) % 4); c = json.loads(cfg)
blob = b''
for name, t in h.items():
    if name == '__metadata__': continue
    raw = data[t['data_offsets'][0]:t['data_offsets'][1]]
    if name.endswith(('c_attn.weight', 'c_proj.weight', 'c_fc.weight')):
        r, k = t['shape']; v = struct.unpack('<%df' % (r * k), raw)
        raw = struct.pack('<%df' % (r * k), *[v[i * k + j] for j in range(k) for i in range(r)])
    blob += raw
hdr = [20240326, 1003, c['n_positions'], c['vocab_size'], c['n_layer'], c['n_head'], c['n_embd'], c['vocab_size'], len(cfg)]
put('model_file', 'lnlab1003.bin', b'\x01' + struct.pack('<256i', *(hdr + [0] * 247)) + cfg + blob)
put('state', 'state.safetensors', state)
put('resume', 'config.json', b'\x00' + read(T + '/peri/config.json'))
put('resume', 'log.jsonl', b'\x05' + read(T + '/peri/log.jsonl'))
PY
# llm.c version 3 (plain Pre-LN)
python3 - "$T" "$C" <<'PY'
import struct, sys
T, C = sys.argv[1], sys.argv[2]
# llm.c version 3, L=1, C=4, NH=1, maxT=4, V=8, Vp=8: 16 tensors, all small
L, Cc, maxT, V, Vp = 1, 4, 4, 8, 8
hdr = [20240326, 3, maxT, V, L, 1, Cc, Vp] + [0] * 248
sizes = [Vp*Cc, maxT*Cc, L*Cc, L*Cc, L*3*Cc*Cc, L*3*Cc, L*Cc*Cc, L*Cc, L*Cc, L*Cc, L*4*Cc*Cc, L*4*Cc, L*Cc*4*Cc, L*Cc, Cc, Cc]
n = sum(sizes)
vals = [((i * 7) % 13 - 6) / 10.0 for i in range(n)]
blob = struct.pack('<256i', *hdr) + struct.pack('<%df' % n, *vals)
open(C + '/llmc/v3_tiny.bin', 'wb').write(blob)
open(C + '/model_file/v3_tiny.bin', 'wb').write(b'\x01' + blob)
hdr5 = list(hdr); hdr5[1] = 5
open(C + '/llmc/v5_header.bin', 'wb').write(struct.pack('<256i', *hdr5))
PY
# token shards: llm.c with auto detection, nanoGPT raw, a forced llm.c read of a raw file
python3 - "$C" <<'PY'
import struct, sys
C = sys.argv[1]
toks = [1, 2, 3, 299, 7, 0, 65535, 4, 5, 6, 7, 8]
shard = struct.pack('<256i', 20240520, 1, len(toks), *([0] * 253)) + struct.pack('<%dH' % len(toks), *toks)
open(C + '/shard/llmc_auto.bin', 'wb').write(b'\x00' + shard)
open(C + '/shard/llmc_vocab.bin', 'wb').write(b'\x28' + shard)
open(C + '/shard/nanogpt.bin', 'wb').write(b'\x02' + struct.pack('<12H', *range(12)))
open(C + '/shard/forced_llmc.bin', 'wb').write(b'\x01' + struct.pack('<12H', *range(12)))
PY
# config.json (Hugging Face)
cat >"$C/hfconfig/gpt2.json" <<'JS'
{"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "layer_norm_epsilon": 1e-05,
 "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_inner": null, "n_layer": 12,
 "n_positions": 1024, "vocab_size": 50257}
JS
printf '{"n_layer": 2, "n_head": 3, "n_embd": 6, "n_ctx": 8, "vocab_size": 9, "layer_norm_epsilon": 0.5}' >"$C/hfconfig/small_nctx.json"
# a tiny GPT-2 style vocabulary: the 256 byte tokens, some merges, end-of-text
python3 - "$C" <<'PY'
import json, struct, sys
C = sys.argv[1]
bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('\xa1'), ord('\xac') + 1)) + list(range(ord('\xae'), ord('\xff') + 1))
cs = bs[:]; n = 0
for b in range(256):
    if b not in bs: bs.append(b); cs.append(256 + n); n += 1
u = {b: chr(c) for b, c in zip(bs, cs)}
enc = {u[b]: i for i, b in enumerate(range(256))}
merges = [('Ġ', 't'), ('h', 'e'), ('Ġt', 'he'), ('i', 't'), ("'", 's'), ('l', 'l'), ('o', 'r'), ('Ġw', 'or')]
for a, b in merges:
    if a not in enc: enc[a] = len(enc)
    enc[a + b] = len(enc)
enc['<|endoftext|>'] = len(enc)
e = json.dumps(enc, ensure_ascii=False).encode()
bpe = ('#version: 0.2\n' + ''.join('%s %s\n' % m for m in merges if m[0] in enc)).encode()
open(C + '/tokenizer/tiny.bin', 'wb').write(struct.pack('<I', len(e)) + e + bpe)
PY
# argument lists, NUL-separated
printf -- '--steps\0 42\0--lr=1e-3\0--schedule\0linear\0--quiet\0pos\0--input\0a\0b' >"$C/flags/mixed"
printf -- '--any\0-9223372036854775808\0--x\0nan\0--quiet=maybe' >"$C/flags/edges"
printf -- '--steps=0x10\0--lr\0 1\0--path=\0--help' >"$C/flags/bad"
# study configs: the built-in ones, the grids example of docs/STUDY.md, a small one, one with precisions
"$LNLAB" study --print-config >"$C/study_config/default.json"
"$LNLAB" study --preset-study paper --print-config >"$C/study_config/paper.json"
sed -n '/^    {"data": "data\/kjv-byte", "steps": 400,/,/}]}/p' docs/STUDY.md | sed 's/^    //' >"$C/study_config/grids.json"
printf '{"steps": 10, "presets": ["pre"], "depths": [2], "lrs": [0.001, 0.01], "seeds": [1, 2]}' >"$C/study_config/small.json"
printf '{"precision": "bf16", "precisions": ["fp32", "bf16"], "grids": [{"name": "a", "presets": ["pre"]}, {"name": "b", "precisions": "fp32"}]}' >"$C/study_config/precision.json"
ls -R "$C" | head -40
du -sh "$C"
