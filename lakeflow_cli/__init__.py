"""The ``lakeflow`` command: a client of a Lakeflow Jobs server over the Jobs API.

It imports none of the server's apps (an import-linter contract keeps it so): everything it does
goes through the official ``databricks-sdk`` with the SDK's own auth, so it works against any
server it can reach, on this machine or another.
"""
