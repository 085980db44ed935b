"""`acqsynth experiment`: methods × budgets × seeds from one YAML (`grid`) and the statistics and
plots that compare them (`report`)."""
