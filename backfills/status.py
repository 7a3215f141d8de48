"""Where a backfill stands, slot by slot, for its API answers and its pages."""

from datetime import datetime

from backfills.models import BackfillRun
from runs.engine import backfill as rules


def slot_rows(backfill):
    """[{slot, state, run_id, life_cycle_state, result_state}] in the order the slots start."""
    links = {link.slot: link for link in BackfillRun.objects.filter(backfill=backfill).select_related("run").only(
        "slot", "repair_asked", "run_id", "run__life_cycle_state", "run__result_state")}
    rows = []
    for text in backfill.slots:
        slot = datetime.fromisoformat(text)
        link = links.get(slot)
        row = {"slot": slot, "state": rules.SlotState.NOT_STARTED, "run_id": None, "life_cycle_state": None,
               "result_state": None}
        if link is not None:
            run = link.run
            life_cycle_state = run.life_cycle_state if run else None
            result_state = run.result_state if run else None
            row.update(run_id=link.run_id, life_cycle_state=life_cycle_state, result_state=result_state,
                       state=rules.slot_state(life_cycle_state, result_state, link.repair_asked))
        rows.append(row)
    return rows


def progress_of(backfill, rows=None):
    rows = slot_rows(backfill) if rows is None else rows
    return rules.progress_of(len(backfill.slots), [row["state"] for row in rows
                                                   if row["state"] != rules.SlotState.NOT_STARTED])
