"""Independent PyTorch reference for lnlab's model, written from the placement equations
(design notes, "One block, many placements"; docs/PLACEMENTS.md), not from the C code.

Contents:
  - a minimal safetensors reader/writer (no third-party package);
  - the config (the JSON string in __metadata__["lnlab.config"]), read strictly;
  - the expected per-layer spec of every preset, from the DESIGN table (a cross-check);
  - the model: forward (with the final logit softcap), loss (cross-entropy, plus the z-loss in the
    objective), gradients, probe statistics and a hand-written AdamW;
  - a tolerance comparator (|c - ref| <= atol + rtol * |ref|, NaN/Inf always fail);
  - a fake "refdump" made with this reference itself (for testing the test).

Runs on Debian's PyTorch 1.13 and numpy only.
"""

import json
import math
import os
import re
import struct

import numpy as np
import torch

# ---------------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, a JSON header
#   {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
# then the raw little-endian data, offsets relative to the end of the header.

_ST_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
}


class FormatError(Exception):
    pass


def load_safetensors(path):
    """Returns (tensors: dict name -> np.ndarray, metadata: dict str -> str). Strict: the
    byte buffer must be covered exactly by the tensors, without overlaps or holes."""
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < 8:
        raise FormatError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n < 2 or 8 + n > len(data):
        raise FormatError(f"{path}: header length {n} does not fit a {len(data)}-byte file")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as ex:
        raise FormatError(f"{path}: header is not valid JSON: {ex}")
    if not isinstance(header, dict):
        raise FormatError(f"{path}: header is not a JSON object")
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise FormatError(f"{path}: __metadata__ must map strings to strings")
    base = 8 + n
    size = len(data) - base
    spans = []
    tensors = {}
    for name, info in header.items():
        try:
            dt = _ST_DTYPES[info["dtype"]]
            shape = [int(s) for s in info["shape"]]
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as ex:
            raise FormatError(f"{path}: tensor {name}: bad header entry {info!r} ({ex})")
        count = int(np.prod(shape)) if shape else 1
        if any(s < 0 for s in shape) or end - begin != count * dt.itemsize or begin < 0 or end > size:
            raise FormatError(f"{path}: tensor {name}: offsets [{begin}, {end}] do not match "
                              f"dtype {info['dtype']} shape {shape} in a {size}-byte buffer")
        spans.append((begin, end, name))
        tensors[name] = np.frombuffer(data, dtype=dt, count=count, offset=base + begin).reshape(shape).copy()
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            raise FormatError(f"{path}: tensor {name} starts at {begin}, expected {pos} (hole or overlap)")
        pos = end
    if pos != size:
        raise FormatError(f"{path}: {size - pos} bytes after the last tensor")
    return tensors, meta


def save_safetensors(path, tensors, metadata=None):
    """Writes a dict name -> np.ndarray (F32, F64, I32, ...) with optional str -> str metadata."""
    rev = {v: k for k, v in _ST_DTYPES.items()}
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    off = 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
        key = rev.get(np.dtype(dt).newbyteorder("<")) or rev.get(np.dtype(dt))
        if key is None:
            raise FormatError(f"save_safetensors: unsupported dtype {arr.dtype} for {name}")
        raw = arr.astype(_ST_DTYPES[key], copy=False).tobytes()
        header[name] = {"dtype": key, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * (-len(hj) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(hj)))
        fh.write(hj)
        for b in blobs:
            fh.write(b)


# ---------------------------------------------------------------------------------------------
# Config

SUB_BOOL = ("pre_norm", "out_norm", "post_norm", "res_from_normed", "b2t", "qkv_norm",
            "skip_learned", "gate", "branch_norm", "bias")
SUB_FLOAT = ("in_scale", "skip_scale", "dt")  # dt: the sub-layer's residual step (attn.dt, mlp.dt)
# Named sub-layer fields: values, the first the default of files from before the field.
SUB_ENUM = {"qk_norm": ("off", "head", "full")}  # q and k norms: per head (d_h) or over C
SUBS = ("attn", "mlp")
# Top-level keys that do not change the forward pass (records, init rules, schedules).
_TOP_INERT = {"format", "version", "preset", "init", "branchnorm_steps", "mix_ratio"}
_TOP_MODEL = {"n_layer", "n_head", "n_embd", "n_positions", "vocab_size", "norm", "norm_gain", "eps", "dt",
              "final_norm", "embed_norm", "embed_scale", "embed_scale_learned", "logit_softcap",
              "layers"}
NORM_KINDS = ("layernorm", "rmsnorm", "dyt", "derf")
DYNAMIC_NORMS = ("dyt", "derf")  # elementwise: g * phi(a x [+ s]) + b, no statistics
# Model keys that files from before them lack, with the value that means.
_TOP_MODEL_OPTIONAL = {"attn_softcap": 0.0}  # Gemma 2's attention-logit softcap S (0: off)


class ConfigError(Exception):
    pass


