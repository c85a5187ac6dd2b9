"""The PyTorch side of `lnlab bench`: the same GPT-2-style model (preset pre or peri, LayerNorm,
tied LM head, tanh GELU, biases everywhere), written as an ordinary efficient PyTorch module, and
timed per full training step (forward, backward, global-norm clipping, AdamW) exactly as lnlab
times its own. Not a reference for numerics (tests/reference/ is); a speed yardstick only.

Run by `lnlab bench` with the environment it chooses (thread counts, and for the "tuned" runs
OPENBLAS_CORETYPE and glibc malloc settings). Prints one JSON object on stdout.

    /usr/bin/python3 bench/torch_train.py --layers 6 --heads 6 --dim 384 --seq 256 --batch 8 \
        --vocab 50257 --preset peri --threads 2 --warmup 2 --steps 5
"""

import argparse
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    """x' = x + [N_out](F(N_pre(x))) for attention then MLP; N_out only for peri."""

    def __init__(self, C, H, T, peri):
        super().__init__()
        self.H = H
        self.ln_1 = nn.LayerNorm(C)
        self.c_attn = nn.Linear(C, 3 * C)
        self.attn_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C)
        self.c_fc = nn.Linear(C, 4 * C)
        self.mlp_proj = nn.Linear(4 * C, C)
        self.ln_1_out = nn.LayerNorm(C) if peri else nn.Identity()
        self.ln_2_out = nn.LayerNorm(C) if peri else nn.Identity()
        self.register_buffer("mask", torch.ones(T, T, dtype=torch.bool).triu(1), persistent=False)

    def attention(self, u):
        B, T, C = u.shape
        hs = C // self.H
        q, k, v = self.c_attn(u).split(C, dim=2)
        q, k, v = (t.view(B, T, self.H, hs).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        att = att.masked_fill(self.mask[:T, :T], float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.attn_proj(y)

    def forward(self, x):
        x = x + self.ln_1_out(self.attention(self.ln_1(x)))
        x = x + self.ln_2_out(self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")))
        return x


class GPT(nn.Module):
    def __init__(self, L, H, C, T, positions, V, peri):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(positions, C)
        self.h = nn.ModuleList([Block(C, H, T, peri) for _ in range(L)])
        self.ln_f = nn.LayerNorm(C)
        std, rstd = 0.02, 0.02 / math.sqrt(2 * L)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, rstd if name.endswith("proj.weight") else std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe.weight[:T]
        for blk in self.h:
            x = blk(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # tied LM head
        return F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))


def main():
    ap = argparse.ArgumentParser()
    for k, d in (("layers", 6), ("heads", 6), ("dim", 384), ("seq", 256), ("batch", 8), ("vocab", 50257),
                 ("positions", 1024), ("threads", 1), ("warmup", 2), ("steps", 5), ("seed", 1)):
        ap.add_argument("--" + k, type=int, default=d)
    ap.add_argument("--preset", choices=("pre", "peri"), default="pre")
    ap.add_argument("--foreach", type=int, default=1, help="AdamW foreach implementation (1) or per tensor (0)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = GPT(a.layers, a.heads, a.dim, a.seq, a.positions, a.vocab, a.preset == "peri")
    # weight decay on matrices and embeddings, none on norms and biases (lnlab's tensor table)
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=6e-4, betas=(0.9, 0.95), eps=1e-8, foreach=bool(a.foreach))
    g = torch.Generator().manual_seed(a.seed)
    tok = torch.randint(0, a.vocab, (a.batch, a.seq + 1), generator=g)
    x, y = tok[:, :-1].contiguous(), tok[:, 1:].contiguous()
    times, losses = [], []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        losses.append(float(loss))
        if step >= a.warmup:
            times.append(dt)
    times.sort()
    med = times[len(times) // 2]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    json.dump({"impl": "pytorch", "torch": torch.__version__, "threads": a.threads, "ms": med * 1e3,
               "tokens_per_s": a.batch * a.seq / med, "peak_rss": rss, "steps": a.steps,
               "ms_all": [t * 1e3 for t in times], "loss_first": losses[0], "loss_last": losses[-1]}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
