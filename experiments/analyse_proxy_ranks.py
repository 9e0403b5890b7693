"""Analysis, not a search: where each zero-cost proxy ranks every NB201 dataset's best cells.

A proxy that ranks a table's optimum near the top helps a search that uses it find that
optimum; one that ranks it in the hundreds cannot, however well it ranks the table as a
whole (Kendall τ). This prints, per dataset, the rank of the optimum and of the next
nine best cells under each free feature of :func:`gennas.metrics.proxies.proxy_features`
(the table is read only to name the best cells; the proxies never see it).

    python experiments/analyse_proxy_ranks.py [--out experiments/results]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from gennas.bench.nb201 import DATASETS, load_table
from gennas.io import write_json, write_text
from gennas.metrics.proxies import PROXIES, ProxyTable, proxy_features
from gennas.provenance import provenance, provenance_markdown
from gennas.space import Cell, nb201_space

FEATURES = (*PROXIES, "log_flops", "log_params")
TOP = 10


def ranks_of_best(features: np.ndarray, accuracy: np.ndarray) -> dict:
    """Per feature, the 1-based rank (higher feature = better rank) of the ``TOP`` most accurate cells."""
    best = np.argsort(-accuracy)[:TOP]
    return {name: [int((features[:, j] > features[i, j]).sum()) + 1 for i in best]
            for j, name in enumerate(FEATURES)} | {"archs": [int(i) for i in best]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="experiments/results")
    args = parser.parse_args()
    ProxyTable.load_or_build(nb201_space(), progress=True)
    table = load_table()
    features = proxy_features([Cell.from_string(a) for a in table.archs])
    results = {"provenance": provenance(), "cells": len(table.archs),
               "datasets": {d: ranks_of_best(features, table.accuracy[d]) for d in DATASETS}}
    for d, r in results["datasets"].items():
        r["archs"] = [table.archs[i] for i in r["archs"]]
    lines = ["# Where the zero-cost proxies rank each dataset's best cells", "",
             f"Rank among the {results['cells']:,} NB201 cells (1 = the proxy's highest) of the table's optimum and "
             f"of its {TOP} most accurate cells, under each free feature (`gennas/metrics/proxies.py`).", "",
             "| dataset | feature | optimum's rank | ranks of the top 10 (sorted) |", "|---|---|---|---|"]
    for d, r in results["datasets"].items():
        lines += [f"| {d} | {name} | {r[name][0]} | {', '.join(map(str, sorted(r[name])))} |" for name in FEATURES]
    lines += ["", provenance_markdown(results["provenance"])]
    out = Path(args.out) / "proxy_ranks.json"
    write_json(out, results)
    write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
