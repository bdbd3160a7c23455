"""The theory made measurable: gradient-estimator variance, the LQR gradient fields, exact tabular planning."""
