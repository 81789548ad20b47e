"""Batch controls every item processor must see: cancelled, timed out, failed groups.

Items of one batch are spread over every partition of `batchwire.items`, so a processor
cannot learn about a cancel from its own partitions.  The aggregator publishes a batch's
controls on the internal compacted topic `batchwire.controls` (keyed `tenant/batch_id`);
every worker reads all of its partitions into memory with its own group-less consumer.
(Faust's GlobalTable does the same but is documented to loop in recovery with several
workers.)
"""

from __future__ import annotations

from typing import Any

from streams.compacted import CompactedView


class Controls(CompactedView):
    """The latest control record of each batch (keyed `tenant/batch_id`)."""

    def stop_reason(self, key: str) -> str | None:
        """`cancelled` or `timed_out` when the batch's pending items must not start."""
        control = self.values.get(key)
        if control is None:
            return None
        if control.get("cancelled"):
            return "cancelled"
        if control.get("timed_out"):
            return "timed_out"
        return None

    def group_failed(self, key: str, group: str) -> bool:
        control = self.values.get(key)
        return control is not None and group in control.get("failed_groups", ())


def control_record(state: dict[str, Any], failed_groups: list[str]) -> dict[str, Any]:
    return {
        "cancelled": state["cancel_requested"],
        "timed_out": state["deadline_passed"],
        "failed_groups": failed_groups,
    }


def published_controls(state: dict[str, Any]) -> bool:
    """Whether the aggregator published a control record for this batch (it does when the
    batch is cancelled or passes its deadline, and when a group fails)."""
    return bool(state["cancel_requested"] or state["deadline_passed"] or state.get("failed_groups"))
