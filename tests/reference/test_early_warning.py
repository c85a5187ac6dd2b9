"""The early-warning figures (Wortsman et al. 2023) that `lnlab probe --json` and training's
diagnostics records report, against independent computations:

- attn_logit_max (per block), logit_max and log_z_mean of `lnlab probe --json` against the
  PyTorch float64 reference (lnlab_ref.py) on the probe's batch;
- the same three in the diagnostics record of training step 1 (--data-order sequential reads the
  probe's batch first, from the same model);
- update_rms (per block) and embed_update_rms of every step's record against the parameter change
  between the model files before and after that step (--init-from, checkpoints every step, the
  final model), read with numpy.

Models come from the refdump test tool, with the attention and embedding weights scaled up so the
logits are several units large, as where the signals matter. The data is one llm.c token shard.

Prints "ok early_warning_<case>..." or "FAIL ...: <why>"; exits 1 on any failure.
Options (for people; tests/run passes none): -v prints the worst error of each figure; --keep DIR.
"""

import argparse
import glob
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lnlab_ref as R  # noqa: E402

# float32 forward against a float64 reference: the figures are maxima and means of O(1..10) values
FWD_ATOL, FWD_RTOL = 1e-5, 1e-5
# update_rms: both sides compute from the same float32 parameters in double; the record prints 7
# significant digits
UPD_RTOL = 2e-6
L, H, C, T, V, B = 3, 2, 16, 8, 64, 2
STEPS = 3

# (name, refdump flags): qkv-norm (hybrid), Post-LN, Peri-LN with RMSNorm, a dt < 1
CASES = (
    ("pre_layernorm", ["--preset", "pre", "--norm", "layernorm"]),
    ("hybrid_rmsnorm", ["--preset", "hybrid", "--norm", "rmsnorm"]),
    ("post_layernorm", ["--preset", "post", "--norm", "layernorm"]),
    ("peri_rmsnorm_dt0.5", ["--preset", "peri", "--norm", "rmsnorm", "--dt", "0.5"]),
)


