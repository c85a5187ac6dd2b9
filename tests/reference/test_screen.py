"""`lnlab screen --model M --json` against the float64 PyTorch reference (lnlab_ref.py) on small
models from the refdump test tool: for every weight scale s, each layer's hidden_mean_abs and the
block-1 / block-L gradient ratio; for the probed blocks, sigma at every input scale a and weight
scale s against the largest singular value of the block's dense Jacobian (torch.autograd, float64).
The screen's batch is rebuilt from its documented formula (docs/SCREEN.md): token i =
((i * 2654435761) mod 2^32) mod V.

Prints "ok screen_reference_<case>" or "FAIL ...: <why>"; exits 1 on any failure.
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lnlab_ref as R  # noqa: E402

L, H, C, T, V, B = 3, 2, 16, 8, 50, 2
ITERS = 300  # power iterations: sigma within SIGMA_RTOL of the dense SVD's
FWD_ATOL, FWD_RTOL = 1e-5, 1e-4
SIGMA_RTOL = 2e-3
GRAD_RTOL = 1e-3
S = (1.0, 2.0, 4.0, 8.0, 16.0)
A = (1.0, 4.0, 16.0, 64.0)
MATRICES = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
CASES = (
    ("pre", ["--preset", "pre"]),
    ("peri_rmsnorm_dt0.5", ["--preset", "peri", "--norm", "rmsnorm", "--dt", "0.5"]),
    ("b2t", ["--preset", "b2t"]),
)


def run(cmd):
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {(p.stderr or p.stdout).strip()[-300:]}")
    return p.stdout


def block(model, P, i, x):
    """Block i (0-based) of the placement equations (design notes), on its input stream x (B, T, C)."""
    cfg = model.cfg
    model.attn_logit_max = []
    h = x
    for s, ln in (("attn", "ln_1"), ("mlp", "ln_2")):
        sp = cfg.layers[i][s]
        pre = f"h.{i}.{ln}"
        u = model.N(P, pre, h) * sp["in_scale"] if sp["pre_norm"] else h
        f = model.attention(P, i, u) if s == "attn" else model.mlp(P, i, u)
        if sp["out_norm"]:
            f = model.N(P, pre + "_out", f)
        res = u if sp["res_from_normed"] else h
        skip = sp["skip_scale"] * P[f"h.{i}.{s}_skip"] if sp["skip_learned"] else sp["skip_scale"]
        g = P[f"h.{i}.gate"] if sp["gate"] else 1.0
        r = skip * res + sp["dt"] * g * f
        if sp["b2t"] and s == "mlp":
            r = r + x
        h = model.N(P, pre + "_post", r) if sp["post_norm"] else r
    return h


def scaled(params, s):
    return {k: (v * s if any(k.endswith(m) for m in MATRICES) and k.startswith("h.") else v) for k, v in params.items()}


def sigma_max(model, P, i, x):
    jac = torch.autograd.functional.jacobian(lambda z: block(model, P, i, z), x)
    n = x.numel()
    return float(torch.linalg.svdvals(jac.reshape(n, n))[0])


def grad_ratio(model, P, tok, L):
    loss, _, _ = model.forward(P, tok)
    names = list(P)
    gr = dict(zip(names, torch.autograd.grad(loss, [P[k] for k in names], allow_unused=True)))

    def norm(pre):
        return sum(float((g ** 2).sum()) for k, g in gr.items() if k.startswith(pre) and g is not None) ** 0.5
    return float(loss), norm("h.0.") / norm(f"h.{L - 1}.")


def reference(params, cfg, dt):
    cfg.dt = dt
    for lay in cfg.layers:  # the screen runs every sub-layer at its dt
        for s in R.SUBS:
            lay[s]["dt"] = R._f32(dt)
    model = R.Model(cfg)
    toks = [((i * 2654435761) % 2 ** 32) % V for i in range(B * T + 1)]
    tok = torch.tensor([toks[b * T: b * T + T + 1] for b in range(B)], dtype=torch.long)
    out = {"mean_abs": [], "grad_ratio": [], "sigma_s": {}, "sigma_a": {}}
    blocks = (1, L)
    x_in = {}
    for s in S:
        P = R.to_torch(scaled(params, s), torch.float64)
        loss, gr = grad_ratio(model, P, tok, L)
        out["grad_ratio"].append(gr)
        if s == 1.0:
            out["loss"] = loss
        with torch.no_grad():
            _, _, streams = model.forward(P, tok)
        out["mean_abs"].append([float(x.abs().mean()) for x in streams])
        if s == 1.0:
            x_in = {b: streams[b - 1].detach() for b in blocks}
        Pd = {k: v.detach() for k, v in P.items()}
        for b in blocks:
            out["sigma_s"].setdefault(b, []).append(sigma_max(model, Pd, b - 1, x_in[b]))
    Pd = {k: v.detach() for k, v in R.to_torch(params, torch.float64).items()}
    for b in blocks:
        out["sigma_a"][b] = [sigma_max(model, Pd, b - 1, a * x_in[b]) for a in A]
    return out


def one_case(name, flags, exe, refdump, work):
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    run([refdump, *flags, "--layers", str(L), "--heads", str(H), "--dim", str(C), "--seq", str(T), "--vocab", str(V),
         "--batch", str(B), "--seed", "7", "--out", d])
    path = os.path.join(d, "model.safetensors")
    params, meta = R.load_safetensors(path)
    o = json.loads(run([exe, "screen", "--model", path, "--batch", str(B), "--seq", str(T),
                        "--sensitivity-iters", str(ITERS), "--json"]))
    probs = []
    for run_c in o["runs"]:
        dt = run_c["dt"]
        cfg = R.parse_config(meta["lnlab.config"])
        ref = reference(params, cfg, dt)
        checks = [
            ("hidden_mean_abs", [f["hidden_mean_abs"] for f in run_c["forward"]], ref["mean_abs"], FWD_ATOL, FWD_RTOL),
            ("loss", [run_c["loss"]], [ref["loss"]], FWD_ATOL, FWD_RTOL),
            ("grad_ratio_by_weight_scale", run_c["grad_ratio_by_weight_scale"], ref["grad_ratio"], 0, GRAD_RTOL),
        ]
        for b in run_c["sensitivity"]:
            k = b["block"]
            checks.append((f"block {k} sigma by input scale", [e["sigma"] for e in b["by_input_scale"]],
                           ref["sigma_a"][k], 0, SIGMA_RTOL))
            checks.append((f"block {k} sigma by weight scale", [e["sigma"] for e in b["by_weight_scale"]],
                           ref["sigma_s"][k], 0, SIGMA_RTOL))
        for what, c, r, atol, rtol in checks:
            c, r = np.asarray(c, dtype=np.float64), np.asarray(r, dtype=np.float64)
            bad = ~np.isfinite(c) | (np.abs(c - r) > atol + rtol * np.abs(r))
            if c.shape != r.shape or bad.any():
                i = int(np.argmax(bad)) if c.shape == r.shape else 0
                probs.append(f"dt {dt} {what}: C {c.ravel()[i] if c.size else None!r} against reference "
                             f"{r.ravel()[i]!r} (element {i} of {r.size})")
    if len(o["runs"]) != (1 if "--dt" not in flags else 2):
        probs.append(f"{len(o['runs'])} dt columns")
    return probs


def main():
    exe = os.environ.get("LNLAB_BIN", os.path.abspath("lnlab"))
    refdump = os.path.join(os.environ.get("LNLAB_TEST_DIR", "build/tests"), "tools", "refdump")
    if not os.access(refdump, os.X_OK):
        print(f"skip screen_reference: {refdump} not built (make -f mk/build.mk tests)")
        return 0
    torch.set_num_threads(1)
    failed = 0
    with tempfile.TemporaryDirectory() as work:
        for name, flags in CASES:
            try:
                probs = one_case(name, flags, exe, refdump, work)
            except (RuntimeError, KeyError, ValueError) as ex:
                probs = [str(ex)]
            if probs:
                failed = 1
                print(f"FAIL screen_reference_{name}: " + "; ".join(probs[:4]))
            else:
                print(f"ok screen_reference_{name}")
    return failed


if __name__ == "__main__":
    sys.exit(main())
