pytest_plugins = [
    "tests.fixtures.postgres_server",
    "tests.fixtures.db",
    "tests.fixtures.data",
    "tests.fixtures.kafka",
]