class Config:
    """The model config. layers[l][s] is a dict of the sub-layer spec (l 0-based, s attn|mlp)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    @property
    def head_size(self):
        return self.n_embd // self.n_head

    def to_json(self):
        d = {k: getattr(self, k) for k in ("format", "version", "n_layer", "n_head", "n_embd", "n_positions",
                                           "vocab_size", "norm", "norm_gain", "eps", "dt", "final_norm",
                                           "embed_norm", "embed_scale", "embed_scale_learned", "logit_softcap", "preset", "init",
                                           "branchnorm_steps", "mix_ratio")}
        for k, v in _TOP_MODEL_OPTIONAL.items():
            d[k] = getattr(self, k, v)
        d["layers"] = self.layers
        return json.dumps(d)


def parse_config(text):
    """Parses the lnlab.config JSON strictly: an unknown key, or a missing one, is an error, so
    that a feature added on the C side cannot be silently ignored by this reference."""
    try:
        o = json.loads(text)
    except json.JSONDecodeError as ex:
        raise ConfigError(f"lnlab.config is not JSON: {ex}")
    if not isinstance(o, dict) or o.get("format") != "lnlab.config":
        raise ConfigError("lnlab.config: 'format' is not \"lnlab.config\"")
    unknown = set(o) - _TOP_INERT - _TOP_MODEL - set(_TOP_MODEL_OPTIONAL)
    if unknown:
        raise ConfigError(f"lnlab.config: fields unknown to the reference: {sorted(unknown)}")
    missing = _TOP_MODEL - set(o)
    if missing:
        raise ConfigError(f"lnlab.config: missing fields {sorted(missing)}")
    if o["norm"] not in NORM_KINDS:
        raise ConfigError(f"lnlab.config: norm {o['norm']!r}")
    if o["norm_gain"] not in ("plain", "one-plus"):
        raise ConfigError(f"lnlab.config: norm_gain {o['norm_gain']!r}")
    for k in ("final_norm", "embed_norm", "embed_scale", "embed_scale_learned"):
        if not isinstance(o[k], bool):
            raise ConfigError(f"lnlab.config: {k} is not a boolean")
    cap = o["logit_softcap"]
    if not isinstance(cap, (int, float)) or isinstance(cap, bool) or not math.isfinite(cap) or cap < 0:
        raise ConfigError(f"lnlab.config: logit_softcap {cap!r} is not a finite number >= 0")
    L = int(o["n_layer"])
    if not isinstance(o["layers"], list) or len(o["layers"]) != L:
        raise ConfigError(f"lnlab.config: 'layers' must have n_layer = {L} entries")
    layers = []
    for i, lo in enumerate(o["layers"]):
        if set(lo) != set(SUBS):
            raise ConfigError(f"lnlab.config: layers[{i}] keys {sorted(lo)} != {list(SUBS)}")
        ent = {}
        for s in SUBS:
            so = lo[s]
            extra = set(so) - set(SUB_BOOL) - set(SUB_FLOAT) - set(SUB_ENUM)
            if extra:
                raise ConfigError(f"lnlab.config: layers[{i}].{s}: fields unknown to the reference: {sorted(extra)}")
            sub = {}
            for k in SUB_BOOL:
                if not isinstance(so.get(k), bool):
                    raise ConfigError(f"lnlab.config: layers[{i}].{s}.{k} missing or not a boolean")
                sub[k] = so[k]
            for k in SUB_FLOAT:
                if not isinstance(so.get(k), (int, float)) or isinstance(so.get(k), bool):
                    raise ConfigError(f"lnlab.config: layers[{i}].{s}.{k} missing or not a number")
                sub[k] = float(so[k])
            for k, values in SUB_ENUM.items():
                sub[k] = so.get(k, values[0])
                if sub[k] not in values:
                    raise ConfigError(f"lnlab.config: layers[{i}].{s}.{k} = {sub[k]!r} is not one of {values}")
            ent[s] = sub
        if ent["attn"]["b2t"]:
            raise ConfigError(f"lnlab.config: layers[{i}].attn.b2t is set; b2t is defined for the mlp only")
        if ent["mlp"]["qkv_norm"]:
            raise ConfigError(f"lnlab.config: layers[{i}].mlp.qkv_norm is set; qkv_norm is attention only")
        if ent["mlp"]["qk_norm"] != "off":
            raise ConfigError(f"lnlab.config: layers[{i}].mlp.qk_norm is set; qk_norm is attention only")
        if ent["attn"]["qk_norm"] != "off" and ent["attn"]["qkv_norm"]:
            raise ConfigError(f"lnlab.config: layers[{i}].attn has qkv_norm and qk_norm (one names both q_norm)")
        layers.append(ent)
    cfg = Config(**{k: o.get(k) for k in _TOP_INERT})
    cfg.n_layer = L
    cfg.n_head = int(o["n_head"])
    cfg.n_embd = int(o["n_embd"])
    cfg.n_positions = int(o["n_positions"])
    cfg.vocab_size = int(o["vocab_size"])
    cfg.norm = o["norm"]
    cfg.norm_gain = o["norm_gain"]
    cfg.embed_scale_learned = o["embed_scale_learned"]
    cfg.eps = float(o["eps"])
    cfg.dt = float(o["dt"])
    cfg.final_norm = o["final_norm"]
    cfg.embed_norm = o["embed_norm"]
    cfg.embed_scale = o["embed_scale"]
    for k, v in _TOP_MODEL_OPTIONAL.items():
        x = o.get(k, v)
        if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x) or x < 0:
            raise ConfigError(f"lnlab.config: {k} = {x!r} is not a finite number >= 0")
        setattr(cfg, k, float(x))
    cfg.logit_softcap = float(cap)
    cfg.layers = layers
    if cfg.n_embd % cfg.n_head:
        raise ConfigError(f"lnlab.config: n_embd {cfg.n_embd} is not a multiple of n_head {cfg.n_head}")
    return cfg


def _f32(x):
    return float(np.float32(x))


def _plain_sub():
    d = {k: False for k in SUB_BOOL}
    d.update(in_scale=1.0, skip_scale=1.0, bias=True)
    d.update({k: v[0] for k, v in SUB_ENUM.items()})
    return d


# The defaults each preset takes from its source besides the placement, as docs/PLACEMENTS.md
# states them (section 4): linear biases, embedding norm, embedding scale by sqrt(C).
_PRESET_EXTRAS = {
    "post": dict(bias=True, embed_norm=False, embed_scale=True),       # fairseq
    "b2t": dict(bias=True, embed_norm=False, embed_scale=True),        # fairseq
    "admin": dict(bias=True, embed_norm=False, embed_scale=True),      # fairseq (Transformer-Clinic)
    "pre": dict(bias=True, embed_norm=False, embed_scale=False),       # GPT-2
    "peri": dict(bias=True, embed_norm=True, embed_scale=False),       # lnlab's pick (the source is silent)
    "mix": dict(bias=False, embed_norm=False, embed_scale=False),      # LLaMA code
    "lns": dict(bias=False, embed_norm=False, embed_scale=False),      # LLaMA code
    "hybrid": dict(bias=False, embed_norm=False, embed_scale=False),   # OLMo config
    "hybrid*": dict(bias=False, embed_norm=False, embed_scale=False),
    "deepnorm": dict(bias=True, embed_norm=False, embed_scale=False),  # torchscale
    "branchnorm": dict(bias=True, embed_norm=False, embed_scale=False),
    "rezero": dict(bias=True, embed_norm=False, embed_scale=False),
    "olmo2": dict(bias=False, embed_norm=False, embed_scale=False),    # HF modeling_olmo2.py
    "gemma2": dict(bias=False, embed_norm=False, embed_scale=True),    # HF modeling_gemma2.py: x sqrt(C)
}

# What a model family's preset fixes beyond the placement (docs/PLACEMENTS.md, olmo2 and gemma2);
# every other preset leaves these to the flags, whose defaults are the first entry.
_PRESET_MODEL_DEFAULT = dict(norm_gain="plain", eps=1e-5, attn_softcap=0.0, logit_softcap=0.0, qk_norm="off")
_PRESET_MODEL = {
    "olmo2": dict(norm="rmsnorm", norm_gain="plain", eps=1e-6, attn_softcap=0.0, logit_softcap=0.0, qk_norm="full"),
    "gemma2": dict(norm="rmsnorm", norm_gain="one-plus", eps=1e-6, attn_softcap=50.0, logit_softcap=30.0,
                   qk_norm="off"),
}


def preset_model(preset):
    """dict(norm_gain, eps, attn_softcap, logit_softcap, qk_norm[, norm]): a preset's model-level
    defaults (norm: only for the model families, which choose their kind)."""
    d = dict(_PRESET_MODEL_DEFAULT)
    d.update(_PRESET_MODEL.get(preset, {}))
    return d


def preset_extras(preset):
    """dict(bias, embed_norm, embed_scale): a preset's defaults beyond its placement."""
    p = "peri" if preset == "sandwich" else preset
    if p not in _PRESET_EXTRAS:
        raise ConfigError(f"unknown preset {preset!r}")
    return dict(_PRESET_EXTRAS[p])


