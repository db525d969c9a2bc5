//! End-to-end tests and example bots for Chat-Room live in `tests/` and `examples/`.
