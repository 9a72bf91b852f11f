"""Functions that say a step is done without doing it: the end-state check must not believe them."""
