"""Bad input never gives a traceback or a hang: one table of (command line, phrase of the message).

Every case runs through the real entry point :func:`gennas.cli.main` in this process and
must exit with code 2, print a message containing its phrase, and print no traceback.
Cases name files crafted in a temporary folder (``{tmp}``, written by ``damage.craft_files``);
each one fails before any training starts, so the table stays fast.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gennas.cli import main
from gennas.lock import output_lock

from damage import RESNET, craft_files


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Every crafted file a case may name, by placeholder."""
    return craft_files(tmp_path_factory.mktemp("bad"))


def _format(argv: list[str], files: dict[str, str]) -> list[str]:
    return [a.format(**files) for a in argv]


# ---------------------------------------------------------------- the table
S = ["search", "--method", "random", "--budget", "3"]
G = ["generate", "--n", "3"]
FIT = ["predictor", "fit", "--metric", "accuracy", "--out", "{tmp}/fit_out.pt"]
RUN = ["run", "--out", "{tmp}/run_new"]
NUMBERS = "is not a whole number"


def _numeric(prefix: list[str], flag: str, cases: list[tuple[str, str]]) -> list[tuple[list[str], str]]:
    return [(prefix + [f"{flag}={value}"], phrase) for value, phrase in cases]  # "=": a value may start with -


INT_POS = [("0", "must be at least 1"), ("-3", "must be at least 1"), ("abc", NUMBERS), ("1.5", NUMBERS), ("", NUMBERS)]
SEED = [("-1", "must be at least 0"), ("4294967296", "seeds are 0 <= K < 2**32"), ("x", NUMBERS)]
FLOAT_NONNEG = [("inf", "not a finite number"), ("nan", "not a finite number"), ("-inf", "not a finite number"),
                ("-5", "must be >= 0"), ("abc", "is not a number")]
FLOAT_POS = [("0", "must be > 0"), ("-1", "must be > 0"), ("nan", "not a finite number"), ("inf", "not a finite number"),
             ("x", "is not a number")]

