"""The Python API in a few calls, in the spirit of pymoo's ``minimize``: design, find, compare.

Each function is what one ``gennas`` command does, with the same defaults, returning what
that command prints with ``--json``::

    import gennas
    cells = gennas.generate("accuracy:max,flops:min", n=10, dataset="cifar10")
    found = gennas.find("rea", dataset="cifar10", budget=50)
    table = gennas.compare(["rea", "random"], dataset="cifar10", budget=50, seeds=3)
    summary = gennas.design("digits", out="runs/digits")          # generate -> supernet -> measure
    model = gennas.prune("runs/digits", max_flops=1.0, maximize="accuracy")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


def cost(arch: str, space: str = "nb201", *, latency_table: str | Path | None = None) -> dict[str, float]:
    """Exact FLOPs (M), params (M) and peak memory (bytes) of an architecture on its space's reference skeleton.

    Args:
        arch: the cell in NAS-Bench-201 notation, or for ``darts`` a genotype (DARTS notation, compact, or a
            published name such as ``DARTS_V2``).
        space: ``nb201``, ``darts`` or ``dagN``; the skeleton is NAS-Bench-201's, or DARTS' C=36, 20 layers.
        latency_table: a file of ``gennas latency-table`` (measured on that skeleton): adds its latency.

    Returns:
        ``{"flops", "params", "memory_bytes"}``, and ``lut_latency_ms`` with a latency table.
    """
    from gennas.metrics.lut import latency_table_scope
    from gennas.space import get_space

    chosen = get_space(space)
    with latency_table_scope(latency_table, space):
        return chosen.costs(chosen.parse(arch))


def generate(objectives: str = "accuracy:max,flops:min", n: int = 100, *, space: str = "nb201",
             dataset: str | None = None, constraints: Sequence[str] = (), guidance: float = 60.0, seed: int = 0,
             predictor: str | None = None, generator: str | None = None,
             latency_table: str | Path | None = None) -> list[dict[str, Any]]:
    """Cells near the Pareto front of ``objectives``, by guided graph diffusion (``gennas generate``).

    Args:
        objectives: ``METRIC:max|min,...``.
        n: distinct cells to return.
        space: ``nb201`` or ``dagN``.
        dataset: NB201 target whose transfer prior guides accuracy (its own table is never used).
        constraints: hard limits such as ``"flops<=100"``.
        guidance: guidance scale; 0 samples unguided.
        seed: the sampler's seed.
        predictor, generator: checkpoints (default: the committed ones).
        latency_table: a file of ``gennas latency-table``: ``latency`` in objectives and constraints is its
            (free, exact) latency.

    Returns:
        One row per cell: ``arch``, the objectives' predicted values, and ``pareto``.
    """
    from diffusion.commands import run_generate
    from gennas.metrics.lut import latency_table_scope

    with latency_table_scope(latency_table, space):
        return run_generate(space, objectives, n, dataset, list(constraints), guidance, seed, predictor,
                            generator)["cells"]


def compare(methods: Sequence[str], *, dataset: str = "cifar10", space: str = "nb201", budget: int = 100,
            seeds: int = 1, seed: int = 0, objectives: str = "accuracy:max", prior: str = "none",
            options: dict[str, Any] | None = None, epochs: int = 4, stop_at: str | None = None,
            out: str | Path | None = None, latency_table: str | Path | None = None) -> dict[str, Any]:
    """Several methods on equal terms, one summary (``gennas compare``).

    Args:
        methods: registered black-box method names (see :data:`gennas.search.REGISTRY`).
        dataset: an NB201 table (cifar10, cifar100, ImageNet16-120) or a dataset to train on.
        space, budget, seeds, seed, objectives, prior, options, epochs, stop_at: as the command's flags.
        out: journals (resume), summary and plots; None keeps nothing.
        latency_table: a file of ``gennas latency-table``: ``latency`` in objectives is its free latency.

    Returns:
        ``{"settings", "skeleton", "summary": {method: ...}, "runs": {method: [SearchRun, ...]}}``.
    """
    from gennas.metrics.lut import latency_table_scope
    from gennas.search.commands import run_methods
    from gennas.search.methods import parse_methods
    from gennas.search.runner import SearchSpec

    spec = SearchSpec(space=space, dataset=dataset, budget=budget, seeds=seeds, seed=seed, prior=prior,
                      objectives=objectives, options=dict(options or {}), epochs=epochs, stop_at=stop_at)
    with latency_table_scope(latency_table, space):
        return run_methods(spec, parse_methods(",".join(methods)), out)


def find(method: str, **settings: Any) -> dict[str, Any]:
    """One method over seeds (``gennas search``); ``settings`` as for :func:`compare`.

    Named ``find`` because ``gennas.search`` is the package of the methods themselves.

    Returns:
        ``{"settings", "skeleton", "summary", "runs": [SearchRun, ...]}`` for this method.
    """
    payload = compare([method], **settings)
    return {**payload, "summary": payload["summary"][method], "runs": payload["runs"][method]}


def design(dataset: str = "digits", out: str | Path = "runs/digits", *, device: str = "auto", progress: bool = False,
           **settings: Any) -> dict[str, Any]:
    """The main job (``gennas run``): generate cells, train one supernet, measure its subnets, export an example.

    Args:
        dataset: ``digits``, ``cifar10``, ``npz:PATH``, ...
        out: the run directory (what :func:`prune` reads); an interrupted run resumes from it.
        device: ``auto``, ``cpu`` or ``cuda``.
        progress: show progress bars.
        settings: further :class:`~gennas.supernet.run_settings.RunSettings` fields (``epochs``, ``n_cells``,
            ``latency_table`` to guide by a table's latency, ``space="darts"``, ...). The skeleton
            (``channels``, ``cells_per_stage``, ``layers``) not given is the space's default, as
            ``gennas run`` fills it in.

    Returns:
        The run's summary (``gennas run --json``).
    """
    from gennas.supernet.family import run_family
    from gennas.supernet.pipeline import RunSettings, run_pipeline

    family = run_family(settings.pop("space", RunSettings.space))
    skeleton = family.skeleton(settings.pop("channels", None), settings.pop("cells_per_stage", None),
                               settings.pop("layers", None))
    return run_pipeline(RunSettings(dataset=dataset, space=family.name, **skeleton, **settings), out, device=device,
                        progress=progress)


def prune(run_dir: str | Path, *, maximize: str | None = None, minimize: str | None = None,
          out: str | Path | None = None, device: str = "auto", verify: bool = False,
          latency_table: str | Path | None = None, **thresholds: float | str | None) -> dict[str, Any]:
    """After the search: the best measured subnet of ``run_dir`` under ``thresholds``, exported (``gennas prune``).

    Args:
        run_dir: written by :func:`design`.
        maximize, minimize: what to rank feasible subnets by (default: maximise accuracy).
        out: export directory (default ``RUN_DIR/export/<arch hash>``).
        device: where a verification retrains.
        verify: retrain the chosen subnet standalone and check every threshold on it.
        latency_table: judge ``max_latency_ms`` and ``minimize="latency"`` on this table's latency.
        thresholds: ``max_flops``, ``max_params``, ``max_memory_mb``, ``max_latency_ms``, ``min_accuracy``,
            ``min_robustness``.

    Returns:
        The choice and the export (``gennas prune --json``).
    """
    from gennas.supernet.commands import prune_run

    names = ("max_flops", "max_params", "max_memory_mb", "max_latency_ms", "min_accuracy", "min_robustness")
    unknown = sorted(set(thresholds) - set(names))
    if unknown:
        from gennas.errors import GennasError

        raise GennasError(f"unknown threshold(s) {unknown}; use {', '.join(names)}")
    return prune_run(run_dir, {n: thresholds.get(n) for n in names}, minimize or maximize or "accuracy", out=out,
                     device=device, verify=verify, latency_table=latency_table)
