"""Crafted damage for the bad-input and integrity tests: flipped bits, a minimal run directory."""

from __future__ import annotations

import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch

from gennas.data import load_dataset
from gennas.io import write_json_checked
from gennas.nn.network import NetworkConfig
from gennas.space.cell import Cell
from gennas.supernet.model import Supernet
from gennas.supernet.store import save_supernet
from gennas.supernet.subnets import SubnetSpace
from gennas.train import with_normalization

RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
CELLS = (RESNET, BEST, "|skip_connect~0|+|nor_conv_1x1~0|none~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")


def flip_bit(path: Path) -> None:
    """Flip one bit in the middle of the largest tensor record of a torch file (a zip archive)."""
    with zipfile.ZipFile(path) as archive:
        record = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    blob = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", blob[record.header_offset + 26: record.header_offset + 30])
    start = record.header_offset + 30 + name_len + extra_len
    blob[start + record.file_size // 2] ^= 0x10
    path.write_bytes(bytes(blob))


def write_run_dir(root: Path) -> Path:
    """A run directory as `gennas run` leaves it after training: the generated cells and the supernet weights."""
    splits = load_dataset("digits")
    network = NetworkConfig(channels=4, cells_per_stage=1, in_channels=splits.in_channels,
                            image_size=splits.image_size, num_classes=splits.num_classes)
    model = with_normalization(Supernet(SubnetSpace.from_cells([Cell.from_string(a) for a in CELLS]), network), splits)
    save_supernet(root / "supernet.pt", model, {"dataset": "digits", "data_root": None})
    write_json_checked(root / "generated.json", {"chosen": list(CELLS), "candidates": [], "notes": [],
                                                 "objectives": ["accuracy:max"], "guided_objectives": ["accuracy:max"]})
    return root


class _Crafted:
    """A pickle that runs ``os.system(command)`` when plainly unpickled."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def write_latency_tables(tmp: Path) -> None:
    """A quickly measured NB201 latency table (``lut_good.csv``) and damaged copies of it."""
    from gennas.metrics.lut import save_table
    from gennas.metrics.lut_measure import Reading, measure_table
    from gennas.space.space import nb201_space

    good = save_table(measure_table(nb201_space(), NetworkConfig(), torch.device("cpu"), Reading(0, 1, 1)),
                      tmp / "lut_good.csv").read_text()
    lines = good.splitlines(keepends=True)
    first_row = next(i for i, line in enumerate(lines) if line.startswith("stem,"))
    row = lines[first_row].split(",")
    damaged = {"lut_truncated.csv": "".join(lines[:-3]),
               "lut_nonnum.csv": good.replace(lines[first_row], ",".join(row[:7] + ["abc", row[8]])),
               "lut_negative.csv": good.replace(lines[first_row], ",".join(row[:7] + ["-1.0", row[8]])),
               "lut_dag6.csv": good.replace("# space: nb201", "# space: dag6")}
    for name, text in damaged.items():
        (tmp / name).write_text(text)


def craft_files(tmp: Path) -> dict[str, str]:
    """Write every crafted file the bad-input cases name into ``tmp``; returns the placeholders.

    A crafted CIFAR-10 batch under ``tmp/crafted`` would create ``tmp/PWNED`` if it were
    plainly unpickled.
    """
    (tmp / "binary").write_bytes(bytes(range(256)) * 4)
    (tmp / "empty").write_text("")
    (tmp / "blank").write_text("\n   \n\n")
    (tmp / "comments").write_text("# only a comment\n")
    (tmp / "badarch.txt").write_text(f"{RESNET}\n|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|\n")
    (tmp / "regular_file").write_text("not a directory\n")
    csvs = {"dup.csv": f"arch,value\n{RESNET},1.0\n{BEST},2.0\n{RESNET},3.0\n",
            "nonnum.csv": f"arch,value\n{RESNET},abc\n{BEST},2.0\n",
            "nocol.csv": f"arch,score\n{RESNET},1.0\n{BEST},2.0\n",
            "inf.csv": f"arch,value\n{RESNET},inf\n{BEST},2.0\n",
            "nan.csv": f"arch,value\n{RESNET},nan\n{BEST},2.0\n",
            "onerow.csv": f"arch,value\n{RESNET},1.0\n",
            "headeronly.csv": "arch,value\n",
            "badcell.csv": f"arch,value\n{RESNET},1.0\n|oops|,2.0\n"}
    for name, text in csvs.items():
        (tmp / name).write_text(text)
    (tmp / "garbage.pt").write_bytes(b"\x00garbage" * 100)
    torch.save([1, 2, 3], tmp / "list.pt")
    torch.save({"format": "something-else"}, tmp / "other.pt")
    from predictors.transfer import prior_weights_path

    (tmp / "prior.pt").write_bytes(prior_weights_path("cifar10").read_bytes())
    (tmp / "truncated.pt").write_bytes(prior_weights_path("cifar10").read_bytes()[:5000])
    from diffusion.commands import generator_path

    (tmp / "generator_trunc.pt").write_bytes(generator_path("nb201").read_bytes()[:3000])
    (tmp / "cells.txt").write_text(RESNET + "\n")
    write_latency_tables(tmp)

    # Run directories: a good base and one damaged copy per stage file.
    good = write_run_dir(tmp / "run_good")
    for name, damage in {
        "run_flipped": lambda d: flip_bit(d / "supernet.pt"),
        "run_truncated": lambda d: (d / "supernet.pt").write_bytes((d / "supernet.pt").read_bytes()[:4000]),
        "run_garbage_pt": lambda d: (d / "supernet.pt").write_bytes(b"garbage"),
        "run_garbage_ckpt": lambda d: (d / "supernet.ckpt").write_bytes(b"garbage"),
        "run_garbage_generated": lambda d: (d / "generated.json").write_text("{oops"),
        "run_edited_generated": lambda d: (d / "generated.json").write_text(
            (d / "generated.json").read_text().replace("skip_connect~2", "nor_conv_3x3~2")),
        "run_binary_generated": lambda d: (d / "generated.json").write_bytes(bytes(range(256))),
        "run_garbage_runjson": lambda d: (d / "run.json").write_text("not json at all"),
        "run_list_runjson": lambda d: (d / "run.json").write_text("[1, 2]"),
    }.items():
        copy = tmp / name
        copy.mkdir()
        for f in good.iterdir():
            (copy / f.name).write_bytes(f.read_bytes())
        damage(copy)
    # prune reads subnets.csv before the weights: one well-formed row, so the weights are what fails.
    row = {"arch": RESNET, "selected_because": "test", "blocks_on": 4.0, "flops": 1.0, "params": 0.1,
           "memory_bytes": 1000.0, "latency_ms": 1.0, "val_accuracy": 90.0, "val_pgd_accuracy": 50.0,
           "accuracy": 90.0, "pgd_accuracy": 50.0, "fgsm_accuracy": 60.0, "noise_accuracy": 80.0}
    for name in ("run_flipped", "run_truncated", "run_garbage_pt"):
        (tmp / name / "subnets.csv").write_text(",".join(row) + "\n" + ",".join(str(v) for v in row.values()) + "\n")

    # Search journals: garbage, a flipped digit, valid JSON of the wrong shape.
    for name, text in {"journal_garbage": "{not json", "journal_list": "[]"}.items():
        (tmp / name / "random").mkdir(parents=True)
        (tmp / name / "random" / "seed_0.json").write_text(text)
    (tmp / "journal_edited" / "random").mkdir(parents=True)
    write_json_checked(tmp / "journal_edited" / "random" / "seed_0.json",
                       {"format": "gennas-search-journal", "version": 1,
                        "run": {"method": "random", "seed": 0, "budget": 3, "history": [{"arch": RESNET, "accuracy": 93.0}]}})
    edited = tmp / "journal_edited" / "random" / "seed_0.json"
    edited.write_text(edited.read_text().replace("93.0", "99.0"))

    # A crafted CIFAR-10 batch that would create a file if plainly unpickled.
    cifar = tmp / "crafted" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    good_batch = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (cifar / name).write_bytes(good_batch)
    (cifar / "data_batch_1").write_bytes(pickle.dumps(_Crafted(f"touch {tmp / 'PWNED'}")))
    return {"tmp": str(tmp)}
