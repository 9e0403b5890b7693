"""gennas: generate neural architectures with guided graph diffusion.

The few calls most users need are here (see :mod:`gennas.api`)::

    import gennas
    cells = gennas.generate("accuracy:max,flops:min", n=10, dataset="cifar10")
    table = gennas.compare(["rea", "random"], dataset="cifar10", budget=50)

They load lazily, so ``import gennas`` stays cheap. The sub-packages have one job each:
``space`` (cells, search spaces), ``nn`` (network builder), ``metrics`` (metric registry,
costs), ``bench`` (oracles), ``data`` (datasets), ``train`` (trainer, attacks), ``search``
(every search method behind one interface), ``weightsharing`` (DARTS, GDAS), ``supernet``
(the main job) and ``subcommands`` (the command line).
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["compare", "cost", "design", "find", "generate", "prune"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from gennas import api

        return getattr(api, name)
    raise AttributeError(f"module 'gennas' has no attribute {name!r}")
