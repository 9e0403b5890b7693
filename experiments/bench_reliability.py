"""Reliability: bad input, damaged files and faults, counted.

Runs every case of the bad-input table (tests/test_bad_input.py) through the real entry
point with a watchdog, the issue's original list in real processes, and fault scenarios
(SIGKILL and Ctrl-C during a search, SIGKILL during `gennas run` training and measurement,
each resumed and compared with an uninterrupted run; a second writer; Ctrl-C and a second
Ctrl-C; a stale temp file of a killed writer). Writes experiments/results/reliability.{json,md}.

    python experiments/bench_reliability.py [--out experiments/results]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from damage import craft_files  # noqa: E402
from test_bad_input import CASES, _format  # noqa: E402

from gennas.cli import main  # noqa: E402
from gennas.io import write_json, write_text  # noqa: E402
from gennas.provenance import provenance, provenance_markdown  # noqa: E402

HANG_SECONDS = 60
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}

#: The issue's own list, run as a user would (real processes); {tmp} is the crafted folder.
ISSUE_COMMANDS = [
    ["generate", "--n", "5", "--guidance", "inf"], ["generate", "--n", "5", "--guidance", "nan"],
    ["generate", "--n", "5", "--constraint", "flops<=0"], ["generate", "--n", "100000000"],
    ["predictor", "predict", "{tmp}/prior.pt", "--cells", "{tmp}/binary"],
    ["predictor", "predict", "{tmp}/prior.pt", "--cells", "{tmp}/blank"],
    ["search", "--method", "rea", "--budget", "5", "--seed", "-1"],
    ["search", "--method", "rea", "--budget", "5", "--option", "population_size=abc"],
    ["search", "--method", "rea", "--budget", "5", "--option", "population_size=0"],
    ["search", "--method", "rea", "--budget", "5", "--option", "frobnicate=1"],
    ["search", "--method", "rea", "--budget", "5", "--out", "{tmp}/regular_file"],
    ["compare", "--methods", "rea,random", "--budget", "5", "--out", "/proc/gennas_cmp"],
    ["generator", "train", "--steps", "-5"], ["generator", "train", "--steps", "0"],
    ["generator", "train", "--out", "/proc/gennas/x.pt"], ["generator", "train", "--out", "{tmp}"],
    ["run", "--guidance", "-5", "--out", "{tmp}/r1"], ["run", "--robustness-data", "/nonexistent.csv", "--out", "{tmp}/r2"],
    ["predictor", "fit", "--metric", "accuracy", "--data", "{tmp}/dup.csv", "--out", "{tmp}/f.pt"],
    ["run", "--out", "{tmp}/run_garbage_ckpt", "--channels", "4", "--cells-per-stage", "1"],
    ["run", "--out", "{tmp}/run_garbage_generated", "--channels", "4", "--cells-per-stage", "1"],
    ["run", "--out", "{tmp}/run_garbage_runjson"],
    ["prune", "{tmp}/run_flipped", "--max-flops", "1", "--json"],
    ["prune", "{tmp}/run_truncated", "--max-flops", "1"],
    ["train", "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",
     "--dataset", "cifar10", "--data-root", "{tmp}/crafted"],
]

#: Which loader each crafted file exercises (by a word of its placeholder path).
LOADERS = {"binary": "text files (cells, measurements)", "blank": "text files (cells, measurements)",
           "empty": "text files (cells, measurements)", "comments": "text files (cells, measurements)",
           ".csv": "measurements CSV", "garbage.pt": "torch checkpoints", "truncated.pt": "predictor checkpoint",
           "list.pt": "torch checkpoints", "other.pt": "torch checkpoints", "generator_trunc": "generator checkpoint",
           "prior.pt --cells": None,
           **{f"/run_{damage}": "run directory (supernet.pt/.ckpt, generated.json, run.json)"
              for damage in ("flipped", "truncated", "garbage", "edited", "binary", "list")},
           "journal_": "search journal", "crafted": "CIFAR batch pickle"}


def _loader(argv: list[str]) -> str | None:
    text = " ".join(argv)
    for key, name in LOADERS.items():
        if key in text and name:
            return name
    return None


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang


def run_in_process(argv: list[str]) -> dict:
    """One case through :func:`main` with a watchdog; what a user would have seen."""
    out, err = io.StringIO(), io.StringIO()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_SECONDS)
    start = time.monotonic()
    code, escaped = None, None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except _Hang:
        code = "hang"
    except BaseException as exc:  # noqa: BLE001 - anything escaping main is a traceback for a user
        escaped = f"{type(exc).__name__}: {exc}"
    finally:
        signal.alarm(0)
    text = err.getvalue()
    return {"argv": argv, "code": code, "seconds": round(time.monotonic() - start, 2),
            "traceback": escaped is not None or "Traceback" in text + out.getvalue(), "escaped": escaped,
            "error_line": any(line.startswith("error:") for line in text.splitlines()),
            "message": next((line for line in text.splitlines() if line.startswith("error:")), text[-300:])}


def run_process(argv: list[str], timeout: float = 180) -> dict:
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "gennas.cli", *argv], capture_output=True, text=True, env=ENV,
                              timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"argv": argv, "code": "hang", "traceback": False, "seconds": timeout, "message": ""}
    return {"argv": argv, "code": proc.returncode, "traceback": "Traceback" in proc.stderr + proc.stdout,
            "seconds": round(time.monotonic() - start, 2),
            "message": next((l for l in proc.stderr.splitlines() if l.startswith("error:")), proc.stderr[-300:])}


# ------------------------------------------------------------------ faults
def _history(path: Path) -> list:
    return json.loads(path.read_text())["run"]["history"]


def fault_kill_and_resume(tmp: Path, sig: int, method: str = "bo", budget: int = 150) -> dict:
    """Interrupt a search (SIGKILL or SIGINT) part-way, resume it; the history must equal an uninterrupted run."""
    argv = ["search", "--method", method, "--budget", str(budget), "--seed", "3"]
    reference, resumed = tmp / f"ref_{method}", tmp / f"cut_{method}_{sig}"
    run_process(argv + ["--out", str(reference)])
    proc = subprocess.Popen([sys.executable, "-m", "gennas.cli", *argv, "--out", str(resumed)], env=ENV, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = resumed / method / "seed_3.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and 0 < len(_history(journal)) < budget:
            break  # a journal with some, not all, queries: interrupt now
        time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    cut_at = len(_history(journal)) if journal.exists() else 0
    again = run_process(argv + ["--out", str(resumed)])
    same = journal.exists() and _history(journal) == _history(reference / method / "seed_3.json")
    temps = [p.name for p in resumed.rglob("*.tmp")]
    return {"fault": f"{signal.Signals(sig).name} during `gennas search --method {method}`, then rerun",
            "interrupted_after_queries": cut_at, "budget": budget, "traceback": "Traceback" in err,
            "message": err.strip()[-200:], "resumed_exit": again["code"], "identical_history": same,
            "temp_files_left": temps,
            "survived": 0 < cut_at < budget and same and again["code"] == 0 and not temps and "Traceback" not in err}


RUN = ["run", "--epochs", "6", "--n-cells", "3", "--candidates", "8", "--max-subnets", "6", "--channels", "4",
       "--cells-per-stage", "1", "--json"]


def _subnet_rows(path: Path) -> list[dict]:
    """subnets.csv as typed values, without the latency columns (the ones measured by the clock); NaN as None."""
    from gennas.supernet.table import read_subnet_table

    return [{k: None if v != v else v for k, v in row.items() if k not in ("latency_ms", "latency_spread_ms")}
            for row in read_subnet_table(path)]


def _weights(path: Path) -> dict:
    from gennas.io import load_checked

    return load_checked(path, "supernet")["state"]


def fault_kill_run(tmp: Path, reference: Path, stage: str) -> dict:
    """SIGKILL `gennas run` during training or measurement, rerun it; weights and measurements must match."""
    import torch

    out = tmp / f"run_killed_{stage}"
    proc = subprocess.Popen([sys.executable, "-m", "gennas.cli", *RUN, "--out", str(out)], env=ENV, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def reached() -> bool:
        if stage == "training":
            return (out / "supernet.ckpt").exists() and not (out / "supernet.pt").exists()
        csv_path = out / "subnets.csv"
        return csv_path.exists() and len(csv_path.read_text().splitlines()) >= 2 and not (out / "results.json").exists()

    deadline = time.monotonic() + 300
    while proc.poll() is None and not reached() and time.monotonic() < deadline:
        time.sleep(0.05)
    killed = proc.poll() is None
    proc.kill()
    proc.communicate()
    again = run_process(RUN + ["--out", str(out)], timeout=300)
    same_weights = all(torch.equal(a, b) for a, b in zip(_weights(out / "supernet.pt").values(),
                                                       _weights(reference / "supernet.pt").values()))
    same_rows = _subnet_rows(out / "subnets.csv") == _subnet_rows(reference / "subnets.csv")
    temps = [p.name for p in out.rglob("*.tmp")]
    return {"fault": f"SIGKILL during `gennas run` {stage}, then rerun", "killed_mid_stage": killed,
            "resumed_exit": again["code"], "bit_identical_weights": same_weights,
            "identical_subnet_measurements": same_rows, "temp_files_left": temps,
            "survived": killed and again["code"] == 0 and same_weights and same_rows and not temps}


def fault_second_writer(tmp: Path) -> dict:
    out = tmp / "locked"
    first = subprocess.Popen([sys.executable, "-m", "gennas.cli", "search", "--method", "bo", "--budget", "200",
                              "--out", str(out)], env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (out / ".gennas.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    second = run_process(["search", "--method", "rea", "--budget", "5", "--out", str(out)])
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=60)
    return {"fault": "a second `gennas search --out DIR` while the first writes DIR", "second_exit": second["code"],
            "message": second["message"], "survived": second["code"] == 2 and "being written" in second["message"]}


def fault_ctrl_c(tmp: Path, argv: list[str], phrase: str, twice: bool = False) -> dict:
    proc = subprocess.Popen([sys.executable, "-m", "gennas.cli", *argv], env=ENV, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)
    proc.send_signal(signal.SIGINT)
    if twice:
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    _, err = proc.communicate(timeout=60)
    seconds = round(time.monotonic() - start, 2)
    # A second Ctrl-C that lands while the interpreter shuts down ends it by the signal's
    # default action: Popen reports -2, a shell $? reads 130 as for exit(130).
    exits = (130, -signal.SIGINT) if twice else (130,)
    return {"fault": f"{'two Ctrl-C' if twice else 'Ctrl-C'} during `gennas {' '.join(argv[:2])}`",
            "exit": proc.returncode, "seconds_to_exit": seconds,
            "message": err.strip()[-200:], "traceback": "Traceback" in err,
            "survived": proc.returncode in exits and "Traceback" not in err and (seconds < 2 if twice else phrase in err)}


def fault_stale_temp(tmp: Path) -> dict:
    """A killed writer's temp file is removed by the next write of the same file."""
    out = tmp / "stale"
    run_process(["search", "--method", "random", "--budget", "3", "--out", str(out)])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = out / "random" / f".seed_0.json.{int(dead.stdout)}.x1y2.tmp"
    stale.write_bytes(b"")
    run_process(["search", "--method", "random", "--budget", "6", "--out", str(out)])
    return {"fault": "0-byte temp file of a killed writer beside a journal, then a rerun",
            "temp_left": stale.exists(), "survived": not stale.exists()}


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "experiments" / "results"))
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    info = provenance()
    info["commit_full"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        files = craft_files(tmp)
        cases = [run_in_process(_format(argv, files)) for argv, _ in CASES]
        issue = [run_process(_format(argv, files)) for argv in ISSUE_COMMANDS]
        reference = tmp / "run_reference"
        run_process(RUN + ["--out", str(reference)], timeout=300)
        faults = [fault_kill_and_resume(tmp, signal.SIGKILL), fault_kill_and_resume(tmp, signal.SIGINT),
                  fault_kill_run(tmp, reference, "training"), fault_kill_run(tmp, reference, "measurement"),
                  fault_second_writer(tmp), fault_stale_temp(tmp),
                  fault_ctrl_c(tmp, ["generate", "--n", "3000", "--guidance", "60"], "nothing was saved"),
                  fault_ctrl_c(tmp, ["predictor", "pretrain", "--dataset", "cifar10", "--steps", "100000",
                                     "--ensemble", "1", "--out", str(tmp / "p.pt")], "no checkpoint was written"),
                  fault_ctrl_c(tmp, ["predictor", "pretrain", "--dataset", "cifar10", "--steps", "100000",
                                     "--ensemble", "1", "--out", str(tmp / "p.pt")], "", twice=True)]
        code_ran = (tmp / "PWNED").exists()
    rows = cases + issue
    loaders = Counter(_loader(r["argv"]) for r in rows if _loader(r["argv"]))
    summary = {
        "inputs_tried": len(rows), "in_process_cases": len(cases), "real_process_commands": len(issue),
        "exit_2": sum(r["code"] == 2 for r in rows), "tracebacks": sum(bool(r["traceback"]) for r in rows),
        "hangs": sum(r["code"] == "hang" for r in rows),
        "clear_error_line": sum(r.get("error_line", r["message"].startswith("error:")) for r in rows),
        "other_exit": [r for r in rows if r["code"] not in (2, "hang")],
        "faults_tried": len(faults), "faults_survived": sum(f["survived"] for f in faults),
        "crafted_files_per_loader": dict(loaders), "code_executed_by_crafted_files": int(code_ran),
        "slowest_case_seconds": max(r["seconds"] for r in rows),
    }
    payload = {"provenance": info, "summary": summary, "faults": faults, "cases": rows}
    out = Path(args.out)
    write_json(out / "reliability.json", payload)
    write_text(out / "reliability.md", markdown(payload))
    print(json.dumps(summary, indent=2))


def markdown(payload: dict) -> str:
    s, info = payload["summary"], payload["provenance"]
    lines = ["# Reliability: bad input, damaged files, faults\n\n", provenance_markdown(info),
             f"- full commit: `{info['commit_full']}`\n\n",
             "## Inputs\n\n| | count |\n|---|---|\n",
             f"| inputs tried | {s['inputs_tried']} ({s['in_process_cases']} table cases in-process, "
             f"{s['real_process_commands']} of the issue's commands in real processes) |\n",
             f"| exit code 2 | {s['exit_2']} |\n| tracebacks | {s['tracebacks']} |\n| hangs (> {HANG_SECONDS} s) | "
             f"{s['hangs']} |\n| one clear `error:` line | {s['clear_error_line']} |\n",
             f"| other exit codes | {len(s['other_exit'])} |\n| slowest case | {s['slowest_case_seconds']} s |\n\n",
             "## Faults\n\n| fault | survived | detail |\n|---|---|---|\n"]
    for f in payload["faults"]:
        detail = {k: v for k, v in f.items() if k not in ("fault", "survived", "message")}
        lines.append(f"| {f['fault']} | {'yes' if f['survived'] else 'NO'} | {json.dumps(detail)} |\n")
    lines.append(f"\nFaults tried {s['faults_tried']}, survived {s['faults_survived']}; data lost: "
                 f"{s['faults_tried'] - s['faults_survived']} scenarios with a difference.\n\n")
    lines.append("Exit -2 for two Ctrl-C: the second one landed while the interpreter was shutting down after the "
                 "first, and ended it by the signal's default action at once (a shell reports 130, as for exit 130).\n\n")
    lines.append("## Crafted files per loader\n\n| loader | inputs naming a crafted file |\n|---|---|\n")
    lines += [f"| {k} | {v} |\n" for k, v in sorted(s["crafted_files_per_loader"].items())]
    lines.append(f"\nCode executed by crafted files: {s['code_executed_by_crafted_files']} (a CIFAR batch that "
                 "calls os.system when plainly unpickled; the marker file it would create does not exist).\n")
    if s["other_exit"]:
        lines.append("\n## Inputs without exit code 2\n\n")
        lines += [f"- `{' '.join(r['argv'])}`: exit {r['code']}\n" for r in s["other_exit"]]
    return "".join(lines)


if __name__ == "__main__":
    main_bench()
