"""From a generator's raw completion to clean, labelled samples (prompts, parsing, labelling, hygiene)."""
