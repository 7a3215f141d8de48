"""Demo task: pretend to extract rows and hand their count downstream as a task value."""
import sys
import time

rows = 42
print(f"extracting rows for {sys.argv[1:] or ['(no parameters)']}")
time.sleep(1)
dbutils.jobs.taskValues.set("rows", rows)  # noqa: F821 (dbutils is a builtin in task processes)
print(f"extracted {rows} rows")
