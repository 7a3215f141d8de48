"""Dashboard pages of lineage: the Lineage graph, a table's page, and the fragments the run and
job pages fetch (their Lineage cards, the run's upstream root cause). The runs app never
imports this: its pages load the fragments by URL."""

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from jobs.models import Job
from jobs.permissions import check, viewable_jobs
from jobs.spec.access import Action
from jobs.query_params import query_int
from lineage import graph, pages, upstream
from lineage.models import Dataset
from lineage.picture import picture
from runs.models import Run

MAX_CAP = 1000  # datasets drawn at most, however often "show more" is clicked


def visible_jobs(request):
    """The jobs whose tasks this user may see in lineage: tables are shown to everyone, the
    tasks that read and wrote them only to those who may view their job."""
    return viewable_jobs(Job.objects.all(), request.user)


@login_required
def lineage_graph(request):
    search = request.GET.get("q", "").strip()[:200]
    wanted = request.GET.get("table", "").strip()
    depth = query_int(request, "depth", 2, low=0, high=graph.MAX_DEPTH)
    cap = query_int(request, "cap", graph.NODE_CAP, low=1, high=MAX_CAP)
    centre = Dataset.objects.filter(name=wanted).first() if wanted else None
    if centre is not None:
        found = graph.graph_around([centre.id], depth=depth, cap=cap, jobs=visible_jobs(request))
    else:
        found = graph.whole_graph(cap=cap, search=search, jobs=visible_jobs(request))
    more = {key: value for key, value in (("q", search), ("table", wanted)) if value}
    if centre is not None:
        more["depth"] = depth
    context = {"nav": "lineage", "search": search, "wanted": wanted, "centre": centre, "depth": depth,
               "depths": range(1, graph.MAX_DEPTH + 1), "cap": cap, "left_out": found.left_out,
               "more_url": "?" + urlencode({**more, "cap": min(cap * 2, MAX_CAP)}) if cap < MAX_CAP else "",
               "picture": picture(found, centre=centre.id if centre else None)}
    return render(request, "lineage/graph.html", context, status=404 if wanted and centre is None else 200)


@login_required
def table_page(request, name):
    dataset = Dataset.objects.filter(name=name).first()
    if dataset is None:
        raise Http404(f"No dataset is named {name}")
    jobs = visible_jobs(request)
    fresh = pages.freshness(dataset, jobs=jobs)
    accesses = graph.accesses_of(dataset, jobs=jobs)
    return render(request, "lineage/table.html", {
        "nav": "lineage", "dataset": dataset, "fresh": fresh,
        "writers": [a for a in accesses if a["direction"] == "write"],
        "readers": [a for a in accesses if a["direction"] == "read"],
        "row_counts": [{"at": at.isoformat(), "rows": rows, "run_id": run_id}
                       for at, rows, run_id in graph.row_counts(dataset, jobs=jobs)],
        "columns": pages.columns_of(dataset, fresh["last_success"]), "impact": pages.impact(dataset, jobs=jobs),
        "gaps": pages.writer_gaps(dataset, jobs=jobs),
    })


@login_required
def run_card(request, run_id):
    run = get_object_or_404(Run, id=run_id)
    check(request.user, run.job_id, Action.VIEW)
    return render(request, "lineage/_run_card.html", {"run": run, "attempts": pages.run_lineage(run),
                                                     "pending": pages.settling(run)})


@login_required
def job_card(request, job_id):
    job = get_object_or_404(Job, id=job_id)
    check(request.user, job.id, Action.VIEW)
    return render(request, "lineage/_job_card.html", {"job": job, "rows": pages.job_tables(job)})


@login_required
def run_upstream(request, run_id):
    run = get_object_or_404(Run, id=run_id)
    check(request.user, run.job_id, Action.VIEW)
    failed = upstream.failed_inputs(run, timezone.now())
    # The failures upstream may be in other jobs: those the user may not view stay unnamed.
    named = {write.run.job_id for task in failed for item in task["inputs"]
             for write in [item.get("failed_write"), *item.get("first_failures", [])] if write is not None}
    visible = set(viewable_jobs(Job.objects.filter(id__in=named), request.user).values_list("id", flat=True))
    return render(request, "lineage/_upstream.html", {"run": run, "failed": failed, "visible": visible,
                                                      "pending": pages.settling(run)})
