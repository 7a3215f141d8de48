"""A layered left-to-right drawing of a directed graph, for the Lineage page's server-side SVG.
Pure: no Django, no I/O.

1. Edges that close a cycle (a task that reads and writes the same table) are turned around for
   layering only, so every other edge points right.
2. Longest-path layering; with `parity`, datasets (0) and tasks (1) keep to even and odd layers,
   so the two kinds alternate in columns.
3. Within a layer, nodes are ordered by the barycenter of their neighbours, a few sweeps down
   and up (Sugiyama's heuristic, without dummy nodes: edges may skip layers).
4. Fixed-size boxes: a layer taller than `max_rows` wraps into sub-columns, all left of the next
   layer, so no two boxes overlap and edges still point right.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    layer: int


@dataclass(frozen=True)
class Line:
    source: object
    target: object
    x1: float
    y1: float
    x2: float
    y2: float
    backward: bool  # closes a cycle: drawn right to left

    @property
    def path(self):
        if self.backward:  # loop out to the right and back in from the left, above both boxes
            lift = min(self.y1, self.y2) - 30
            return (f"M{self.x1:.0f},{self.y1:.0f} C{self.x1 + 60:.0f},{lift:.0f} "
                    f"{self.x2 - 60:.0f},{lift:.0f} {self.x2:.0f},{self.y2:.0f}")
        middle = (self.x1 + self.x2) / 2
        return (f"M{self.x1:.0f},{self.y1:.0f} C{middle:.0f},{self.y1:.0f} "
                f"{middle:.0f},{self.y2:.0f} {self.x2:.0f},{self.y2:.0f}")


@dataclass
class Layout:
    boxes: dict = field(default_factory=dict)  # node -> Box
    lines: list = field(default_factory=list)
    width: float = 0
    height: float = 0


def layered_layout(nodes, edges, parity=None, *, node_width=200, node_height=44, gap_x=70, gap_y=14,
                   pad=20, max_rows=40, sweeps=4):
    """nodes: keys in a stable order; edges: (source, target) pairs of those keys; parity:
    {node: 0 or 1}, the layer parity each node keeps."""
    nodes = list(dict.fromkeys(nodes))
    known = set(nodes)
    edges = [(u, v) for u, v in dict.fromkeys(edges) if u in known and v in known]
    forward = _acyclic(nodes, [(u, v) for u, v in edges if u != v])
    layer = _layers(nodes, forward, parity or {})
    order = _ordered(nodes, edges, layer, sweeps)
    return _placed(order, edges, layer, node_width, node_height, gap_x, gap_y, pad, max_rows)


def _acyclic(nodes, edges):
    """The edges, those that close a cycle (found by depth-first search) turned around."""
    out = {node: [] for node in nodes}
    for u, v in edges:
        out[u].append(v)
    state = {}  # node -> 1 on the stack, 2 done
    backward = set()
    for root in nodes:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(out[root]))]
        while stack:  # iterative: a chain of 10,000 tables must not hit the recursion limit
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                backward.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(out[child])))
    return [(v, u) if (u, v) in backward else (u, v) for u, v in edges]


def _layers(nodes, edges, parity):
    """Longest path from the sources, each node moved right to its parity where it has one."""
    out, waiting = {node: [] for node in nodes}, {node: 0 for node in nodes}
    for u, v in edges:
        out[u].append(v)
        waiting[v] += 1
    layer = {node: parity.get(node, 0) for node in nodes}
    ready = [node for node in nodes if waiting[node] == 0]
    while ready:  # Kahn's topological order
        node = ready.pop()
        for child in out[node]:
            wanted = layer[node] + 1
            if wanted % 2 != parity.get(child, wanted % 2):
                wanted += 1
            layer[child] = max(layer[child], wanted)
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    return layer


def _ordered(nodes, edges, layer, sweeps):
    """{layer: [nodes top to bottom]}, by barycenter of the neighbours in the layers swept."""
    columns = {}
    for node in nodes:
        columns.setdefault(layer[node], []).append(node)
    ins, outs = {node: [] for node in nodes}, {node: [] for node in nodes}
    for u, v in edges:
        if layer[u] != layer[v]:
            (ins if layer[u] < layer[v] else outs)[v].append(u)
            (outs if layer[u] < layer[v] else ins)[u].append(v)
    tallest = max((len(column) for column in columns.values()), default=0)

    def slot(column):  # centred rows, comparable across columns of different heights
        offset = (tallest - len(column)) / 2
        return {node: offset + i for i, node in enumerate(column)}

    where = {}
    for column in columns.values():
        where.update(slot(column))
    for sweep in range(sweeps):
        down = sweep % 2 == 0
        for number in sorted(columns, reverse=not down):
            neighbours = ins if down else outs
            column = columns[number]
            centre = {node: (sum(where[n] for n in neighbours[node]) / len(neighbours[node])
                             if neighbours[node] else where[node]) for node in column}
            column.sort(key=lambda node: centre[node])  # stable: ties keep their order
            where.update(slot(column))
    return columns


def _placed(columns, edges, layer, width, height, gap_x, gap_y, pad, max_rows):
    layout = Layout()
    shown_rows = min(max_rows, max((len(c) for c in columns.values()), default=0))
    x = pad
    for number in sorted(columns):
        column = columns[number]
        offset = (shown_rows - min(len(column), max_rows)) / 2
        for i, node in enumerate(column):
            sub, row = divmod(i, max_rows)
            layout.boxes[node] = Box(x + sub * (width + gap_x / 2), pad + (offset + row) * (height + gap_y), number)
        x += -(-len(column) // max_rows) * (width + gap_x / 2) + gap_x / 2
    layout.width = x - gap_x + pad if columns else 2 * pad
    layout.height = 2 * pad + shown_rows * (height + gap_y) - (gap_y if shown_rows else 0)
    for u, v in edges:
        a, b = layout.boxes[u], layout.boxes[v]
        layout.lines.append(Line(u, v, a.x + width, a.y + height / 2, b.x, b.y + height / 2,
                                 backward=a.x + width >= b.x))
    return layout
