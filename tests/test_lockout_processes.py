"""The API lock-out with two server processes on one database: the limit is the limit whichever process
a bad token reaches, and a good token from the locked address keeps working throughout."""

import itertools

import requests

from tests.processes import manage, serving_process, site_env

MAKE_TOKEN = """
from django.contrib.auth.models import User
from knox.models import AuthToken
user = User.objects.create_user("ci-bot", password="ci-bot-pw-123")
print(AuthToken.objects.create(user)[1])
"""


def me(base: str, token: str, forwarded: str = "") -> requests.Response:
    headers = {"Authorization": f"Token {token}"}
    if forwarded:
        headers["X-Forwarded-For"] = forwarded
    return requests.get(f"{base}/api/v1/me", headers=headers, timeout=10)


def test_ten_bad_tokens_across_two_processes_lock_the_eleventh_but_not_a_good_token(tmp_path):
    env = site_env(tmp_path / "site", API_AUTH_FAILURE_LIMIT="10", TRUSTED_PROXIES="127.0.0.1")
    manage(env, "migrate", "--verbosity", "0")
    good = manage(env, "shell", "-c", MAKE_TOKEN).strip().splitlines()[-1]
    with (
        serving_process(env, log=tmp_path / "one.log", threads=2) as (one, _),
        serving_process(env, log=tmp_path / "two.log", threads=2) as (two, _),
    ):
        bases = itertools.cycle([one, two])
        answers = []
        for _ in range(10):
            base = next(bases)
            answers.append(me(base, "b" * 64, forwarded="203.0.113.7").status_code)
            assert me(base, good, forwarded="203.0.113.7").status_code == 200
        assert answers == [401] * 10
        for base in (one, two):
            locked = me(base, "b" * 64, forwarded="203.0.113.7")
            assert locked.status_code == 429 and locked.json()["error"]["code"] == "throttled"
            assert 0 < int(locked.headers["Retry-After"]) <= 300
            assert me(base, good, forwarded="203.0.113.7").status_code == 200
            assert me(base, "b" * 64, forwarded="203.0.113.8").status_code == 401  # another client
