"""Benchmarks (python -m bench …)."""

import os

from app import secrets_at_rest

# Secrets at rest: this process and every `python -m app` it starts (their env is os.environ's)
# seal with one key, the caller's SECRET_KEY or one made for this run.
os.environ.setdefault("SECRET_KEY", secrets_at_rest.generate_key())
secrets_at_rest.configure([os.environ["SECRET_KEY"]])
