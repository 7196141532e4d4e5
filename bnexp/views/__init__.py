"""What the user sees: progress while training (progress), tables and lines (tables),
figures (plots), doctor's findings (findings), and what compare and plot runs put out
end to end (outputs). Nothing here trains."""
