"""The Lineage page's layered layout (lineage/layout.py): pure, on small named graphs."""

import itertools
import subprocess
import sys
from pathlib import Path

from lineage.layout import layered_layout

W, H = 200, 44


def laid_out(edges, nodes=None, parity=None, **options):
    nodes = nodes or list(dict.fromkeys(itertools.chain.from_iterable(edges)))
    return layered_layout(nodes, edges, parity, node_width=W, node_height=H, **options)


def overlapping(layout):
    boxes = list(layout.boxes.values())
    return [(a, b) for a, b in itertools.combinations(boxes, 2)
            if a.x < b.x + W and b.x < a.x + W and a.y < b.y + H and b.y < a.y + H]


def test_a_chain_of_tables_and_tasks_alternates_columns_left_to_right():
    chain = [("bronze", "silver_build"), ("silver_build", "silver"), ("silver", "gold_build"), ("gold_build", "gold")]
    parity = {"bronze": 0, "silver": 0, "gold": 0, "silver_build": 1, "gold_build": 1}
    layout = laid_out(chain, parity=parity)

    assert [layout.boxes[n].layer for n in ["bronze", "silver_build", "silver", "gold_build", "gold"]] == [0, 1, 2, 3, 4]
    assert all(line.x1 < line.x2 and not line.backward for line in layout.lines)
    assert not overlapping(layout)


def test_a_task_that_reads_nothing_sits_in_a_task_column():
    parity = {"load": 1, "raw": 0, "clean": 1, "tidy": 0}
    layout = laid_out([("load", "raw"), ("raw", "clean"), ("clean", "tidy")], parity=parity)

    assert {n: layout.boxes[n].layer for n in parity} == {"load": 1, "raw": 2, "clean": 3, "tidy": 4}


def test_a_diamond_points_every_edge_right_and_overlaps_nothing():
    diamond = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("a", "d")]
    layout = laid_out(diamond)

    assert layout.boxes["d"].layer == 2
    assert all(line.x2 - line.x1 > 0 for line in layout.lines)
    assert not overlapping(layout)
    assert layout.width >= max(b.x for b in layout.boxes.values()) + W
    assert layout.height >= max(b.y for b in layout.boxes.values()) + H


def test_barycenter_ordering_uncrosses_two_parallel_chains():
    # Given in crossing order: a1 -> b2 and a2 -> b1 would cross if b kept its input order.
    layout = laid_out([("a1", "b1"), ("a2", "b2")], nodes=["a1", "a2", "b2", "b1"])

    assert (layout.boxes["a1"].y < layout.boxes["a2"].y) == (layout.boxes["b1"].y < layout.boxes["b2"].y)


def test_cycles_end_and_only_their_closing_edges_point_back():
    # A task that reads and writes the same table, and a longer loop back to that table.
    layout = laid_out([("t", "merge"), ("merge", "t"), ("merge", "u"), ("u", "fix"), ("fix", "t")])

    backward = {(line.source, line.target) for line in layout.lines if line.backward}
    assert backward == {("merge", "t"), ("fix", "t")}
    assert all(line.x1 < line.x2 for line in layout.lines if not line.backward)
    assert not overlapping(layout)


def test_a_self_loop_is_drawn_back_into_its_own_box():
    layout = laid_out([("t", "t")], nodes=["t"])

    (line,) = layout.lines
    assert line.backward and line.path.startswith("M")


def test_a_tall_layer_wraps_into_sub_columns_left_of_the_next_layer():
    edges = [(f"source{i}", "sink") for i in range(25)]
    layout = laid_out(edges, max_rows=10)

    sources = [layout.boxes[f"source{i}"] for i in range(25)]
    assert len({box.x for box in sources}) == 3
    assert max(box.x for box in sources) + W < layout.boxes["sink"].x
    assert not overlapping(layout)
    assert all(line.x1 < line.x2 for line in layout.lines)


def test_a_long_chain_is_laid_out_without_recursion():
    chain = [(i, i + 1) for i in range(5000)]
    layout = laid_out(chain)

    assert layout.boxes[5000].layer == 5000


def test_an_empty_graph_has_an_empty_layout():
    layout = layered_layout([], [])

    assert layout.boxes == {} and layout.lines == [] and layout.width > 0


def test_the_layout_imports_no_django():
    # Pure like the engine: checked in a fresh interpreter, where nothing else imported Django.
    code = "import sys, lineage.layout; print(any(m.startswith('django') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                          capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, "False"), done.stderr
