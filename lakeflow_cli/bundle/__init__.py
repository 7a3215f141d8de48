"""Declarative bundles (``databricks.yml``) read, deployed, run and destroyed as the Databricks
CLI does, against this server.

Pure steps (loading with positions, target merging, variables, substitution, modes, path
rewriting) live in their own modules; ``deploy``, ``run`` and ``destroy`` are the shell that
talks to the server.
"""