def preset_layers(preset, L, mix_ratio=0.25, dt=1.0):
    """The per-layer spec and final_norm of a preset, as the DESIGN.md table defines it (and the
    linear biases as docs/PLACEMENTS.md gives them), every sub-layer with the residual step dt.
    Returns (layers, final_norm). Written from the tables, independently of spec.c."""
    p = "peri" if preset == "sandwich" else preset
    layers = [{s: _plain_sub() for s in SUBS} for _ in range(L)]
    bias = preset_extras(p)["bias"]
    n_post = int(math.floor(_f32(mix_ratio) * L))
    for i in range(L):
        l = i + 1
        for s in SUBS:
            q = layers[i][s]
            if p in ("post", "b2t", "deepnorm", "admin", "branchnorm"):
                q["post_norm"] = True
            elif p == "pre":
                q["pre_norm"] = True
            elif p == "peri":
                q["pre_norm"] = q["out_norm"] = True
            elif p == "mix":
                q["post_norm" if l <= n_post else "pre_norm"] = True
            elif p == "lns":
                q["pre_norm"] = True
                q["in_scale"] = _f32(1.0 / math.sqrt(l))
            elif p in ("hybrid", "hybrid*"):
                first_pre = p == "hybrid*" and l == 1  # HybridNorm*: layer 1 is Pre-Norm
                if s == "attn":
                    q["qkv_norm"] = True
                    q["pre_norm"] = first_pre
                else:
                    q["pre_norm"] = True
                    q["res_from_normed"] = not first_pre
            elif p == "rezero":
                q["gate"] = True
            elif p == "olmo2":  # x + N(F(x)): the norm on the branch's output only
                q["out_norm"] = True
            elif p == "gemma2":  # input and output norms
                q["pre_norm"] = q["out_norm"] = True
            else:
                raise ConfigError(f"unknown preset {preset!r}")
            if p == "b2t" and s == "mlp":
                q["b2t"] = True
            if p == "deepnorm":
                q["skip_scale"] = _f32((2.0 * L) ** 0.25)
            if p == "admin":
                q["skip_learned"] = True
            if p == "branchnorm":
                q["branch_norm"] = True
            q["bias"] = bias
            q["dt"] = _f32(dt)
            if s == "attn":
                q["qk_norm"] = preset_model(p)["qk_norm"]
    final = p in ("pre", "peri", "mix", "lns", "hybrid", "hybrid*", "olmo2", "gemma2")
    return layers, final


