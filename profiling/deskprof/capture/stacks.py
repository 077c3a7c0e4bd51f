"""One table of stacks shared by every source of a bundle.

CPU samples and memory allocations both point at stacks by id, so a frame that burns CPU
and allocates memory is the same row, and the flame graph and the allocation view agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class StackTable:
    """Interns stacks (root first, each frame ``"function (file:line)"``) to int ids."""

    ids: dict[tuple[str, ...], int] = field(default_factory=dict)

    def intern(self, frames: tuple[str, ...]) -> int:
        stack_id = self.ids.get(frames)
        if stack_id is None:
            stack_id = self.ids[frames] = len(self.ids)
        return stack_id

    def __len__(self) -> int:
        return len(self.ids)

    def to_frame(self) -> pd.DataFrame:
        """The ``stacks`` table; ``handler`` is filled in by analysis, not capture."""
        rows = [
            (stack_id, list(frames), frames[-1] if frames else "", "")
            for frames, stack_id in self.ids.items()
        ]
        return pd.DataFrame(rows, columns=["stack_id", "frames", "leaf", "handler"]).astype(
            {"stack_id": "int64"}
        )
