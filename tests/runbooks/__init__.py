"""The runbook corpus (tests/runbooks/corpus/) and the runbooks beside it."""