def param_shapes(cfg):
    """Every parameter the spec uses, name -> shape, in a fixed order."""
    C, V, hs = cfg.n_embd, cfg.vocab_size, cfg.head_size
    out = {"wte.weight": (V, C), "wpe.weight": (cfg.n_positions, C)}

    def norm(prefix, n=C):
        out[prefix + ".weight"] = (n,)
        if cfg.norm != "rmsnorm":
            out[prefix + ".bias"] = (n,)
        if cfg.norm in DYNAMIC_NORMS:
            out[prefix + ".alpha"] = (1,)
        if cfg.norm == "derf":
            out[prefix + ".shift"] = (1,)

    if cfg.embed_scale_learned:
        out["embed_scale"] = (1,)
    if cfg.embed_norm:
        norm("ln_e")
    for i, lay in enumerate(cfg.layers):
        a, m = lay["attn"], lay["mlp"]
        p = f"h.{i}."
        if a["pre_norm"]:
            norm(p + "ln_1")
        if a["out_norm"]:
            norm(p + "ln_1_out")
        if a["post_norm"]:
            norm(p + "ln_1_post")
        out[p + "attn.c_attn.weight"] = (C, 3 * C)
        if a["bias"]:
            out[p + "attn.c_attn.bias"] = (3 * C,)
        if a["qkv_norm"]:
            for w in ("q_norm", "k_norm", "v_norm"):
                norm(p + "attn." + w, hs)
        if a["qk_norm"] != "off":
            for w in ("q_norm", "k_norm"):
                norm(p + "attn." + w, C if a["qk_norm"] == "full" else hs)
        out[p + "attn.c_proj.weight"] = (C, C)
        if a["bias"]:
            out[p + "attn.c_proj.bias"] = (C,)
        if a["skip_learned"]:
            out[p + "attn_skip"] = (C,)
        if m["pre_norm"]:
            norm(p + "ln_2")
        if m["out_norm"]:
            norm(p + "ln_2_out")
        if m["post_norm"]:
            norm(p + "ln_2_post")
        out[p + "mlp.c_fc.weight"] = (C, 4 * C)
        out[p + "mlp.c_proj.weight"] = (4 * C, C)
        if m["bias"]:
            out[p + "mlp.c_fc.bias"] = (4 * C,)
            out[p + "mlp.c_proj.bias"] = (C,)
        if m["skip_learned"]:
            out[p + "mlp_skip"] = (C,)
        if a["gate"] or m["gate"]:
            out[p + "gate"] = (1,)
    if cfg.final_norm:
        norm("ln_f")
    return out


def check_params(cfg, tensors, what="model"):
    """Fails loudly (ConfigError) on a missing, unused or misshapen parameter."""
    want = param_shapes(cfg)
    missing = [k for k in want if k not in tensors]
    unused = [k for k in tensors if k not in want]
    probs = []
    if missing:
        probs.append(f"{what}: tensors the spec needs but the file lacks: {missing}")
    if unused:
        probs.append(f"{what}: tensors the reference does not use: {unused}")
    for k, shp in want.items():
        if k in tensors and tuple(tensors[k].shape) != tuple(shp):
            probs.append(f"{what}: {k} has shape {tuple(tensors[k].shape)}, expected {tuple(shp)}")
        if k in tensors and tensors[k].dtype != np.float32:
            probs.append(f"{what}: {k} has dtype {tensors[k].dtype}, expected float32")
    if probs:
        raise ConfigError("; ".join(probs))


# ---------------------------------------------------------------------------------------------
# The model, from the equations.


