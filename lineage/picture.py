"""The Lineage page's picture: a lineage.graph.Graph laid out (lineage/layout.py) into boxes and
lines the template draws as SVG. Datasets sit in even columns, tasks in odd ones; a job's
trigger is a task node of its own (task_key ""), and a run_job link is a dashed line from the
task that runs the child job to the child job's tasks in the picture."""

from django.urls import reverse

from lineage.layout import layered_layout

NODE_WIDTH, NODE_HEIGHT = 190, 44
LABEL_CHARS = 27


def picture(graph, centre=None):
    """{"nodes", "lines", "width", "height"} for the template; `centre`: a dataset id to mark."""
    datasets = sorted(graph.datasets.values(), key=lambda d: d.name)
    nodes = [("dataset", d.id) for d in datasets] + [("task", t) for t in sorted(graph.tasks, key=str)]
    edges = [((a, b), (c, d)) for a, b, c, d in sorted(graph.edges, key=str)]
    jobs = {job_id: info["job"] for (job_id, _), info in graph.tasks.items()}
    links = []
    for parent, child in sorted(graph.job_links):
        for key in run_job_task_keys(jobs[parent], child):
            nodes.append(("task", (parent, key)))
            links += [(("task", (parent, key)), ("task", task)) for task in graph.tasks
                      if task[0] == child]
    parity = {node: 0 if node[0] == "dataset" else 1 for node in nodes}
    layout = layered_layout(nodes, edges + links, parity, node_width=NODE_WIDTH, node_height=NODE_HEIGHT, gap_x=56)
    linked = set(links)
    boxes = {(kind, key): _dataset_box(graph.datasets[key], layout.boxes[(kind, key)], centre) if kind == "dataset"
             else _task_box(key, jobs[key[0]], layout.boxes[(kind, key)])
             for kind, key in dict.fromkeys(nodes)}
    lines = [{"path": line.path, "dashed": (line.source, line.target) in linked, "backward": line.backward,
              "source": boxes[line.source]["name"], "target": boxes[line.target]["name"],
              "label": _line_label(line), "mid_x": round((line.x1 + line.x2) / 2),
              "mid_y": round((line.y1 + line.y2) / 2 - 4)}
             for line in layout.lines]
    return {"nodes": list(boxes.values()), "lines": lines, "width": round(layout.width),
            "height": round(layout.height), "node_width": NODE_WIDTH, "node_height": NODE_HEIGHT}


def run_job_task_keys(job, child_id):
    """The keys of the job's tasks that run the child job."""
    return sorted(task["task_key"] for task in (job.settings or {}).get("tasks") or []
                  if isinstance(task.get("run_job_task"), dict) and task["run_job_task"].get("job_id") == child_id)


def _line_label(line):
    target_kind, target = line.target
    return "trigger" if target_kind == "task" and target[1] == "" and line.source[0] == "dataset" else ""


def _dataset_box(dataset, box, centre):
    # The table (or file) name first, where it sits below: "silver" over "default.main".
    where, _, label = dataset.name.rpartition("." if dataset.kind == "TABLE" else "/")
    return {"kind": "dataset", "x": round(box.x), "y": round(box.y), "title": dataset.name, "name": dataset.name,
            "label": _short(label or dataset.name), "sub": _short(where or dataset.kind.lower()),
            "centre": dataset.id == centre, "href": reverse("lineage:table", kwargs={"name": dataset.name})}


def _task_box(task, job, box):
    job_id, task_key = task
    job_name = job.name or f"job {job_id}"
    return {"kind": "task", "x": round(box.x), "y": round(box.y), "title": f"{job_name} · {task_key or 'trigger'}",
            "name": f"{job_id}/{task_key}", "label": _short(task_key or "trigger"), "sub": _short(job_name),
            "trigger": task_key == "", "href": reverse("jobs:detail", kwargs={"job_id": job_id})}


def _short(text):
    """Long names keep their end: the table name says more than the warehouse."""
    return text if len(text) <= LABEL_CHARS else "…" + text[-(LABEL_CHARS - 1):]
