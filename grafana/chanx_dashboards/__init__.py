"""Dashboards as code for chanx (see ``grafana/dashboards.py``)."""
