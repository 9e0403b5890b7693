"""The one place ``gennas run`` learns what its search space is: a :class:`SupernetFamily` per space.

A family maps the run's ``--space`` to everything the main job needs of it: the
:class:`~gennas.space.protocol.ArchSpace` (parse, costs, build), the skeleton it trains on
a dataset, the subnet-space type and the supernet class merged from generated
architectures, the generator checkpoint, the cells round 0 probes, and the predictor
prior (the NB201 transfer prior; ``None`` for a space without an accuracy table, whose
predictor is then trained from the run's own measured probes only). Every stage of
the pipeline asks the run's family (or, given only a network skeleton, :func:`family_of`)
instead of calling NB201's functions, so adding a space to ``gennas run`` is one entry in
:data:`FAMILIES` plus its class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gennas.errors import GennasError
from gennas.space.space import get_space

#: Candidate architectures round 0 spreads its probes over, where a space cannot be listed.
PROBE_POOL = 256


class SupernetFamily:
    """What ``gennas run`` needs of one search space (subclasses fill it in)."""

    name: str
    #: The skeleton config class of the space's networks (how :func:`family_of` tells a skeleton's space).
    network_type: type
    #: Whether the space has a transfer prior for the predictor (else: trained from the run's probes only).
    has_prior: bool = True

    @property
    def space(self):
        return get_space(self.name)

    # ------------------------------------------------------------ architectures
    def parse(self, text: str) -> Any:
        return self.space.parse(text)

    def costs(self, arch: Any, network) -> dict[str, float]:
        return self.space.costs(arch, network)

    def flops(self, arch: Any, network) -> float:
        """``costs(...)["flops"]`` alone: what spreading probes and costing a timing probe need of thousands of cells."""
        return self.costs(arch, network)["flops"]

    def build(self, arch: Any, network):
        """The standalone network of ``arch`` on ``network``."""
        return self.space.build(arch, network)

    def arch_of(self, net) -> Any:
        """The architecture a standalone network of the space was built from."""
        raise NotImplementedError

    # ------------------------------------------------------------ skeleton
    def skeleton(self, channels: int | None, cells_per_stage: int | None, layers: int | None) -> dict:
        """RunSettings fields of the skeleton flags given (None: not given; the space's default)."""
        raise NotImplementedError

    def network(self, splits, settings):
        """The skeleton a run with ``settings`` trains on ``splits``."""
        raise NotImplementedError

    def network_from_dict(self, data: dict):
        raise NotImplementedError

    # ------------------------------------------------------------ supernet
    def subnet_space(self, archs: Sequence[Any]):
        raise NotImplementedError

    def subnet_space_from_dict(self, data: dict):
        raise NotImplementedError

    def supernet(self, subnets, network):
        raise NotImplementedError

    # ------------------------------------------------------------ generation and its predictor
    def generator_path(self) -> Path:
        from diffusion.commands import generator_path

        return generator_path(self.name)

    def prior(self, dataset: str):
        """The predictor a run starts from (None: no prior, the run's probes train one)."""
        return None

    def probe_candidates(self, seed: int) -> list:
        """The architectures round 0 chooses its probes among."""
        return self.space.sample(np.random.default_rng(seed), PROBE_POOL)

    def guides(self, metric: str, predictor, network, dataset: str) -> bool:
        """Whether generation can be guided for ``metric``: an exact soft cost, or a task the predictor has."""
        from gennas.metrics.task import task_name

        if metric in self.space.soft_costs(network):
            return True
        return predictor is not None and task_name(metric, dataset) in predictor.tasks


class NB201Family(SupernetFamily):
    """NAS-Bench-201 cells: the NB201 supernet, its transfer prior, every NB201 function as probe candidates."""

    name = "nb201"

    @property
    def network_type(self) -> type:
        from gennas.nn.network import NetworkConfig

        return NetworkConfig

    def parse(self, text: str):
        from gennas.space.cell import Cell

        return Cell.from_string(text)

    def costs(self, arch, network) -> dict[str, float]:
        from gennas.metrics.costs import cell_costs

        return cell_costs(arch, network)

    def flops(self, arch, network) -> float:
        from gennas.metrics.flops import analytic_flops_params

        return analytic_flops_params(arch, network)[0]  # without the peak-memory walk costs() also takes

    def build(self, arch, network):
        from gennas.nn.network import build_network

        return build_network(arch, network)

    def arch_of(self, net):
        return net.cell

    def skeleton(self, channels, cells_per_stage, layers) -> dict:
        if layers is not None:
            raise GennasError("--layers is the depth of a DARTS skeleton; an nb201 run takes --cells-per-stage")
        return {"channels": channels or 16, "cells_per_stage": cells_per_stage or 2, "layers": None}

    def network(self, splits, settings):
        from gennas.nn.network import NetworkConfig

        return NetworkConfig.for_data(splits, settings.channels, settings.cells_per_stage)

    def network_from_dict(self, data: dict):
        from gennas.nn.network import NetworkConfig

        return NetworkConfig(**data)

    def subnet_space(self, archs):
        from gennas.supernet.subnets import SubnetSpace

        return SubnetSpace.from_cells(list(archs))

    def subnet_space_from_dict(self, data: dict):
        from gennas.supernet.subnets import SubnetSpace

        return SubnetSpace.from_dict(data)

    def supernet(self, subnets, network):
        from gennas.supernet.model import Supernet

        return Supernet(subnets, network)

    def prior(self, dataset: str):
        from gennas.supernet.rounds import zero_shot_prior

        return zero_shot_prior(dataset)

    def probe_candidates(self, seed: int) -> list:
        from gennas.supernet.adapt import probe_candidates

        return probe_candidates()

    def guides(self, metric: str, predictor, network, dataset: str) -> bool:
        from gennas.metrics.task import task_name

        return metric != "pgd_accuracy" or task_name("pgd_accuracy", dataset) in predictor.tasks


class DartsFamily(SupernetFamily):
    """DARTS genotypes: the DARTS supernet of the generated genotypes; no accuracy table, so no prior."""

    name = "darts"
    has_prior = False

    @property
    def network_type(self) -> type:
        from gennas.nn.darts_network import DartsNetworkConfig

        return DartsNetworkConfig

    def arch_of(self, net):
        return net.genotype

    def skeleton(self, channels, cells_per_stage, layers) -> dict:
        if cells_per_stage is not None:
            raise GennasError("--cells-per-stage is the depth of an NB201 skeleton; a darts run takes --layers "
                              "(cells of the DARTS network)")
        default_channels, default_layers = self.space.training_skeleton
        return {"channels": channels or default_channels, "layers": layers or default_layers, "cells_per_stage": None}

    def network(self, splits, settings):
        return self.space.network_for_data(splits, settings.channels, settings.layers)

    def network_from_dict(self, data: dict):
        from gennas.nn.darts_network import DartsNetworkConfig

        return DartsNetworkConfig(**{k: v for k, v in data.items() if k != "kind"})

    def subnet_space(self, archs):
        from gennas.supernet.darts_subnets import DartsSubnetSpace

        return DartsSubnetSpace.from_genotypes(self.space, list(archs))

    def subnet_space_from_dict(self, data: dict):
        from gennas.supernet.darts_subnets import DartsSubnetSpace

        return DartsSubnetSpace.from_dict(data)

    def supernet(self, subnets, network):
        from gennas.supernet.darts_subnets import DartsRunSupernet

        return DartsRunSupernet(subnets, network)


#: ``gennas run --space NAME``: the spaces the main job supports.
FAMILIES: dict[str, SupernetFamily] = {"nb201": NB201Family(), "darts": DartsFamily()}


def run_family(name: str) -> SupernetFamily:
    """The family of ``--space NAME`` (one clear error for a space gennas run does not support)."""
    key = str(name).strip().lower()
    if key in FAMILIES:
        return FAMILIES[key]
    try:
        get_space(key)
    except GennasError:
        raise GennasError(f"unknown --space {name!r} for gennas run; choose {' or '.join(FAMILIES)}") from None
    raise GennasError(f"gennas run generates NB201 cells or DARTS genotypes (the spaces with a supernet); space "
                      f"{name!r} has none: choose {' or '.join(FAMILIES)}")


def family_of(network) -> SupernetFamily:
    """The family whose networks are built on skeleton ``network`` (an NB201 or a DARTS config)."""
    for family in FAMILIES.values():
        if type(network) is family.network_type:
            return family
    raise GennasError(f"no gennas run space builds networks on {type(network).__name__}")


def arch_costs(arch, network) -> dict[str, float]:
    """Exact free costs of ``arch`` on ``network``, by the space that skeleton belongs to."""
    return family_of(network).costs(arch, network)


def arch_flops(arch, network) -> float:
    """FLOPs (M) of ``arch`` on skeleton ``network``, whatever its space."""
    return family_of(network).flops(arch, network)


def parse_arch(text: str, network):
    """The architecture ``text`` names, in the space of skeleton ``network``."""
    return family_of(network).parse(text)
