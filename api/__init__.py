"""The JSON API at /api/v1/ (issue 15): personal tokens, the same checks and
services as the pages."""
