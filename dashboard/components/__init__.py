"""Pieces shared by the dashboard's pages: session state, cached data, charts, formatting."""
