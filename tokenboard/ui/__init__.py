"""Streamlit glue: settings, the cached backend and queries, the sidebar, chart panels.

Small on purpose: what a page shows is computed in ``tokenboard.views``; this package
only turns it into widgets and caches the queries behind it.
"""