def _norm(x, w, b, kind, eps, a=None, s=None, one_plus=False):
    """LayerNorm: (x - mean) / sqrt(var + eps) * w + b, var biased; RMSNorm: x / sqrt(mean(x^2) + eps) * w;
    DyT: tanh(a x) * w + b (Zhu et al. 2025); Derf: erf(a x + s) * w + b (Chen et al. 2025).
    w None = no gain (N0 of BranchNorm); one_plus: the gain is 1 + w (Gemma)."""
    if kind == "dyt":
        y = torch.tanh(a * x)
    elif kind == "derf":
        y = torch.erf(a * x + s)
    elif kind == "layernorm":
        mu = x.mean(dim=-1, keepdim=True)
        d = x - mu
        var = (d * d).mean(dim=-1, keepdim=True)
        y = d / torch.sqrt(var + eps)
    else:
        ms = (x * x).mean(dim=-1, keepdim=True)
        y = x / torch.sqrt(ms + eps)
    if w is not None:
        y = y * (1.0 + w if one_plus else w)
    if b is not None:
        y = y + b
    return y


def _gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


class Model:
    """z_loss: the z-loss coefficient (Wortsman et al. 2023): forward leaves in self.z_term the term
    z_loss * mean over tokens of (log Z)^2, Z = sum_v exp(logit_v), which the training objective
    adds to the cross-entropy that forward returns."""

    def __init__(self, cfg, z_loss=0.0):
        self.cfg = cfg
        self.z_loss = float(z_loss)

    def N(self, P, prefix, x):
        return _norm(x, P[prefix + ".weight"], P.get(prefix + ".bias"), self.cfg.norm, self.cfg.eps,
                     P.get(prefix + ".alpha"), P.get(prefix + ".shift"), self.cfg.norm_gain == "one-plus")

    @staticmethod
    def linear(P, prefix, u):
        """u W + b; a layer without biases (spec field bias off) has no .bias tensor."""
        y = u @ P[prefix + ".weight"]
        return y + P[prefix + ".bias"] if prefix + ".bias" in P else y

    def attention(self, P, i, u):
        cfg = self.cfg
        B, T, C = u.shape
        H, hs = cfg.n_head, cfg.head_size
        p = f"h.{i}.attn."
        qkv = self.linear(P, p + "c_attn", u)
        q, k, v = qkv.split(C, dim=-1)
        qk_norm = cfg.layers[i]["attn"]["qk_norm"]
        if qk_norm == "full":  # OLMo 2: over all C channels, before the split into heads
            q, k = self.N(P, p + "q_norm", q), self.N(P, p + "k_norm", k)
        q, k, v = (t.reshape(B, T, H, hs) for t in (q, k, v))
        if cfg.layers[i]["attn"]["qkv_norm"]:
            q, k, v = self.N(P, p + "q_norm", q), self.N(P, p + "k_norm", k), self.N(P, p + "v_norm", v)
        if qk_norm == "head":  # Gemma 3: each head's q and k over d_h; v as it is
            q, k = self.N(P, p + "q_norm", q), self.N(P, p + "k_norm", k)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, hs)
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hs))
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        # the largest logit over b, h, t and the allowed keys t2 <= t (early-warning figure), before
        # any softcap
        self.attn_logit_max.append(float(s.detach().masked_fill(mask, float("-inf")).max()))
        if cfg.attn_softcap > 0:  # Gemma 2: S tanh(s / S) on the scaled scores, before the mask
            s = cfg.attn_softcap * torch.tanh(s / cfg.attn_softcap)
        s = s.masked_fill(mask, float("-inf"))
        s = s - s.max(dim=-1, keepdim=True).values.detach()
        e = torch.exp(s)
        a = e / e.sum(dim=-1, keepdim=True)
        y = (a @ v).transpose(1, 2).reshape(B, T, C)
        return self.linear(P, p + "c_proj", y)

    def mlp(self, P, i, u):
        p = f"h.{i}.mlp."
        return self.linear(P, p + "c_proj", _gelu(self.linear(P, p + "c_fc", u)))

    def forward(self, P, tokens, lam=0.0):
        """tokens (B, T+1) long. Returns (loss, logits, streams): the mean cross-entropy, the logits
        (after the softcap S tanh(z / S) when logit_softcap S > 0, Gemma 2) and streams[l] the
        residual stream leaving block l (streams[0]: after the embedding and its norm). Leaves in
        self.attn_logit_max each block's largest attention logit and in self.z_term the z-loss term."""
        cfg = self.cfg
        self.attn_logit_max = []
        inp, tgt = tokens[:, :-1], tokens[:, 1:]
        B, T = inp.shape
        C = cfg.n_embd
        x = P["wte.weight"][inp] + P["wpe.weight"][:T]
        if cfg.embed_scale:
            x = x * math.sqrt(C)
        if cfg.embed_scale_learned:
            x = x * P["embed_scale"]
        if cfg.embed_norm:
            x = self.N(P, "ln_e", x)
        streams = [x]
        for i in range(cfg.n_layer):
            xin = x
            h = x
            for s, ln in (("attn", "ln_1"), ("mlp", "ln_2")):
                sp = cfg.layers[i][s]
                pre = f"h.{i}.{ln}"
                u = self.N(P, pre, h) * sp["in_scale"] if sp["pre_norm"] else h
                f = self.attention(P, i, u) if s == "attn" else self.mlp(P, i, u)
                if sp["out_norm"]:
                    f = self.N(P, pre + "_out", f)
                if sp["branch_norm"]:
                    f = (1.0 - lam) * f + lam * _norm(f, None, None, cfg.norm, cfg.eps)
                res = u if sp["res_from_normed"] else h
                skip = sp["skip_scale"] * P[f"h.{i}.{s}_skip"] if sp["skip_learned"] else sp["skip_scale"]
                g = P[f"h.{i}.gate"] if sp["gate"] else 1.0
                r = skip * res + sp["dt"] * g * f
                if sp["b2t"] and s == "mlp":
                    r = r + xin
                h = self.N(P, pre + "_post", r) if sp["post_norm"] else r
            x = h
            streams.append(x)
        if cfg.final_norm:
            x = self.N(P, "ln_f", x)
        logits = x @ P["wte.weight"].t()
        S = cfg.logit_softcap
        if S > 0:
            logits = S * torch.tanh(logits / S)
        flat = logits.reshape(B * T, -1)
        m = flat.max(dim=-1, keepdim=True).values.detach()
        lse = (m + torch.log(torch.exp(flat - m).sum(dim=-1, keepdim=True))).squeeze(-1)
        picked = flat.gather(1, tgt.reshape(-1, 1)).squeeze(1)
        loss = (lse - picked).mean()
        self.z_term = self.z_loss * (lse * lse).mean()
        return loss, logits, streams


