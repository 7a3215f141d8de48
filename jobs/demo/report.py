"""Demo task: report what upstream produced."""
import sys

rows = dbutils.jobs.taskValues.get("extract", "rows", default=0)  # noqa: F821
print(f"report for {' '.join(sys.argv[1:])}: {rows} rows went through both transforms")
