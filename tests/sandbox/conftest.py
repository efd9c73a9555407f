from tests.sandbox.fixtures import sandbox_stack  # noqa: F401
