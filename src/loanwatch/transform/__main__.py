"""`make docs`: rewrite dbt_project.yml's vars from the settings' defaults (transform.DBT_VARS)."""

from loanwatch.transform import write_project_vars

print("dbt_project.yml vars " + ("rewritten" if write_project_vars() else "unchanged"))
