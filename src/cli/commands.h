/* The subcommands, one line each: name, entry point (src/cli/cmd_<name>.c), summary.
 * Append new commands here; main.c generates the dispatch table and `lnlab --help`. */
LNL_COMMAND(tokenize, "print the token ids of a file or stdin")
LNL_COMMAND(detokenize, "turn token ids back into bytes")
LNL_COMMAND(prepare, "tokenize a corpus into train/val token shards")
LNL_COMMAND(train, "train a model with a normalization placement")
LNL_COMMAND(probe, "per-layer hidden-state and gradient figures of a model on one batch")
LNL_COMMAND(eval, "validation loss and perplexity of a model")
LNL_COMMAND(sample, "generate text from a model")
LNL_COMMAND(study, "run a grid of training runs and report how stable each placement is")
LNL_COMMAND(bench, "training speed of lnlab beside PyTorch on the same models (docs/PERFORMANCE.md)")
LNL_COMMAND(screen, "check a placement's stability before training it: spec verdicts and the numbers behind them")
LNL_COMMAND(plot, "figures and a report page of one training run (RUN/plots/, RUN/report.html)")
