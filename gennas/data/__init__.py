"""Datasets as fixed, in-memory train/val/test tensors: ``load_dataset(spec)``.

See :mod:`gennas.data.datasets` for the accepted specs and the data-root rules, and
:mod:`gennas.data.readers` for the on-disk formats.
"""

from gennas.data.datasets import DATASET_NAMES, DatasetSplits, default_data_root, load_dataset

__all__ = ["DATASET_NAMES", "DatasetSplits", "default_data_root", "load_dataset"]
