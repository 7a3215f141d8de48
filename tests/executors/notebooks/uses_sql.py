# Databricks notebook source
print("python first")

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT 1
