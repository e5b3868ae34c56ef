"""Running an audit: its configuration, the end-to-end pipeline and the worker pool it uses."""
