"""One table of stacks shared by every source of a bundle.

CPU samples and memory allocations both point at stacks by id, so a frame that burns CPU
and allocates memory is the same row, and the flame graph and the allocation view agree.

Stored as two tables (schema version 2): ``frames`` (each distinct frame label once) and
``stacks`` (each stack a list of frame ids, root first). A deep stack costs 4 bytes a
frame instead of a string, and the nested column is read through Arrow, so neither the
depth nor the number of stacks limits what a bundle can hold and read back.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa


@dataclass
class StackTable:
    """Interns stacks (root first, each frame ``"function (file:line)"``) to int ids."""

    ids: dict[tuple[str, ...], int] = field(default_factory=dict)
    frame_ids: dict[str, int] = field(default_factory=dict)

    def intern(self, frames: tuple[str, ...]) -> int:
        stack_id = self.ids.get(frames)
        if stack_id is None:
            stack_id = self.ids[frames] = len(self.ids)
        return stack_id

    def __len__(self) -> int:
        return len(self.ids)

    def to_frame(self) -> pd.DataFrame:
        """The stacks as analysis reads them (``frames`` as label lists); in memory only."""
        rows = [
            (stack_id, list(frames), frames[-1] if frames else "", "")
            for frames, stack_id in self.ids.items()
        ]
        return pd.DataFrame(rows, columns=["stack_id", "frames", "leaf", "handler"]).astype(
            {"stack_id": "int64"}
        )

    def to_arrow(self) -> tuple[pa.Table, pa.Table]:
        """The ``stacks`` and ``frames`` tables as stored."""
        labels = self.frame_ids
        offsets = [0]
        flat: list[int] = []
        stack_ids, leaves = [], []
        for frames, stack_id in self.ids.items():
            for label in frames:
                frame_id = labels.get(label)
                if frame_id is None:
                    frame_id = labels[label] = len(labels)
                flat.append(frame_id)
            offsets.append(len(flat))
            stack_ids.append(stack_id)
            leaves.append(frames[-1] if frames else "")
        frame_lists = pa.LargeListArray.from_arrays(
            pa.array(offsets, type=pa.int64()), pa.array(flat, type=pa.int32())
        )
        stacks = pa.table(
            {
                "stack_id": pa.array(stack_ids, type=pa.int64()),
                "frame_ids": frame_lists,
                "leaf": pa.array(leaves, type=pa.string()),
                "handler": pa.array([""] * len(stack_ids), type=pa.string()),
            }
        )
        frames_table = pa.table(
            {
                "frame_id": pa.array(range(len(labels)), type=pa.int64()),
                "label": pa.array(list(labels), type=pa.large_string()),
            }
        )
        return stacks, frames_table


def stacks_from_arrow(stacks: pa.Table, frames: pa.Table) -> pd.DataFrame:
    """Stored ``stacks`` + ``frames`` → one row per stack with ``frames`` as label lists
    (what analysis uses), built from Arrow buffers: no nested pandas conversion."""
    labels = frames.column("label").to_numpy(zero_copy_only=False)
    order = frames.column("frame_id").to_numpy()
    by_id = pd.Series(labels, index=order)
    lists = stacks.column("frame_ids").combine_chunks()
    if len(lists):
        offsets = lists.offsets.to_numpy()
        flat = lists.values.to_numpy()
        label_of = by_id.reindex(range(int(order.max()) + 1 if len(order) else 0)).to_numpy()
        resolved = label_of[flat].tolist() if len(flat) else []
        rows = [resolved[a:b] for a, b in itertools.pairwise(offsets)]
    else:
        rows = []
    return pd.DataFrame(
        {
            "stack_id": stacks.column("stack_id").to_numpy().astype("int64"),
            "frames": pd.Series(rows, dtype=object),
            "leaf": stacks.column("leaf").to_pandas().astype(str),
            "handler": stacks.column("handler").to_pandas().astype(str),
        }
    )
