"""Station data: reading files as users have them (CSV, gzip CSV, .xlsx, wide or long), their timestamps, quality control onto a regular grid with a causal spike guard, and covariate channels."""
