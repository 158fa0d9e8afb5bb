pytest_plugins = ["tests.fixtures.db", "tests.fixtures.data", "tests.fixtures.kafka"]
