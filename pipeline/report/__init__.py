"""The report: tables whose every cell is traced to a file in results/, plots, Jinja2 rendering."""