def to_torch(params, dtype):
    return {k: torch.tensor(np.asarray(v), dtype=dtype, requires_grad=True) for k, v in params.items()}


def loss_and_grads(model, P, tokens, lam):
    """The cross-entropy, logits, streams, and the gradients of the training objective: the
    cross-entropy plus the z-loss term (model.z_term)."""
    loss, logits, streams = model.forward(P, tokens, lam)
    names = list(P)
    gr = torch.autograd.grad(loss + model.z_term, [P[k] for k in names])
    return loss, logits, streams, dict(zip(names, gr))


def logit_figures(logits):
    """(logit_max, log_z_mean) of logits (..., V): the largest logit, and the mean over rows of
    log sum_v exp(z_v) (docs/USAGE.md, early-warning figures)."""
    z = logits.detach().reshape(-1, logits.shape[-1]).to(torch.float64)
    m = z.max(dim=-1, keepdim=True).values
    lse = m.squeeze(-1) + torch.log(torch.exp(z - m).sum(dim=-1))
    return float(z.max()), float(lse.mean())


def probes(cfg, streams, grads, logits=None, attn_logit_max=None):
    """The probe figures (L+1,) each, as the DESIGN.md probe interface defines them; with logits
    and the blocks' attention maxima also attn_logit_max (L,), logit_max and log_z_mean (1,)."""
    L = cfg.n_layer
    out = {k: torch.zeros(L + 1, dtype=torch.float64) for k in
           ("hidden_mean_abs", "hidden_var", "hidden_var_data", "grad_norm")}
    for l, x in enumerate(streams):
        x = x.detach().to(torch.float64).reshape(-1, cfg.n_embd)  # (B*T, C)
        out["hidden_mean_abs"][l] = x.abs().mean()
        out["hidden_var"][l] = ((x - x.mean(1, keepdim=True)) ** 2).mean(1).mean()
        out["hidden_var_data"][l] = ((x - x.mean(0, keepdim=True)) ** 2).mean(0).mean()
    for l in range(1, L + 1):
        pre = f"h.{l - 1}."
        ss = sum(float((g.detach().to(torch.float64) ** 2).sum()) for k, g in grads.items() if k.startswith(pre))
        out["grad_norm"][l] = math.sqrt(ss)
    if attn_logit_max is not None:
        out["attn_logit_max"] = torch.tensor(attn_logit_max, dtype=torch.float64)
    if logits is not None:
        lmax, lz = logit_figures(logits)
        out["logit_max"] = torch.tensor([lmax], dtype=torch.float64)
        out["log_z_mean"] = torch.tensor([lz], dtype=torch.float64)
    return out


def adamw(model, P, tokens, lam, hp, decay, steps=5):
    """Hand-written AdamW with global-norm clipping first. Returns (losses (steps+1), params).
    losses[k] is the loss at the parameters after k steps."""
    names = list(P)
    unknown = [d for d in decay if d not in P]
    if unknown:
        raise ConfigError(f"adamw decay list names unknown params: {unknown}")
    P = {k: v.detach().clone().requires_grad_(True) for k, v in P.items()}
    mom = {k: torch.zeros_like(v) for k, v in P.items()}
    vel = {k: torch.zeros_like(v) for k, v in P.items()}
    b1, b2, lr, eps, wd, clip = (float(hp[k]) for k in ("beta1", "beta2", "lr", "eps", "weight_decay", "grad_clip"))
    losses = []
    for t in range(1, steps + 2):
        loss, _, _, grads = loss_and_grads(model, P, tokens, lam)
        losses.append(float(loss))
        if t == steps + 1:
            break
        gnorm = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))
        sc = clip / gnorm if clip > 0 and gnorm > clip else 1.0
        with torch.no_grad():
            for k in names:
                g = grads[k] * sc
                mom[k] = b1 * mom[k] + (1 - b1) * g
                vel[k] = b2 * vel[k] + (1 - b2) * g * g
                mhat = mom[k] / (1 - b1 ** t)
                vhat = vel[k] / (1 - b2 ** t)
                wdp = wd if k in decay else 0.0
                P[k] -= lr * (mhat / (torch.sqrt(vhat) + eps) + wdp * P[k])
    return losses, {k: v.detach() for k, v in P.items()}


