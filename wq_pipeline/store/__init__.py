"""What is kept: the model registry (immutable, hashed versions), the forecast archive (SQLite/PostgreSQL) and the EFI export."""
