"""Beyond dev, a password or key is rated by zxcvbn (an estimator nobody here wrote) as well as by its length and
its characters' spread: the weak-but-varied values the adversarial pass got accepted are refused with zxcvbn's
own warning and the command that makes a strong one, never the value; what the docs tell operators to generate,
and the tests' strong values, still pass."""

import subprocess

import pytest

from components.model.settings import key_weakness, password_weakness

# Accepted on main (the characters' spread alone): each is a repeat, a sequence, or a word and digits twice.
WEAK_BUT_VARIED = {
    "ab-repeated": ("ab" * 20, "Repeats like"),
    "alphabet-and-digits": ("abcdefghijklmnopqrstuvwxyz0123456789", "Sequences like"),
    "password123-twice": ("Password123!Password123!", "Repeats like"),
}
# Rated strong by zxcvbn alone (it prices each separator between known words as a random character), but little
# besides the stack's own names and words (GUESS_CONTEXT).
OWN_WORDS = ("pmoves-tensorzero-prod", "tensorzero-readonly-2026", "changeme-changeme")
# Values the tests use as strong credentials beyond dev (tests/conftest.py's canaries, test_malformed's STRONG_ENV).
FIXTURES = ("c-0123456789abcdef", "canary-clickhouse-pw-7f3a", "canary-ui-pw-3b9e", "s3cret-pw-long-enough")


@pytest.mark.parametrize(("value", "warning"), WEAK_BUT_VARIED.values(), ids=WEAK_BUT_VARIED.keys())
def test_a_weak_but_varied_password_is_refused_with_zxcvbns_warning(value, warning):
    why = password_weakness(value)
    assert why is not None and warning in why
    assert "zxcvbn score 3" in why and "`openssl rand -hex 32`" in why
    assert value not in why


@pytest.mark.parametrize("value", OWN_WORDS)
def test_a_password_made_of_the_stack_s_own_words_is_refused(value):
    why = password_weakness(value)
    assert why is not None and "little besides this stack's own names and words" in why and value not in why


def test_a_structured_key_is_refused_though_long_and_spread():
    value = "abcdefghijklmnopqrstuvwxyz012345"  # 32 characters, 160 bits by the spread: the rule it slipped past
    why = key_weakness(value)
    assert why is not None and "Sequences like" in why and "a key needs 10^8 or more" in why


@pytest.mark.parametrize("command", [["openssl", "rand", "-hex", "32"], ["openssl", "rand", "-base64", "32"]])
def test_what_the_docs_generate_passes(command):
    for _ in range(20):  # twenty fresh values from the real openssl
        value = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()
        assert password_weakness(value) is None and key_weakness(value) is None, value


@pytest.mark.parametrize("value", FIXTURES)
def test_the_tests_strong_values_pass(value):
    assert password_weakness(value) is None


def test_a_long_value_is_rated_not_refused_by_zxcvbns_length_limit():
    # zxcvbn raises on input over 72 characters; a 128-digit key must be rated, not crash validate.
    value = subprocess.run(["openssl", "rand", "-hex", "64"], check=True, capture_output=True, text=True).stdout
    assert key_weakness(value.strip()) is None
    assert key_weakness("ab" * 64) is not None
