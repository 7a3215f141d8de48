# Databricks notebook source
# MAGIC %md
# MAGIC # Daily ETL
# MAGIC
# MAGIC Loads the **orders**.

# COMMAND ----------

# DBTITLE 1,Parameters
dbutils.widgets.text("day", "2024-01-01")
day = dbutils.widgets.get("day")

# COMMAND ----------

# MAGIC %python
# MAGIC print(f"python magic cell, day={day}")

# COMMAND ----------

# MAGIC %sh echo hi from sh

# COMMAND ----------

# MAGIC %sh
# MAGIC echo "second line"
# MAGIC pwd

# COMMAND ----------

rows = [1, 2, 3]
dbutils.jobs.taskValues.set("row_count", len(rows))
print("rows", len(rows))

# COMMAND ----------


