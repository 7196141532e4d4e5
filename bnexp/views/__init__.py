"""What the user sees: progress while training, tables, plots. Nothing here trains."""
