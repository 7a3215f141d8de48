"""The Jobs API 2.2 (and 2.1): its HTTP plumbing (http.py: authentication, errors, typed readers,
paging), its jobs and runs endpoints, the shapes runs are shown in, and its OpenAPI document.
It belongs to neither app: it uses both (jobs, and runs, which builds on jobs)."""
