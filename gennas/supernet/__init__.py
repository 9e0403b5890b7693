"""The supernet: cells merged into one network whose (edge, op) blocks switch on and off.

Built from generated cells (:class:`SubnetSpace`, :class:`Supernet`), trained once
(:func:`train_supernet`), every reachable subnet measured (:mod:`.measure`), pruned to the
user's thresholds after the search and exported (:mod:`.prune`, :mod:`.export`).
"""

from gennas.supernet.model import Supernet
from gennas.supernet.subnets import SubnetSpace, well_formed
from gennas.supernet.train import SupernetTrainConfig, train_supernet

__all__ = ["SubnetSpace", "Supernet", "SupernetTrainConfig", "train_supernet", "well_formed"]