CASES: list[tuple[list[str], str]] = [
    # --- top level and argparse usage errors
    ([], "the following arguments are required: COMMAND"),
    (["frobnicate"], "invalid choice"),
    (["generator"], "the following arguments are required: ACTION"),
    (["predictor"], "the following arguments are required: ACTION"),
    (["predictor", "explode"], "invalid choice"),
    (["search"], "--method"),
    (["search", "--method", "rea", "--no-such-flag"], "unrecognized arguments"),
    # --- cost
    (["cost", "nb201", "|nor_conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "unknown op"),
    (["cost", "nb999", RESNET], "unknown search space"),
    (["cost", "nb201", "garbage"], "arch"),
    (["cost", "nb201", RESNET, "--channels", "0"], "must be at least 1"),
    (["cost", "nb201", RESNET, "--cells-per-stage", "-1"], "must be at least 1"),
    (["cost", "darts", "garbage"], "the compact form is NORMAL/REDUCE"),
    (["cost", "darts", "Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], reduce=[], reduce_concat=[2])"],
     "needs 8 (op, input) pairs"),
    (["cost", "darts", "DARTS_V2", "--layers", "0"], "must be at least 1"),
    (["cost", "darts", "DARTS_V2", "--image-size", "30"], "multiple of 4"),
    (["cost", "darts", "DARTS_V2", "--cells-per-stage", "2"], "does not apply"),
    (["train", "DARTS_V2", "--space", "darts", "--layers", "3", "--cells-per-stage", "2"], "does not apply"),
    (["search", "--method", "rea", "--space", "darts", "--dataset", "digits", "--budget", "3", "--epochs", "1",
      "--option", "warm_start=net2net"], "morphs a parent's ops edge by edge"),
    (["cost", "nb201", RESNET, "--image-size", "abc"], "'abc' is not a whole number"),
    (["cost", RESNET, "--dataset", "imagenet"], "unknown dataset"),
    (["cost", RESNET, "--dataset", "npz:/nonexistent.npz"], "does not exist"),
    (["cost", "garbage"], "arch"),
    (["run", "--probe-cells", "-1", "--out", "{tmp}/pc"], "must be at least 0"),
    (["run", "--finetune-epochs", "-1", "--out", "{tmp}/fe"], "must be at least 0"),
    (["run", "--finetune-epochs", "two", "--out", "{tmp}/fe"], "--finetune-epochs"),
    (["run", "--candidates", "0", "--out", "{tmp}/cand"], "--candidates"),
    (["run", "--rounds", "0", "--out", "{tmp}/rounds"], "must be at least 1"),
    (["run", "--finalists", "-2", "--out", "{tmp}/fin"], "must be at least 0"),
    (["run", "--finalists", "x", "--out", "{tmp}/fin"], "'x' is not a whole number"),
    (["run", "--budget-minutes", "0", "--out", "{tmp}/bm"], "must be > 0"),
    (["run", "--budget-minutes", "soon", "--out", "{tmp}/bm"], "'soon' is not a number"),
    (["run", "--backend", "gpu", "--out", "{tmp}/be"], "invalid choice: 'gpu'"),
    (["run", "--supernet", "sometimes", "--out", "{tmp}/sn"], "invalid choice: 'sometimes'"),
    (["run", "--config", "/nonexistent/run.yaml", "--out", "{tmp}/cf"], "no such file"),
    (["run", "--space", "nosuch", "--out", "{tmp}/sp"], "unknown --space 'nosuch' for gennas run"),
    (["run", "--space", "darts", "--cells-per-stage", "2", "--out", "{tmp}/sp"], "a darts run takes --layers"),
    (["run", "--layers", "3", "--out", "{tmp}/sp"], "an nb201 run takes --cells-per-stage"),
    (["search", "--config", "/nonexistent/s.yaml"], "no such file"),
    # --- query
    (["query", "nb999", RESNET], "unknown benchmark"),
    (["query", "nb201", RESNET, "--dataset", "svhn"], "no dataset 'svhn'"),
    (["query", "nb201", "|nor_conv_3x3~0|"], "has 2 nodes"),
    (["query", "nb201", ""], "arch"),
    # --- train
    (["train", RESNET, "--dataset", "imagenet"], "unknown dataset"),
    (["train", RESNET, "--dataset", "cifar10", "--data-root", "/nonexistent"], "cifar-10-batches-py"),
    (["train", RESNET, "--dataset", "cifar10", "--data-root", "{tmp}/crafted"], "refused, nothing was run"),
    (["train", RESNET, "--space", "dag99x"], "unknown search space"),
    (["train", "|bad|"], "arch"),
    *_numeric(["train", RESNET], "--epochs", INT_POS[:3] + [("100000", "cap of 10,000")]),
    *_numeric(["train", RESNET], "--batch-size", INT_POS[:3]),
    *_numeric(["train", RESNET], "--lr", FLOAT_POS),
    *_numeric(["train", RESNET], "--seed", SEED),
    *_numeric(["train", RESNET], "--eps", [("2", "must be in [0, 1]"), ("-0.1", "must be in [0, 1]"),
                                           ("nan", "not a finite number")]),
    *_numeric(["train", RESNET], "--pgd-steps", INT_POS[:3]),
    *_numeric(["train", RESNET], "--noise-sigma", [("-1", "must be >= 0"), ("inf", "not a finite number")]),
    *_numeric(["train", RESNET], "--channels", INT_POS[:2]),
    # --- generate
    *_numeric(["generate"], "--n", INT_POS + [("100000000", "cap of 10,000")]),
    *_numeric(G, "--guidance", FLOAT_NONNEG),
    *_numeric(G, "--seed", SEED),
    (G + ["--constraint", "flops<=0"], "the smallest flops of any nb201 cell is"),
    (G + ["--constraint", "params<=0.001"], "the smallest params of any nb201 cell is"),
    (G + ["--constraint", "params>=100"], "the largest params of any nb201 cell is"),
    (G + ["--constraint", "flops>=1e9"], "the largest flops"),
    (G + ["--space", "dag6", "--objectives", "flops:min", "--constraint", "flops<=0"], "the smallest flops of any dag6"),
    (G + ["--constraint", "flops<100"], "malformed constraint"),
    (G + ["--constraint", "flops<=abc"], "malformed constraint"),
    (G + ["--constraint", "bogus<=1"], "unknown metric"),
    (G + ["--constraint", ""], "malformed constraint"),
    (G + ["--objectives", "accuracy:up"], "direction must be 'max' or 'min'"),
    (G + ["--objectives", "speed:max"], "unknown metric"),
    (G + ["--objectives", "flops:min,flops:max"], "name a metric twice"),
    (G + ["--objectives", ","], "no objectives given"),
    (G + ["--objectives", "latency_ms:min"], "no predictor head"),
    (G + ["--space", "nb999"], "unknown search space"),
    (G + ["--dataset", "svhn"], "no dataset 'svhn'"),
    (G + ["--generator", "{tmp}/missing.pt"], "not found"),
    (G + ["--generator", "{tmp}/garbage.pt"], "delete or move"),
    (G + ["--generator", "{tmp}/generator_trunc.pt"], "unreadable or corrupt"),
    (G + ["--generator", "{tmp}/other.pt"], "not a version-1 gennas generator"),
    (G + ["--generator", "{tmp}/list.pt"], "not a gennas checkpoint"),
    (G + ["--generator", "{tmp}/prior.pt"], "not a version-1 gennas generator"),
    (G + ["--predictor", "{tmp}/missing.pt"], "not found"),
    (G + ["--predictor", "{tmp}/garbage.pt"], "unreadable or corrupt"),
    (G + ["--predictor", "{tmp}/truncated.pt"], "unreadable or corrupt"),
    (G + ["--predictor", "{tmp}/other.pt"], "not a gennas predictor"),
    (G + ["--space", "dag6", "--objectives", "accuracy:max"], "no predictor head"),
    (G + ["--space", "dag5", "--objectives", "flops:min"], "generator checkpoint"),
    # --- generator train
    *_numeric(["generator", "train"], "--steps", INT_POS + [("10000000", "cap of 1,000,000")]),
    *_numeric(["generator", "train"], "--seed", SEED),
    (["generator", "train", "--cells", "1"], "must be at least 2"),
    (["generator", "train", "--out", "{tmp}"], "is a directory"),
    (["generator", "train", "--out", "{tmp}/sub/"], "is a directory"),
    (["generator", "train", "--out", "/proc/gennas/model.pt"], "cannot write in"),
    (["generator", "train", "--out", "{tmp}/regular_file/model.pt"], "is a file, not a directory"),
    (["generator", "train", "--space", "nb999", "--steps", "1"], "unknown search space"),
    # --- predictor pretrain / fit / predict
    (["predictor", "pretrain"], "--dataset"),
    (["predictor", "pretrain", "--dataset", "svhn"], "no dataset 'svhn'"),
    *_numeric(["predictor", "pretrain", "--dataset", "cifar10"], "--steps", INT_POS[:3]),
    *_numeric(["predictor", "pretrain", "--dataset", "cifar10"], "--ensemble", INT_POS[:2] + [("1000", "cap of 100")]),
    (["predictor", "pretrain", "--dataset", "cifar10", "--out", "{tmp}"], "is a directory"),
    (FIT + ["--data", "{tmp}/binary"], "is not UTF-8 text"),
    (FIT + ["--data", "{tmp}/empty"], "missing column"),
    (FIT + ["--data", "{tmp}/dup.csv"], "was given value 1.0 on line 2 and 3.0 here"),
    (FIT + ["--data", "{tmp}/nonnum.csv"], "is not a number"),
    (FIT + ["--data", "{tmp}/nocol.csv"], "missing column"),
    (FIT + ["--data", "{tmp}/inf.csv"], "is not finite"),
    (FIT + ["--data", "{tmp}/nan.csv"], "is not finite"),
    (FIT + ["--data", "{tmp}/onerow.csv"], "need at least 2 measured cells"),
    (FIT + ["--data", "{tmp}/headeronly.csv"], "need at least 2 measured cells"),
    (FIT + ["--data", "{tmp}/badcell.csv"], "line 3"),
    (FIT + ["--data", "{tmp}/missing.csv"], "not found"),
    (FIT + ["--data", "{tmp}"], "not found"),
    (FIT, "give --data"),
    (FIT + ["--data", "{tmp}/dup.csv", "--space", "nb999"], "unknown search space"),
    (["predictor", "fit", "--metric", "energy", "--data", "{tmp}/dup.csv", "--out", "{tmp}/e.pt"], "--direction max|min"),
    (FIT + ["--direction", "up"], "invalid choice"),
    (["predictor", "fit", "--metric", "accuracy", "--out", "{tmp}"], "is a directory"),
    (["predictor", "fit", "--metric", "accuracy", "--out", "/proc/gennas/x.pt"], "cannot write in"),
    *_numeric(FIT, "--ensemble", INT_POS[:2] + [("101", "cap of 100")]),
    *_numeric(FIT, "--steps", INT_POS[:3]),
    *_numeric(FIT, "--cv", [("-1", "must be at least 0"), ("x", NUMBERS)]),
    *_numeric(FIT, "--n-cells", [("1", "must be at least 2"), ("0", "must be at least 2")]),
    *_numeric(FIT, "--seed", SEED[:2]),
    (["predictor", "predict", "{tmp}/prior.pt", "--cells", "{tmp}/binary"], "is not UTF-8 text"),
    (["predictor", "predict", "{tmp}/prior.pt", "--cells", "{tmp}/empty"], "lists no cell"),
    (["predictor", "predict", "{tmp}/prior.pt", "--cells", "{tmp}/blank"], "lists no cell"),
    (["predictor", "predict", "{tmp}/prior.pt", "--cells", "{tmp}/comments"], "lists no cell"),
    (["predictor", "predict", "{tmp}/prior.pt", "--cells", "{tmp}/badarch.txt"], "line 2"),
    (["predictor", "predict", "{tmp}/prior.pt", "--cells", "{tmp}/missing.txt"], "not found"),
    (["predictor", "predict", "{tmp}/missing.pt", "--cells", "{tmp}/cells.txt"], "not found"),
    (["predictor", "predict", "{tmp}/garbage.pt", "--cells", "{tmp}/cells.txt"], "delete or move"),
    (["predictor", "predict", "{tmp}/truncated.pt", "--cells", "{tmp}/cells.txt"], "unreadable or corrupt"),
    (["predictor", "predict", "{tmp}/list.pt", "--cells", "{tmp}/cells.txt"], "not a gennas checkpoint"),
    (["predictor", "predict", "{tmp}", "--cells", "{tmp}/cells.txt"], "not found"),
    (["predictor", "predict", "{tmp}/prior.pt"], "--cells"),
    # --- search
    *_numeric(["search", "--method", "random"], "--budget", INT_POS),
    *_numeric(S, "--seeds", INT_POS[:3] + [("100000", "cap of 10,000")]),
    *_numeric(S, "--seed", SEED),
    *_numeric(S, "--epochs", INT_POS[:3]),
    (S + ["--out", "{tmp}/regular_file"], "is an existing file"),
    (S + ["--out", "/proc/gennas_out"], "cannot write in"),
    (S + ["--out", "{tmp}/regular_file/sub"], "is a file, not a directory"),
    (["search", "--method", "frobnicate"], "unknown method"),
    (["search", "--method", "gdas"], "gennas compare --methods gdas --budget-minutes M"),
    (["search", "--method", "rea,random"], "runs one --method"),
    (["search", "--method", ","], "unknown method"),
    (["search", "--method", "rea", "--option", "population_size=abc"], "population_size must be a whole number"),
    (["search", "--method", "rea", "--option", "population_size=0"], "population_size must be at least 2"),
    (["search", "--method", "rea", "--option", "population_size=2.5"], "must be a whole number"),
    (["search", "--method", "rea", "--option", "tournament_size=0"], "tournament_size must be at least 1"),
    (["search", "--method", "rea", "--option", "tournament_size=50"], "larger than population_size"),
    (["search", "--method", "rea", "--option", "frobnicate=1"], "unknown option for rea; valid options are"),
    (["search", "--method", "random", "--option", "population_size=5"], "random: (none)"),
    (["search", "--method", "ls", "--option", "x=1"], "unknown option for ls"),
    (["search", "--method", "bo", "--option", "surrogate=svm"], "surrogate must be one of"),
    (["search", "--method", "ours", "--option", "surrogate=forest"], "surrogate must be one of"),
    (["search", "--method", "ours", "--budget", "3", "--option", "surrogate=gnn+proxies", "--prior", "transfer"],
     "with a transfer prior the prior scores the candidates"),
    (["search", "--method", "ours", "--space", "darts", "--dataset", "digits", "--budget", "2", "--option",
      "surrogate=gnn+proxies"], "zero-cost proxies of cells"),
    (["search", "--method", "ours", "--option", "mixture_weights=stacked"], "mixture_weights must be one of"),
    (["search", "--method", "ours", "--budget", "3", "--option", "mixture_weights=forecast"],
     "add --option surrogate=gnn+proxies"),
    (["search", "--method", "bo", "--option", "n_init=0"], "n_init must be at least 1"),
    (["search", "--method", "bo", "--option", "n_init=nan"], "must be a whole number"),
    (["search", "--method", "reinforce", "--option", "lr=0"], "lr must be at least"),
    (["search", "--method", "rea", "--option", "warm_start=yes"], "warm_start must be one of none, net2net"),
    (["search", "--method", "ls", "--option", "warm_epochs=0"], "warm_epochs must be at least 1"),
    (["search", "--method", "pnas", "--option", "beam=0"], "beam must be at least 1"),
    (["search", "--method", "hyperband", "--option", "min_epochs=0"], "min_epochs must be at least 1"),
    (["search", "--method", "bohb", "--option", "reduction_factor=1"], "reduction_factor must be at least 2"),
    (["search", "--method", "random", "--budget-epochs", "0"], "must be at least 1"),
    (["search", "--method", "random", "--budget-epochs", "5"], "needs a dataset to train on"),
    (["search", "--method", "random", "--dataset", "digits", "--budget-epochs", "2"], "less than one full training"),
    (["search", "--method", "reinforce", "--option", "lr=fast"], "must be a finite number"),
    (["search", "--method", "reinforce", "--option", "lr=inf"], "must be a finite number"),
    (["search", "--method", "nsga2", "--option", "pop_size=1"], "pop_size must be at least 2"),
    (["search", "--method", "ours", "--option", "source_spread=-1"], "source_spread must be at least 0"),
    (["search", "--method", "ours", "--option", "source_spread=yes"], "source_spread must be a whole number"),
    (["search", "--method", "ours", "--option", "source_portfolio=-2"], "source_portfolio must be at least 0"),
    (["search", "--method", "ours", "--option", "front_portfolio=-1"], "front_portfolio must be at least 0"),
    (["search", "--method", "ours", "--option", "acquisition=foo"], "acquisition must be one of"),
    (["search", "--method", "ours", "--option", "guidance=-1"], "guidance must be at least 0"),
    (["search", "--method", "ours", "--option", "pool=0"], "pool must be at least 1"),
    (["search", "--method", "ours", "--option", "frobnicate=1"], "valid options are ours: batch (int >= 1)"),
    (["search", "--method", "rea", "--option", "novalue"], "write KEY=VALUE"),
    (["search", "--method", "rea", "--option", "=3"], "write KEY=VALUE"),
    (S + ["--objectives", "accuracy:up"], "direction must be"),
    (S + ["--objectives", "robustness:max"], "not in the NB201 benchmark"),
    (S + ["--objectives", "speed:max"], "unknown metric"),
    (S + ["--stop-at", "accuracy"], "write METRIC:VALUE"),
    (S + ["--stop-at", "flops:10"], "write METRIC:VALUE"),
    (S + ["--stop-at", "accuracy:high"], "write METRIC:VALUE"),
    (S + ["--prior", "magic"], "invalid choice"),
    (S + ["--prior", "transfer", "--dataset", "digits"], "--prior transfer uses the other NB201 tables"),
    (S + ["--space", "nb999"], "unknown search space"),
    (S + ["--backend", "spark"], "invalid choice"),
    (S + ["--dataset", "svhn"], "unknown dataset"),
    (S + ["--out", "{tmp}/journal_garbage"], "cannot read search journal"),
    (S + ["--out", "{tmp}/journal_list"], "not an object"),
    (S + ["--out", "{tmp}/journal_edited"], "no longer matches the sha256"),
    # --- compare
    (["compare", "--methods", "rea,frobnicate"], "unknown method"),
    (["compare", "--methods", "rea,random", "--option", "population_size=1"], "population_size must be at least 2"),
    (["compare", "--methods", "random,ls", "--option", "population_size=20"], "unknown option for random, ls"),
    (["compare", "--methods", "rea,random", "--out", "{tmp}/regular_file"], "is an existing file"),
    *_numeric(["compare", "--methods", "random"], "--budget-minutes", FLOAT_POS),
    (["compare", "--methods", "darts,frobnicate", "--budget-minutes", "1"], "unknown method"),
    (["compare", "--methods", "darts", "--prior", "transfer", "--budget-minutes", "1"], "cannot be combined"),
    (["compare", "--methods", "darts", "--stop-at", "accuracy:90", "--budget-minutes", "1"], "cannot be combined"),
    (["compare", "--methods", "darts", "--option", "lr=1", "--budget-minutes", "1"], "darts: (none)"),
    (["compare", "--methods", "rea", "--option", "population_size=x", "--budget-minutes", "1"], "whole number"),
    (["compare", "--methods", "rea", "--budget-minutes", "1", "--space", "nb999"], "unknown search space"),
    *_numeric(["compare", "--methods", "rea"], "--seeds", INT_POS[:2]),
    # --- run
    *_numeric(RUN, "--n-cells", INT_POS[:3]),
    *_numeric(RUN, "--candidates", INT_POS[:2] + [("100000", "cap of 10,000")]),
    *_numeric(RUN, "--guidance", FLOAT_NONNEG),
    *_numeric(RUN, "--epochs", INT_POS[:3]),
    *_numeric(RUN, "--max-subnets", INT_POS[:2]),
    *_numeric(RUN, "--seed", SEED[:2]),
    *_numeric(RUN, "--channels", INT_POS[:2]),
    (RUN + ["--robustness-data", "/nonexistent.csv"], "does not exist"),
    (RUN + ["--robustness-data", "{tmp}"], "is not a file"),
    (["run", "--out", "{tmp}/regular_file"], "is an existing file"),
    (["run", "--out", "/proc/gennas_run"], "cannot write in"),
    (RUN + ["--space", "dag6"], "generates NB201 cells"),
    (RUN + ["--n-cells", "10", "--candidates", "5"], "must be at least --n-cells"),
    (RUN + ["--objectives", "accuracy:sideways"], "direction must be"),
    (RUN + ["--dataset", "imagenet"], "unknown dataset"),
    (RUN + ["--dataset", "npz:/nonexistent.npz"], "nonexistent.npz"),
    # --- damaged run directories
    (["run", "--out", "{tmp}/run_garbage_runjson"], "run.json: it is unreadable or corrupt"),
    (["run", "--out", "{tmp}/run_list_runjson"], "not an object"),
    (["run", "--out", "{tmp}/run_garbage_generated", "--channels", "4", "--cells-per-stage", "1"],
     "generated.json: it is unreadable or corrupt"),
    (["run", "--out", "{tmp}/run_binary_generated", "--channels", "4", "--cells-per-stage", "1"], "generated.json"),
    (["run", "--out", "{tmp}/run_edited_generated", "--channels", "4", "--cells-per-stage", "1"],
     "no longer matches the sha256"),
    (["run", "--out", "{tmp}/run_garbage_ckpt", "--channels", "4", "--cells-per-stage", "1"],
     "supernet.ckpt is unreadable or corrupt"),
    (["run", "--out", "{tmp}/run_flipped", "--channels", "4", "--cells-per-stage", "1"], "supernet.pt is corrupt"),
    (["run", "--out", "{tmp}/run_truncated", "--channels", "4", "--cells-per-stage", "1"], "delete or move"),
    (["prune", "{tmp}/run_flipped", "--max-flops", "1", "--json"], "no longer matches the sha256"),
    (["prune", "{tmp}/run_truncated", "--max-flops", "10"], "delete or move"),
    (["prune", "{tmp}/run_garbage_pt", "--max-flops", "10"], "unreadable or corrupt"),
    (["prune", "{tmp}/nonexistent_run", "--max-flops", "10"], "nonexistent_run"),
    (["prune", "{tmp}/run_flipped", "--finetune", "-1"], "--finetune takes a number of epochs >= 0"),
    (["prune", "{tmp}/run_flipped", "--verify", "--finetune", "2"], "cannot be combined with --finetune"),
    (["prune", "{tmp}/run_flipped", "--min-robustness", "half"], "takes a number or a percentage"),
    (["prune", "{tmp}/run_flipped", "--min-robustness", "45"], "fraction in [0, 1]"),
    (["prune", "{tmp}/run_flipped", "--min-accuracy", "97%%"], "takes a number or a percentage"),
    (["prune", "{tmp}/run_flipped", "--max-flops", "abc"], "invalid float value"),
    (["prune", "{tmp}/run_flipped", "--maximize", "speed"], "invalid choice"),
    (["prune", "{tmp}/run_flipped", "--maximize", "robustness", "--minimize", "flops"], "not allowed with"),
    (["prune"], "RUN_DIR"),
    (["prune", "{tmp}/run_flipped", "--latency-table", "{tmp}/no_such_lut.csv"], "does not exist"),
    (["prune", "{tmp}/run_flipped", "--latency-table", "{tmp}/lut_dag6.csv"], "was measured for space 'dag6'"),
    # --- latency tables: missing, not a table, damaged, for another space or skeleton; a device there is none of
    (["cost", "nb201", RESNET, "--latency-table", "{tmp}/no_such_lut.csv"], "does not exist"),
    (["cost", "nb201", RESNET, "--latency-table", "{tmp}/binary"], "cannot be read as text"),
    (["cost", "nb201", RESNET, "--latency-table", "{tmp}/regular_file"], "is not a gennas latency table"),
    (["cost", "nb201", RESNET, "--latency-table", "{tmp}/lut_negative.csv"], "finite times >= 0"),
    (["cost", "nb201", RESNET, "--latency-table", "{tmp}/lut_good.csv", "--channels", "8"],
     "was measured on the skeleton"),
    (G + ["--objectives", "accuracy:max,latency:min", "--latency-table", "{tmp}/lut_truncated.csv"], "lacks"),
    (S + ["--objectives", "accuracy:max,latency:min", "--latency-table", "{tmp}/lut_nonnum.csv"], "non-number"),
    (S + ["--objectives", "accuracy:max,latency:min", "--latency-table", "{tmp}/lut_dag6.csv"],
     "was measured for space 'dag6', not 'nb201'"),
    (S + ["--objectives", "accuracy:max,latency:min"], "latency with --latency-table"),
    (["compare", "--budget-minutes", "1", "--latency-table", "{tmp}/lut_good.csv"], "cannot be combined"),
    (["run", "--out", "{tmp}/run_lut", "--latency-table", "{tmp}/no_such_lut.csv"], "does not exist"),
    (["run", "--out", "{tmp}/run_lut", "--latency-table", "{tmp}/lut_dag6.csv"], "was measured for space 'dag6'"),
    (["latency-table", "--out", "{tmp}/lut_new.csv", "--device", "tpu"], "'tpu'"),
    (["latency-table", "--out", "{tmp}/lut_new.csv", "--device", "cuda:99"], "'cuda:99'"),
    (["latency-table", "--out", "{tmp}/lut_new.csv", "--space", "dag99"], "3 <= N <= 12"),
]


@pytest.mark.parametrize("argv, phrase", CASES, ids=[" ".join(a)[:80] or "(none)" for a, _ in CASES])
def test_bad_input_gets_exit_2_and_a_clear_message(argv, phrase, files, capsys):
    code = main(_format(argv, files))
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    assert "Traceback" not in err + out
    assert phrase in err, err
    assert [line for line in err.splitlines() if line.startswith("error:")], err  # one error: line


def test_the_table_is_large():
    assert len(CASES) >= 200


def test_crafted_cifar_batch_runs_no_code(files, capsys):
    assert main(["train", RESNET, "--dataset", "cifar10", "--data-root", f"{files['tmp']}/crafted"]) == 2
    assert "refused, nothing was run" in capsys.readouterr().err
    assert not Path(files["tmp"], "PWNED").exists()
    # The same file, plainly unpickled, does run its command: the refusal is what protects.
    crafted = Path(files["tmp"], "crafted", "cifar-10-batches-py", "data_batch_1")
    target = Path(files["tmp"], "PWNED")
    pickle.loads(crafted.read_bytes())
    assert target.exists()
    target.unlink()


def test_second_writer_of_an_output_directory_is_refused(files, capsys, tmp_path):
    with output_lock(tmp_path / "out"):
        assert main(S + ["--out", str(tmp_path / "out")]) == 2
        assert "is being written by" in capsys.readouterr().err
        assert main(["prune", f"{files['tmp']}/run_flipped", "--out", str(tmp_path / "out")]) == 2
        assert "is being written by" in capsys.readouterr().err
        assert main(["run", "--out", str(tmp_path / "out")]) == 2
        assert "is being written by" in capsys.readouterr().err
    assert main(S + ["--out", str(tmp_path / "out"), "--json"]) == 0  # released at the end of the block


# ------------------------------------------------- a few in real processes
def _cli(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "gennas.cli", *argv], capture_output=True, text=True, env=env,
                          timeout=120, **kwargs)


@pytest.mark.parametrize("argv, phrase", [
    (["generate", "--n", "5", "--guidance", "inf"], "not a finite number"),
    (["generate", "--n", "5", "--constraint", "flops<=0"], "smallest flops"),
    (["search", "--method", "rea", "--seed", "-1"], "must be at least 0"),
])
def test_bad_input_in_a_real_process(argv, phrase):
    proc = _cli(*argv)
    assert proc.returncode == 2 and phrase in proc.stderr and "Traceback" not in proc.stderr


def test_ctrl_c_says_what_was_saved_and_a_second_one_exits_at_once(tmp_path):
    """SIGINT during `predictor pretrain` (which saves only at the end): a true message, no traceback."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "gennas.cli", "predictor", "pretrain", "--dataset", "cifar10", "--steps", "100000",
            "--ensemble", "1", "--out", str(tmp_path / "p.pt")]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    time.sleep(6)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "no checkpoint was written" in err and "Traceback" not in err
    assert not (tmp_path / "p.pt").exists()
