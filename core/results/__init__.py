"""Results and report: reading a finished run, the tables pages draw, the stakeholder report."""