def run_reference(cfg, params, tokens, lam, hp, decay, dtype=torch.float64, z_loss=0.0):
    """Everything the dump holds, computed by the reference in `dtype` with z-loss coefficient
    z_loss. Values are numpy arrays named as in the dump."""
    model = Model(cfg, z_loss)
    P = to_torch(params, dtype)
    tok = torch.tensor(np.asarray(tokens), dtype=torch.long)
    loss, logits, streams, grads = loss_and_grads(model, P, tok, lam)
    out = {"logits": logits.detach().numpy(), "loss": np.array([float(loss)]),
           "z_loss": np.array([float(model.z_term)])}
    for k, g in grads.items():
        out["grad." + k] = g.numpy()
    for k, v in probes(cfg, streams, grads, logits, model.attn_logit_max).items():
        out["probe." + k] = v.numpy()
    losses, final = adamw(model, P, tok, lam, hp, decay)
    out["adamw.losses"] = np.array(losses)
    for k, v in final.items():
        out["adamw.final." + k] = v.numpy()
    return out


# ---------------------------------------------------------------------------------------------
# Comparison


def compare(name, c, ref, atol=1e-4, rtol=1e-4, extra=None):
    """Compares a C result with the reference: element j fails where
    |c - ref| > atol + rtol * |ref| (+ extra[j] if given), or where c is NaN/Inf. Returns a
    dict: ok, name, worst (err/bound at the worst element), abs_err, rel_err, index, c, ref, msg."""
    c = np.asarray(c)
    ref = np.asarray(ref, dtype=np.float64)
    if c.shape != ref.shape:
        return dict(ok=False, name=name, worst=math.inf, msg=f"{name}: shape {c.shape} != reference {ref.shape}")
    if c.size == 0:
        return dict(ok=True, name=name, worst=0.0, abs_err=0.0, rel_err=0.0, index=(), c=0.0, ref=0.0, msg="")
    c64 = c.astype(np.float64)
    bad = ~np.isfinite(c64)
    if bad.any():
        idx = np.unravel_index(int(np.argmax(bad)), c.shape)
        return dict(ok=False, name=name, worst=math.inf,
                    msg=f"{name}: non-finite value {c64[idx]} at index {tuple(int(i) for i in idx)}")
    if not np.isfinite(ref).all():
        idx = np.unravel_index(int(np.argmax(~np.isfinite(ref))), ref.shape)
        return dict(ok=False, name=name, worst=math.inf,
                    msg=f"{name}: the reference is non-finite ({ref[idx]}) at index {tuple(int(i) for i in idx)}")
    err = np.abs(c64 - ref)
    bound = atol + rtol * np.abs(ref)
    if extra is not None:
        bound = bound + np.broadcast_to(np.asarray(extra, dtype=np.float64), bound.shape)
    ratio = err / bound
    flat = int(np.argmax(ratio))
    idx = tuple(int(i) for i in np.unravel_index(flat, c.shape))
    w = float(ratio.reshape(-1)[flat])
    e = float(err.reshape(-1)[flat])
    r = float(ref.reshape(-1)[flat])
    rel = float(np.max(err / np.maximum(np.abs(ref), 1e-30)))
    ok = w <= 1.0
    msg = (f"{name} worst err {e:.3g} (c {float(c64.reshape(-1)[flat]):.9g}, ref {r:.9g}, "
           f"bound {float(bound.reshape(-1)[flat]):.3g}, err/bound {w:.3g}) at index {idx}")
    return dict(ok=ok, name=name, worst=w, abs_err=e, rel_err=rel, index=idx, c=float(c64.reshape(-1)[flat]),
                ref=r, msg=msg, maxref=float(np.max(np.abs(ref))))


def zero_grad_mask(cfg, name):
    """Elements of parameter `name` whose gradient is zero in exact arithmetic, by the shift
    invariance of softmax: adding a vector b to every key adds q.b to every score of a query,
    which softmax ignores. That is the key block of c_attn.bias (columns C..2C-1) when the
    keys are not normalized, and k_norm.bias (LayerNorm qkv_norm or qk_norm); a softcap bends the
    scores, which breaks the symmetry. Returns a bool array or None.

    For these elements AdamW's step m/(sqrt(v)+eps) divides float rounding noise by its own
    size, so any float32 implementation moves them by up to about lr per step in a direction set
    by its rounding; a float64 reference cannot predict that (see adam_step_bound)."""
    m = re.fullmatch(r"h\.(\d+)\.attn\.(c_attn\.bias|k_norm\.bias)", name)
    if not m:
        return None
    i, what = int(m.group(1)), m.group(2)
    C = cfg.n_embd
    a = cfg.layers[i]["attn"]
    if cfg.attn_softcap > 0:
        return None
    if what == "k_norm.bias":
        return np.ones(C if a["qk_norm"] == "full" else cfg.head_size, dtype=bool)
    if a["qkv_norm"] or a["qk_norm"] != "off":
        return None
    mask = np.zeros(3 * C, dtype=bool)
    mask[C : 2 * C] = True
    return mask


