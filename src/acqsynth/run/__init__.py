"""`acqsynth run`: one strategy under one budget, round by round (`job`), its config (`config`) and
its report (`report`)."""
