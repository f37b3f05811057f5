"""The classify tests that need Redis (the job store, the trainer) use ``redis_url`` from tests/unit/conftest.py:
a database of one ``redis-server`` started for the session, empty for each test module."""
