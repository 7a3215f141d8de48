"""The workspace's files and notebooks (/Workspace/...), served by the Workspace API: rules.py
decides (pure), store.py reads and writes the directory LAKEFLOW_WORKSPACE_FILES_DIR."""
