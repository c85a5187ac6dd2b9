"""Compares the C model (through build/tests/tools/refdump) with the independent PyTorch
reference in lnlab_ref.py: logits, loss, every parameter gradient, the probe figures, the
losses of 5 AdamW steps and the parameters after them, for every preset x norm x dt and a
few compositions. See README.md in this folder.

Prints "ok reference_<case>" or "FAIL reference_<case>: <why>" per case; exits 1 on any failure.

Options (for people; tests/run passes none):
  -v             print the worst error of every tensor of every case
  -k SUBSTR      only the cases whose name contains SUBSTR
  --fake         no C: compare float32 dumps made by this reference with its float64 run
                 (tests the test itself)
  --keep DIR     keep the dumps under DIR
  --refdump PATH the tool (default $LNLAB_TEST_DIR/tools/refdump, LNLAB_TEST_DIR=build/tests)
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lnlab_ref as R  # noqa: E402

ATOL = 1e-4
RTOL = 1e-4

PRESETS = ("post", "pre", "peri", "b2t", "mix", "lns", "hybrid", "hybrid*", "deepnorm", "admin",
           "branchnorm", "rezero", "olmo2", "gemma2")
NORMS = ("layernorm", "rmsnorm")
DYNAMIC_NORMS = ("dyt", "derf")  # every preset but BranchNorm, whose N0 needs a normalizing kind
# The logit softcap with DyT and Derf, whose tiny models' logits are smaller than LayerNorm's: a cap
# those logits reach half of, so that tanh's bend is exercised
DYNAMIC_COMPOSITIONS = (
    ("pre+softcap", "pre", ["--init-std", "0.3", "--logit-softcap", "0.3"], None),
    ("peri+softcap+zloss", "peri", ["--init-std", "0.3", "--logit-softcap", "0.3", "--z-loss", "0.1"],
     "mlp.dt=0.5@3-4"),
)
DTS = ("1", "0.1")
SIZE = dict(L=4, H=2, C=16, T=8, V=50, B=2)  # L 4: Mix-LN (ratio 0.25) has one Post-LN layer

# Compositions: (name, preset, extra flags, --spec string or None)
COMPOSITIONS = (
    ("pre+embed", "pre", ["--embed-norm", "--embed-scale"], None),
    ("pre+nobias", "pre", ["--bias", "off"], None),
    ("peri+nobias", "peri", ["--bias", "off", "--embed-norm=false"], None),
    ("post+somebias", "post", ["--embed-scale=false"], "attn.bias=0@2-3,mlp.bias@4=0"),
    ("peri+attnpost2", "peri", [], "attn.post_norm=1@2-2"),
    ("pre+mixed", "pre", [], "gate=1@1-2,attn.skip_learned=1,mlp.skip_scale=0.7,mlp.branch_norm=1@3-4,"
                             "attn.in_scale=0.5,mlp.out_norm=1@4-4"),
    ("hybrid+b2t", "hybrid", ["--embed-norm"], "mlp.b2t=1,mlp.post_norm=1@1-2,final_norm=0"),
    ("pre+subdt", "pre", [], "attn.dt=0.5,mlp.dt=0.25@2-4"),
    ("post+subdt", "post", [], "dt=0.7,mlp.dt=0.2@3"),
    ("rezero+subdt", "rezero", [], "attn.dt=2@1-2"),
    ("peri+oneplus", "peri", ["--norm-gain", "one-plus"], None),
    ("hybrid+oneplus", "hybrid", ["--norm-gain", "one-plus", "--embed-norm"], None),
    ("pre+embedscalelearned", "pre", ["--embed-scale-learned"], None),
    ("post+oneplus+embedscalelearned", "post", ["--norm-gain", "one-plus", "--embed-scale-learned",
                                                "--embed-scale=false"], None),
    ("pre+attnsoftcap", "pre", ["--init-std", "0.2", "--attn-softcap", "1"], None),
    ("pre+qknormhead", "pre", ["--qk-norm", "head"], None),
    ("pre+qknormfull", "pre", ["--qk-norm", "full"], None),
    ("peri+softcap+qknorm", "peri", ["--attn-softcap", "1.5", "--qk-norm", "full"], None),
    # the final logit softcap (a model field) and the z-loss (a training setting, refdump --z-loss);
    # a cap near these small models' largest logits (~0.2-0.35; Gemma 2: 30) and a coefficient far above
    # OLMo 2's 1e-5, so that both matter here
    ("pre+softcap", "pre", ["--logit-softcap", "0.3"], None),
    ("post+zloss", "post", ["--z-loss", "0.05"], None),
    ("peri+softcap+zloss", "peri", ["--logit-softcap", "0.2", "--z-loss", "0.1"], "mlp.dt=0.5@3-4"),
)


def case_list():
    cases = []
    for p in PRESETS:
        for n in NORMS:
            for dt in DTS:
                tag = p.replace("*", "star")
                cases.append(dict(name=f"reference_{tag}_{n}_dt{dt}", preset=p, norm=n, dt=dt, flags=[], spec=None))
    for p in PRESETS:
        if p == "branchnorm":
            continue
        for n in DYNAMIC_NORMS:
            for dt in DTS:
                tag = p.replace("*", "star")
                cases.append(dict(name=f"reference_{tag}_{n}_dt{dt}", preset=p, norm=n, dt=dt, flags=[], spec=None))
    for tag, p, flags, spec in COMPOSITIONS:
        # the elementwise norms too, except with BranchNorm (no N0 for them) and the logit softcaps
        # sized for LayerNorm's logits (DYNAMIC_COMPOSITIONS has their own)
        dyn = not (spec and "branch_norm" in spec) and "--logit-softcap" not in flags
        for n in NORMS + (DYNAMIC_NORMS if dyn else ()):
            for dt in DTS:
                cases.append(dict(name=f"reference_{tag}_{n}_dt{dt}", preset=p, norm=n, dt=dt, flags=flags, spec=spec))
    for tag, p, flags, spec in DYNAMIC_COMPOSITIONS:
        for n in DYNAMIC_NORMS:
            for dt in DTS:
                cases.append(dict(name=f"reference_{tag}_{n}_dt{dt}", preset=p, norm=n, dt=dt, flags=flags, spec=spec))
    for i, c in enumerate(cases):
        c["seed"] = 1000 + 17 * i
        c["index"] = i
    return cases


# ---- the expected config of a case (DESIGN table + --spec overrides), for a cross-check ----


def apply_spec(layers, top, spec, L):
    """Applies "KEY=VALUE[,...]", KEY = [attn.|mlp.]field or a top-level field; a layer range
    @A[-B] may follow the key (field@2-3=1) or the value (field=1@2-3)."""
    for item in spec.split(","):
        key, val = item.split("=", 1)
        lo, hi = 1, L
        if "@" in key and "@" in val:
            raise ValueError(f"apply_spec: two layer ranges in {item}")
        if "@" in val:
            val, rng = val.split("@", 1)
            key = key + "@" + rng
        if "@" in key:
            key, rng = key.split("@", 1)
            a, _, b = rng.partition("-")
            lo, hi = int(a), int(b or a)
        subs = R.SUBS
        if key.startswith("attn."):
            subs, key = ("attn",), key[5:]
        elif key.startswith("mlp."):
            subs, key = ("mlp",), key[4:]
        model_dt = key == "dt" and subs == R.SUBS and "@" not in item  # the model's dt and every sub-layer's
        if key in R.SUB_ENUM:
            for l in range(lo, hi + 1):
                for s in subs:
                    layers[l - 1][s][key] = val
        elif (key in R.SUB_BOOL or key in R.SUB_FLOAT) and not model_dt:
            for l in range(lo, hi + 1):
                for s in subs:
                    layers[l - 1][s][key] = (val in ("1", "true", "on")) if key in R.SUB_BOOL else R._f32(float(val))
        elif key in ("final_norm", "embed_norm", "embed_scale"):
            top[key] = val in ("1", "true", "on")
        elif key == "dt":  # the model's dt and every sub-layer's
            top[key] = R._f32(float(val))
            for lay in layers:
                for s in R.SUBS:
                    lay[s]["dt"] = top[key]
        elif key == "eps":
            top[key] = R._f32(float(val))
        else:
            raise ValueError(f"apply_spec: unknown key {key}")


def flag_extras(case):
    """dict(bias, embed_norm, embed_scale, attn_softcap, qk_norm, logit_softcap, z_loss, ...): the
    preset's defaults (docs/PLACEMENTS.md; no softcaps, no QK-norm, no z-loss), then the case's
    flags: --embed-norm[=true|false], --embed-scale[=true|false], --bias on|off, --attn-softcap S,
    --qk-norm off|head|full, --logit-softcap S, --z-loss COEF, --norm-gain, --embed-scale-learned."""
    x = R.preset_extras(case["preset"])
    x.update(R.preset_model(case["preset"]), z_loss=0.0)
    flags = case["flags"]
    for i, f in enumerate(flags):
        name, _, val = f.partition("=")
        if name in ("--embed-norm", "--embed-scale", "--embed-scale-learned"):
            x[name[2:].replace("-", "_")] = val in ("", "true", "1")
        elif name == "--norm-gain":
            x["norm_gain"] = flags[i + 1]
        elif name == "--bias":
            x["bias"] = flags[i + 1] == "on"
        elif name == "--attn-softcap":
            x["attn_softcap"] = R._f32(float(flags[i + 1]))
        elif name == "--qk-norm":
            x["qk_norm"] = flags[i + 1]
        elif name in ("--logit-softcap", "--z-loss"):
            x[name[2:].replace("-", "_")] = R._f32(float(flags[i + 1]))
    return x


def expected_config(case, mix_ratio=0.25):
    L = SIZE["L"]
    layers, final = R.preset_layers(case["preset"], L, mix_ratio, dt=float(case["dt"]))
    x = flag_extras(case)
    for lay in layers:
        for s in R.SUBS:
            lay[s]["bias"] = x["bias"]
        lay["attn"]["qk_norm"] = x["qk_norm"]
    top = dict(n_layer=L, n_head=SIZE["H"], n_embd=SIZE["C"], vocab_size=SIZE["V"], norm=case["norm"],
               dt=R._f32(float(case["dt"])), eps=R._f32(x["eps"]), final_norm=final,
               embed_norm=x["embed_norm"], embed_scale=x["embed_scale"], attn_softcap=x["attn_softcap"],
               embed_scale_learned=x.get("embed_scale_learned", False), norm_gain=x["norm_gain"],
               logit_softcap=x["logit_softcap"])
    if case["spec"]:
        apply_spec(layers, top, case["spec"], L)
    return layers, top


def check_config(cfg, case):
    layers, top = expected_config(case, cfg.mix_ratio if cfg.mix_ratio is not None else 0.25)
    probs = []
    for k, v in top.items():
        got = getattr(cfg, k)
        if isinstance(v, float):
            if abs(got - v) > 1e-7 * max(1.0, abs(v)):
                probs.append(f"{k} = {got}, expected {v}")
        elif got != v:
            probs.append(f"{k} = {got}, expected {v}")
    if cfg.n_positions < SIZE["T"]:
        probs.append(f"n_positions {cfg.n_positions} < seq {SIZE['T']}")
    for i in range(cfg.n_layer):
        for s in R.SUBS:
            for k in R.SUB_BOOL + R.SUB_FLOAT + tuple(R.SUB_ENUM):
                a, b = cfg.layers[i][s][k], layers[i][s][k]
                if (abs(a - b) > 1e-6 * max(1.0, abs(b))) if k in R.SUB_FLOAT else a != b:
                    probs.append(f"layer {i + 1} {s}.{k} = {a}, expected {b}")
    return probs


# ---- one case ----


def make_dump(case, refdump, outdir, fake):
    if fake:
        def edit(cfg):
            top = {}
            apply_spec(cfg.layers, top, case["spec"], cfg.n_layer)
            for k, v in top.items():
                setattr(cfg, k, v)
        x = flag_extras(case)
        R.make_fake_dump(outdir, case["preset"], case["norm"], float(case["dt"]), SIZE["L"], SIZE["H"], SIZE["C"],
                         SIZE["T"], SIZE["V"], SIZE["B"], case["seed"], embed_norm=x["embed_norm"],
                         embed_scale=x["embed_scale"], spec_edit=edit if case["spec"] else None, bias=x["bias"],
                         attn_softcap=x["attn_softcap"], qk_norm=x["qk_norm"], logit_softcap=x["logit_softcap"],
                         z_loss=x["z_loss"])
        return None
    cmd = [refdump, "--preset", case["preset"], "--norm", case["norm"], "--dt", case["dt"],
           "--layers", str(SIZE["L"]), "--heads", str(SIZE["H"]), "--dim", str(SIZE["C"]), "--seq", str(SIZE["T"]),
           "--vocab", str(SIZE["V"]), "--batch", str(SIZE["B"]), "--seed", str(case["seed"])] + case["flags"]
    if case["spec"]:
        cmd += ["--spec", case["spec"]]
    cmd += ["--out", outdir]
    env = dict(os.environ)
    if "OMP_NUM_THREADS" not in env:
        # OpenMP threads on a model this small mostly wait on each other (ten times slower on a
        # busy machine); every 4th case still runs with 2 threads to cover the threaded paths.
        env["OMP_NUM_THREADS"] = "2" if case["index"] % 4 == 0 else "1"
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired:
        return "refdump timed out: " + " ".join(cmd)
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        return f"refdump exited {p.returncode}: {' | '.join(tail)} (command: {' '.join(cmd)})"
    return None


def load_case(outdir):
    model, mmeta = R.load_safetensors(os.path.join(outdir, "model.safetensors"))
    dump, dmeta = R.load_safetensors(os.path.join(outdir, "dump.safetensors"))
    if "lnlab.config" not in mmeta:
        raise R.ConfigError("model.safetensors has no __metadata__['lnlab.config']")
    if "lnlab.refdump" not in dmeta:
        raise R.ConfigError("dump.safetensors has no __metadata__['lnlab.refdump']")
    cfg = R.parse_config(mmeta["lnlab.config"])
    rd = json.loads(dmeta["lnlab.refdump"])
    for k in ("branchnorm_lambda", "z_loss", "adamw", "decay"):
        if k not in rd:
            raise R.ConfigError(f"lnlab.refdump metadata lacks '{k}'")
    for k in ("lr", "beta1", "beta2", "eps", "weight_decay", "grad_clip"):
        if k not in rd["adamw"]:
            raise R.ConfigError(f"lnlab.refdump adamw lacks '{k}'")
    return cfg, model, dump, rd


def expected_dump_keys(params):
    keys = {"tokens", "logits", "loss", "z_loss", "adamw.losses"}
    keys |= {"probe." + k for k in ("hidden_mean_abs", "hidden_var", "hidden_var_data", "grad_norm",
                                    "attn_logit_max", "logit_max", "log_z_mean")}
    keys |= {"grad." + k for k in params} | {"adamw.final." + k for k in params}
    return keys


def compare_case(cfg, model, dump, rd, case, verbose):
    """Returns (problems, results, ref) where results is the list of compare() dicts."""
    R.check_params(cfg, model, "model.safetensors")
    want = expected_dump_keys(model)
    missing = sorted(want - set(dump))
    extra = sorted(set(dump) - want)
    if missing or extra:
        raise R.ConfigError(f"dump.safetensors: missing {missing}, unexpected {extra}")
    tok = dump["tokens"]
    B, T, V = SIZE["B"], SIZE["T"], cfg.vocab_size
    if tok.dtype != np.int32 or tok.shape != (B, T + 1) or tok.min() < 0 or tok.max() >= V:
        raise R.ConfigError(f"tokens: dtype {tok.dtype} shape {tok.shape} range [{tok.min()}, {tok.max()}]; "
                            f"expected int32 ({B}, {T + 1}) in [0, {V})")
    for k, v in dump.items():
        if k != "tokens" and v.dtype != np.float32:
            raise R.ConfigError(f"dump: {k} has dtype {v.dtype}, expected float32")
    probs = [f"config: {p}" for p in check_config(cfg, case)]
    want_z = flag_extras(case)["z_loss"]
    if abs(float(rd["z_loss"]) - want_z) > 1e-7 * max(1.0, want_z):
        probs.append(f"refdump: z_loss coefficient {rd['z_loss']}, expected {want_z}")
    ref = R.run_reference(cfg, model, tok, float(rd["branchnorm_lambda"]), rd["adamw"], set(rd["decay"]),
                          z_loss=float(rd["z_loss"]))
    S = cfg.logit_softcap
    # a cap the case chose must bend its logits; a preset's (gemma2's 30) is far above these tiny
    # models' logits and is checked as it is, bend or not
    if "--logit-softcap" in case["flags"] and S > 0 and float(np.max(np.abs(ref["logits"]))) < 0.5 * S:
        probs.append(f"case: the logits stay below half the softcap {S}: tanh's bend is not exercised")
    order = ["logits", "loss", "z_loss"] + sorted(k for k in ref if k.startswith("grad.")) + \
        sorted(k for k in ref if k.startswith("probe.")) + ["adamw.losses"] + \
        sorted(k for k in ref if k.startswith("adamw.final."))
    results = []
    masked = 0
    for k in order:
        extra = None
        if k.startswith("adamw.final."):
            pname = k[len("adamw.final."):]
            mask = R.zero_grad_mask(cfg, pname)
            if mask is not None:
                g = np.abs(ref["grad." + pname])[mask]
                scale = max(float(np.max(np.abs(v))) for n, v in ref.items() if n.startswith("grad."))
                if g.max() > 1e-12 * scale:
                    probs.append(f"reference: {pname} has gradient {g.max():.3g} where it should be exactly 0")
                else:
                    p_abs = np.maximum(np.abs(model[pname]), np.abs(ref[k]))
                    extra = np.where(mask, R.adam_step_bound(rd["adamw"], 5, p_abs), 0.0)
                    masked += int(mask.sum())
        results.append(R.compare(k, dump[k], ref[k], ATOL, RTOL, extra))
    if verbose:
        print(f"  {case['name']}: lambda {rd['branchnorm_lambda']}, z-loss {rd['z_loss']}, softcap "
              f"{cfg.logit_softcap}, adamw {rd['adamw']}, {masked} zero-gradient "
              f"elements checked against the AdamW step bound only")
        for r in results:
            if "abs_err" in r:
                print(f"    {r['name']:<40} max|ref| {r['maxref']:9.3g}  worst abs {r['abs_err']:9.3g}  "
                      f"worst rel {r['rel_err']:9.3g}  err/bound {r['worst']:7.3g}")
            else:
                print(f"    {r['msg']}")
    return probs, results, ref


def comparator_selfcheck():
    """Unit checks of the comparator: equal (up to float32 rounding) passes; a 1e-3 relative
    change of one element of size >= 0.12 fails (1e-3 * r > 1e-4 + 1e-4 * r for r > 0.111);
    NaN and Inf fail; a shape change fails; a change of half the bound passes."""
    rng = np.random.default_rng(7)
    ref = rng.standard_normal((5, 7))
    c = ref.astype(np.float32)
    probs = []
    if not R.compare("same", c, ref)["ok"]:
        probs.append("identical arrays (up to float32 rounding) fail")
    i = np.unravel_index(np.argmax(np.abs(ref)), ref.shape)  # |ref| > 0.12 there
    bumped = c.copy()
    bumped[i] *= 1 + 1e-3
    r = R.compare("bumped", bumped, ref)
    if r["ok"] or tuple(r["index"]) != tuple(int(x) for x in i):
        probs.append("a 1e-3 relative error on one element passes or is reported at the wrong index")
    inside = c.astype(np.float64).copy()
    inside[i] += 0.5 * (ATOL + RTOL * abs(ref[i]))
    if not R.compare("inside", inside, ref)["ok"]:
        probs.append("an error of half the bound fails")
    for bad in (np.nan, np.inf):
        b = c.copy()
        b[0, 0] = bad
        if R.compare("bad", b, ref)["ok"]:
            probs.append(f"{bad} passes")
    if R.compare("shape", c[:, :6], ref)["ok"]:
        probs.append("a shape mismatch passes")
    return probs


def perturb_check(dump, ref):
    """On real data: bump the largest-magnitude gradient element by 1e-3 relative; the
    comparison of that tensor must then fail. Returns a problem string or None."""
    best = None
    for k in ref:
        if k.startswith("grad."):
            m = float(np.max(np.abs(ref[k])))
            if best is None or m > best[1]:
                best = (k, m)
    k, m = best
    if m < 0.12:  # 1e-3 * m must exceed 1e-4 + 1e-4 * m
        print(f"skip reference_comparator_realdata: the largest gradient is {m:.3g} < 0.12")
        return None
    c = dump[k].copy()
    j = np.unravel_index(int(np.argmax(np.abs(ref[k]))), c.shape)
    c[j] = np.float32(ref[k][j] * (1 + 1e-3))
    if R.compare(k, c, ref[k], ATOL, RTOL)["ok"]:
        return f"perturbing {k}{tuple(int(x) for x in j)} by 1e-3 relative was not detected"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("-k", dest="only", default="")
    ap.add_argument("--fake", action="store_true")
    ap.add_argument("--keep", default=None)
    ap.add_argument("--refdump", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)  # tiny tensors: one thread is several times faster than two
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    os.chdir(root)
    refdump = args.refdump or os.path.join(os.environ.get("LNLAB_TEST_DIR", "build/tests"), "tools", "refdump")
    failed = 0

    probs = comparator_selfcheck()
    if probs:
        print("FAIL reference_comparator_selfcheck: " + "; ".join(probs))
        failed += 1
    else:
        print("ok reference_comparator_selfcheck")

    if not args.fake and not os.access(refdump, os.X_OK):
        print("FAIL reference: refdump tool missing (build with make tests)")
        return 1

    tmp = args.keep or tempfile.mkdtemp(prefix="lnlab_ref_")
    perturbed = False
    t0 = time.time()
    try:
        for case in case_list():
            if args.only and args.only not in case["name"]:
                continue
            outdir = os.path.join(tmp, case["name"].replace("*", "star"))
            os.makedirs(outdir, exist_ok=True)
            try:
                err = make_dump(case, refdump, outdir, args.fake)
                if err:
                    raise R.ConfigError(err)
                cfg, model, dump, rd = load_case(outdir)
                probs, results, ref = compare_case(cfg, model, dump, rd, case, args.verbose)
            except (R.ConfigError, R.FormatError, OSError, ValueError, KeyError) as ex:
                print(f"FAIL {case['name']}: {ex}")
                failed += 1
                continue
            bad = [r for r in results if not r["ok"]]
            if not perturbed:
                p = perturb_check(dump, ref)
                if p:
                    probs.append("comparator: " + p)
                perturbed = True
            worst = max(results, key=lambda r: r["worst"])
            if bad or probs:
                failed += 1
                msgs = [r["msg"] for r in bad]  # in pipeline order: the first one is nearest the cause
                more = f" (+{len(msgs) - 3} more tensors)" if len(msgs) > 3 else ""
                print(f"FAIL {case['name']}: " + "; ".join(probs + msgs[:3]) + more)
            else:
                print(f"ok {case['name']} (worst err/bound {worst['worst']:.3g} in {worst['name']})")
            sys.stdout.flush()
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.verbose:
        print(f"  {time.time() - t0:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