def run(cmd, what):
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if p.returncode != 0:
        tail = " | ".join((p.stderr or p.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"{what} exited {p.returncode}: {tail} (command: {' '.join(cmd)})")
    return p.stdout


def write_shard(path, tokens):
    with open(path, "wb") as f:
        f.write(struct.pack("<256i", 20240520, 1, len(tokens), *([0] * 253)))
        f.write(np.asarray(tokens, dtype="<u2").tobytes())


def scaled_model(src, dst):
    """The refdump model with larger attention logits (q and k weights N(0, 0.3^2), the q/k norm
    gains x2) and output logits (wte x10: the tied LM head)."""
    params, meta = R.load_safetensors(src)
    rng = np.random.default_rng(3)
    for k, v in params.items():
        if k.endswith("attn.c_attn.weight"):  # HF Conv1D layout (in, out): q and k are the first 2C columns
            v[:, : 2 * C] = 0.3 * rng.standard_normal((C, 2 * C))
        elif k.endswith(("attn.q_norm.weight", "attn.k_norm.weight")):
            v *= 2.0
        elif k == "wte.weight":
            v *= 10.0
    meta = {k: v for k, v in meta.items() if k != "lnlab.crc32"}  # optional; would no longer match
    R.save_safetensors(dst, params, meta)
    return params, meta


def block_of(name):
    return int(name.split(".")[1]) + 1 if name.startswith("h.") else 0


def update_rms(before, after):
    """(L + 1,): sqrt(mean (after - before)^2) over each group's parameters, group 0 = the tensors
    outside the blocks."""
    ss, n = np.zeros(L + 1), np.zeros(L + 1)
    for k, a in after.items():
        g = block_of(k)
        d = a.astype(np.float64) - before[k].astype(np.float64)
        ss[g] += float((d * d).sum())
        n[g] += d.size
    return np.sqrt(ss / n)


def check(results, name, c, ref, atol, rtol):
    r = R.compare(name, np.asarray(c, dtype=np.float64), np.asarray(ref, dtype=np.float64), atol, rtol)
    results.append(r)
    return r


def one_case(name, flags, exe, refdump, work, verbose):
    """Returns a list of problems (empty: passed)."""
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    run([refdump, *flags, "--layers", str(L), "--heads", str(H), "--dim", str(C), "--seq", str(T), "--vocab", str(V),
         "--batch", str(B), "--seed", "11", "--out", d], "refdump")
    model = os.path.join(d, "scaled.safetensors")
    params, meta = scaled_model(os.path.join(d, "model.safetensors"), model)
    cfg = R.parse_config(meta["lnlab.config"])
    toks = np.random.default_rng(5).integers(0, V, size=40 * B * T)
    shard = os.path.join(d, "train.bin")
    write_shard(shard, toks)

    # the reference on the probe's batch: row b = tokens [b*T, b*T+T]
    tok = torch.tensor(np.stack([toks[b * T: b * T + T + 1] for b in range(B)]), dtype=torch.long)
    ref_model = R.Model(cfg)
    with torch.no_grad():
        loss, logits, _ = ref_model.forward(R.to_torch(params, torch.float64), tok)
    ref = {"loss": float(loss), "attn_logit_max": np.array(ref_model.attn_logit_max)}
    ref["logit_max"], ref["log_z_mean"] = R.logit_figures(logits)

    results, probs = [], []
    p = json.loads(run([exe, "probe", "--model", model, "--data", shard, "--batch", str(B), "--seq", str(T), "--json"],
                       "lnlab probe"))
    layers = p["layers"]
    if layers[0]["attn_logit_max"] is not None:
        probs.append(f"probe: layers[0].attn_logit_max = {layers[0]['attn_logit_max']!r}, expected null")
    if any("update_rms" in x for x in layers):
        probs.append("probe: a layer has update_rms (the probe takes no optimizer step)")
    check(results, "probe loss (same batch)", [p["loss"]], [ref["loss"]], FWD_ATOL, FWD_RTOL)
    check(results, "probe attn_logit_max", [x["attn_logit_max"] for x in layers[1:]], ref["attn_logit_max"],
          FWD_ATOL, FWD_RTOL)
    check(results, "probe logit_max", [p["logit_max"]], [ref["logit_max"]], FWD_ATOL, FWD_RTOL)
    check(results, "probe log_z_mean", [p["log_z_mean"]], [ref["log_z_mean"]], FWD_ATOL, FWD_RTOL)
    if not 1.0 < max(ref["attn_logit_max"]) < 1e4 or not 1.0 < ref["logit_max"] < 1e4:
        probs.append(f"setup: the logits are not several units large ({ref['attn_logit_max']}, {ref['logit_max']})")

    # training: a diagnostics record every step, a model file after every step
    rd = os.path.join(d, "run")
    run([exe, "train", "--data", shard, "--init-from", model, "--out", rd, "--batch", str(B), "--seq", str(T),
         "--steps", str(STEPS), "--lr", "0.01", "--warmup", "0", "--schedule", "constant", "--data-order",
         "sequential", "--diag-every", "1", "--checkpoint-every", "1", "--quiet"], "lnlab train")
    recs = [json.loads(line) for line in open(os.path.join(rd, "log.jsonl"))]
    diag = {r["step"]: r["diag"] for r in recs if "diag" in r}
    if sorted(diag) != list(range(1, STEPS + 1)):
        probs.append(f"train: diagnostics records at steps {sorted(diag)}, expected 1..{STEPS}")
        return probs, results
    d1 = diag[1]
    check(results, "train step 1 attn_logit_max", d1["attn_logit_max"], ref["attn_logit_max"], FWD_ATOL, FWD_RTOL)
    check(results, "train step 1 logit_max", [d1["logit_max"]], [ref["logit_max"]], FWD_ATOL, FWD_RTOL)
    check(results, "train step 1 log_z_mean", [d1["log_z_mean"]], [ref["log_z_mean"]], FWD_ATOL, FWD_RTOL)
    ckpts = sorted(glob.glob(os.path.join(rd, "checkpoints", "model_*.safetensors")))
    files = [model] + ckpts + [os.path.join(rd, "model.safetensors")]
    if len(files) != STEPS + 1:
        probs.append(f"train: model files {files}, expected the initial one, {STEPS - 1} checkpoints and the final")
        return probs, results
    states = [R.load_safetensors(f)[0] for f in files]
    for s in range(1, STEPS + 1):
        want = update_rms(states[s - 1], states[s])
        got = np.array(diag[s]["update_rms"] + [diag[s]["embed_update_rms"]], dtype=np.float64)
        check(results, f"train step {s} update_rms", got, np.concatenate([want[1:], want[:1]]), 0.0, UPD_RTOL)
        if not np.all(want > 1e-4):
            probs.append(f"setup: step {s} barely moved the parameters ({want})")
    if verbose:
        for r in results:
            print(f"    {r['name']:<34} worst abs {r.get('abs_err', float('nan')):9.3g}  "
                  f"worst rel {r.get('rel_err', float('nan')):9.3g}  err/bound {r['worst']:7.3g}")
    return probs, results


def selfcheck():
    """The bounds reject what the figures must not get wrong: a 1e-4 relative error in an
    attention maximum or logit figure of size >= 1, and a 1e-5 relative error in update_rms."""
    probs = []
    if R.compare("x", np.array([2.0 * (1 + 1e-4)]), np.array([2.0]), FWD_ATOL, FWD_RTOL)["ok"]:
        probs.append("a 1e-4 relative error in a forward figure passes")
    if R.compare("x", np.array([1e-3 * (1 + 1e-5)]), np.array([1e-3]), 0.0, UPD_RTOL)["ok"]:
        probs.append("a 1e-5 relative error in update_rms passes")
    if R.compare("x", np.array([np.nan]), np.array([1.0]), FWD_ATOL, FWD_RTOL)["ok"]:
        probs.append("NaN passes")
    return probs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--keep", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    os.chdir(root)
    exe = os.environ.get("LNLAB_BIN", os.path.join(root, "lnlab"))
    refdump = os.path.join(os.environ.get("LNLAB_TEST_DIR", "build/tests"), "tools", "refdump")
    failed = 0
    p = selfcheck()
    print("FAIL early_warning_selfcheck: " + "; ".join(p) if p else "ok early_warning_selfcheck")
    failed += bool(p)
    for what, path in (("lnlab", exe), ("refdump", refdump)):
        if not os.access(path, os.X_OK):
            print(f"FAIL early_warning: {what} not built ({path})")
            return 1
    work = args.keep or tempfile.mkdtemp(prefix="lnlab_ew_")
    try:
        for name, flags in CASES:
            try:
                probs, results = one_case(name, flags, exe, refdump, work, args.verbose)
            except (RuntimeError, R.ConfigError, R.FormatError, OSError, ValueError, KeyError, TypeError) as ex:
                print(f"FAIL early_warning_{name}: {ex}")
                failed += 1
                continue
            bad = [r["msg"] for r in results if not r["ok"]]
            if probs or bad:
                print(f"FAIL early_warning_{name}: " + "; ".join(probs + bad))
                failed += 1
            else:
                worst = max(results, key=lambda r: r["worst"])
                print(f"ok early_warning_{name} (worst err/bound {worst['worst']:.3g} in {worst['name']})")
            sys.stdout.flush()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
