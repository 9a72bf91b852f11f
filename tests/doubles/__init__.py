"""Deliberately broken handlers, swapped into a function by `LambdaRuntime.replace_handler` to prove
that a test catches the defect. Never deployed; never imported by `src/`."""
