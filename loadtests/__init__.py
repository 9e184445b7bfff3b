"""Locust load tests of the chanx demo (``make loadtest``; see README.md here)."""