def adam_step_bound(hp, steps, p_abs):
    """The most |p_final - p_0| that `steps` AdamW steps can move a parameter of size <= p_abs,
    whatever its gradients: by Cauchy-Schwarz |mhat_t / sqrt(vhat_t)| <= A_t with
    A_t = sqrt(sum_k w_k^2 / u_k) * sqrt(1 - b2^t) / (1 - b1^t), w_k = (1-b1) b1^(t-k),
    u_k = (1-b2) b2^(t-k)."""
    b1, b2, lr, wd = (float(hp[k]) for k in ("beta1", "beta2", "lr", "weight_decay"))
    tot = 0.0
    for t in range(1, steps + 1):
        s = sum(((1 - b1) * b1 ** j) ** 2 / ((1 - b2) * b2 ** j) for j in range(t))
        tot += lr * (math.sqrt(s) * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) + wd * p_abs)
    return tot


# ---------------------------------------------------------------------------------------------
# A fake refdump made with this reference (to test the test before the C side exists).

FAKE_ADAMW = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1, "grad_clip": 1.0}


def fake_params(cfg, seed):
    rng = np.random.default_rng(seed)
    out = {}
    for k, shp in param_shapes(cfg).items():
        if k.endswith(".alpha"):
            v = 0.7 + 0.2 * rng.standard_normal(shp)
        elif k.endswith(".shift"):
            v = 0.1 * rng.standard_normal(shp)
        elif k == "embed_scale":
            v = 2.0 + 0.2 * rng.standard_normal(shp)
        elif k.endswith("_skip"):
            v = 1.0 + 0.2 * rng.standard_normal(shp)
        elif k.endswith(".gate"):
            v = 0.5 + 0.2 * rng.standard_normal(shp)
        elif ("ln_" in k or "_norm." in k) and k.endswith(".weight"):
            v = 1.0 + 0.2 * rng.standard_normal(shp)
        elif k.endswith(".bias"):
            v = 0.1 * rng.standard_normal(shp)
        else:
            v = 0.1 * rng.standard_normal(shp)
        out[k] = v.astype(np.float32)
    return out


def make_fake_dump(outdir, preset, norm, dt, L, H, C, T, V, B, seed, embed_norm=False, embed_scale=False,
                   spec_edit=None, lam=0.3, dtype=torch.float32, bias=None, attn_softcap=0.0, qk_norm="off",
                   logit_softcap=0.0, z_loss=0.0):
    """Writes outdir/model.safetensors and outdir/dump.safetensors like refdump would, with the
    values computed by this reference in `dtype` (float32 imitates the C side). spec_edit, if
    given, is a function(cfg) that edits the config (stands in for --spec); bias, if not None,
    sets every sub-layer's linear biases (stands in for --bias); attn_softcap and qk_norm (every
    layer's attention) stand in for --attn-softcap and --qk-norm, logit_softcap and z_loss for
    --logit-softcap and --z-loss."""
    layers, final = preset_layers(preset, L, dt=dt)
    if bias is not None:
        for lay in layers:
            for s in SUBS:
                lay[s]["bias"] = bias
    for lay in layers:
        lay["attn"]["qk_norm"] = qk_norm
    cfg = Config(format="lnlab.config", version=1, n_layer=L, n_head=H, n_embd=C, n_positions=max(T, 16),
                 vocab_size=V, norm=norm, norm_gain="plain", eps=_f32(1e-5), dt=_f32(dt), final_norm=final,
                 embed_scale_learned=False, logit_softcap=_f32(logit_softcap),
                 embed_norm=embed_norm, embed_scale=embed_scale, preset=preset,
                 init={"std": _f32(0.02), "resid_scale": True, "beta": 1.0, "admin_profile": preset == "admin"},
                 branchnorm_steps=1000, mix_ratio=0.25, layers=layers, attn_softcap=_f32(attn_softcap))
    if spec_edit:
        spec_edit(cfg)
        cfg.preset = "custom"
    cfg = parse_config(cfg.to_json())  # round trip: the fake must satisfy the strict parser
    params = fake_params(cfg, seed)
    rng = np.random.default_rng(seed + 1)
    tokens = rng.integers(0, V, size=(B, T + 1)).astype(np.int32)
    decay = [k for k in params if k.endswith(".weight") and params[k].ndim == 2]
    z_loss = _f32(z_loss)
    out = run_reference(cfg, params, tokens, lam, FAKE_ADAMW, set(decay), dtype=dtype, z_loss=z_loss)
    os.makedirs(outdir, exist_ok=True)
    save_safetensors(os.path.join(outdir, "model.safetensors"), params, {"lnlab.config": cfg.to_json()})
    dump = {"tokens": tokens}
    dump.update({k: np.asarray(v, dtype=np.float32) for k, v in out.items()})
    meta = {"branchnorm_lambda": lam, "z_loss": z_loss, "adamw": FAKE_ADAMW, "decay": decay}
    save_safetensors(os.path.join(outdir, "dump.safetensors"), dump, {"lnlab.refdump": json.dumps(meta)})
