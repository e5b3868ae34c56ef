"""Fairness audit of a model's predictions and representation, one idea per module (one-way imports):

metrics (pure formulas) <- resampling (the bootstrap) <- fairness (`audit_fairness`) <- comparison
(`paired_gap_differences`); thresholds (what-ifs) uses metrics; representation (UMAP, leakage, CKA,
kNN); per_model runs them all for one model. Formulas: docs/metrics.md."""
