"""The v1alpha1 admission table (`validation_cases`) through `kaito.api.admission.admit`, and URL policies.

Each case asserts the field path and a phrase of the message; an empty expectation means admitted.
"""

from __future__ import annotations

import pytest

from kaito.api.admission import AdmissionOptions, admit
from kaito.api.validation import UrlPolicy
from tests.unit.api.fake_facts import FakeFacts
from tests.unit.api.validation_cases import CASES, Case
from tests.unit.api.validation_cases.base import INPUT, I, T


@pytest.fixture(scope="module")
def facts() -> FakeFacts:
    return FakeFacts()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule(case: Case, facts: FakeFacts) -> None:
    verdict = admit(case.new, case.old, facts=facts)
    assert verdict.api_version == "kaito.sh/v1alpha1"
    errors = verdict.errors
    if not case.expect:
        assert errors == [], f"rule {case.rule}: expected admission, got {errors}"
        return
    for path, phrase in case.expect:
        hits = [e for e in errors if e.path == path and phrase.lower() in e.message.lower()]
        assert hits, f"rule {case.rule}: no error at {path!r} mentioning {phrase!r}; got {errors}"


# `tuning.input.urls` under both URL policies: (url, phrase when strict, phrase on the local cluster);
# None means admitted. Strict is the default everywhere; the local cluster admits its own addresses
# but never a metadata service or a link-local address.
URL_POLICY_CASES = [
    ("http://127.0.0.1:8000/train.jsonl", "loopback", None),
    ("http://[::1]:8000/train.jsonl", "loopback", None),
    ("http://0.0.0.0:8000/train.jsonl", "loopback", None),
    ("http://localhost:8000/train.jsonl", "localhost", None),
    ("http://data.localhost/train.jsonl", "localhost", None),
    ("http://192.168.1.20/train.jsonl", "private", None),
    ("http://[fd00::1]/train.jsonl", "private", None),
    ("https://example.com/train.jsonl", None, None),
    ("http://169.254.169.254/latest/meta-data", "link-local", "link-local"),
    ("http://[fe80::1]/x", "link-local", "link-local"),
    ("http://metadata.google.internal/x", "metadata", "metadata"),
    ("http://224.0.0.1/x", "multicast", "multicast"),
    ("file:///etc/passwd", "http or https", "http or https"),
    ("http:///train.jsonl", "no host", "no host"),
    ("http://2130706433/train.jsonl", "loopback", None),
    ("http://0x7f000001/train.jsonl", "loopback", None),
    ("http://127.1/train.jsonl", "loopback", None),
    ("http://0177.0.0.1/train.jsonl", "loopback", None),
    ("http://0/", "loopback", None),
    ("http://0300.0250.1.1/x", "private", None),
    ("http://[::ffff:7f00:1]/x", "loopback", None),
    ("http://0xa9fea9fe/latest", "link-local", "link-local"),
    ("http://169.254.43518/latest", "link-local", "link-local"),
    ("http://100.64.0.1/x", "shared address", None),
    ("http://100.100.100.200/latest", "metadata", "metadata"),
    ("http://[fd00:ec2::254]/latest", "metadata", "metadata"),
    ("http://[v1.x]/x", "IPv6", "IPv6"),
]


@pytest.mark.parametrize("policy", [UrlPolicy.PUBLIC_ONLY, UrlPolicy.ALLOW_LOCAL], ids=lambda p: p.value)
@pytest.mark.parametrize(("url", "strict", "local"), URL_POLICY_CASES, ids=[c[0] for c in URL_POLICY_CASES])
def test_url_policy(facts: FakeFacts, policy: UrlPolicy, url: str, strict: str | None, local: str | None) -> None:
    expected = strict if policy is UrlPolicy.PUBLIC_ONLY else local
    new = T(tuning__input={"urls": [url]})
    for old in (None, T()):  # CREATE, and UPDATE to this URL
        errors = admit(new, old, facts=facts, options=AdmissionOptions(url_policy=policy)).errors
        if expected is None:
            assert errors == []
        else:
            assert [e.path for e in errors] == [f"{INPUT}.urls[0]"], errors
            assert expected in errors[0].message
            assert url in errors[0].message


def test_strict_url_errors_say_where_the_address_is_allowed(facts: FakeFacts) -> None:
    new = T(tuning__input={"urls": ["http://127.0.0.1:9/a"]})
    default = admit(new, facts=facts).errors
    assert default == admit(new, facts=facts, options=AdmissionOptions(url_policy=UrlPolicy.PUBLIC_ONLY)).errors
    assert "local cluster" in default[0].message
    metadata = T(tuning__input={"urls": ["http://169.254.169.254/"]})
    assert "local cluster" not in admit(metadata, facts=facts).errors[0].message


def test_table_covers_every_rule_both_ways() -> None:
    assert len(CASES) >= 80
    rules = {c.rule for c in CASES}
    for rule in [
        *(str(n) for n in range(1, 15)),
        "16",
        "17",
        "18",
        "19",
        "20",
        "21",
        "22",
        "23",
        "ds",
        "dd",
        "url",
        "name",
    ]:
        accepting = [c for c in CASES if rule in c.rule.split("-") and not c.expect]
        rejecting = [c for c in CASES if rule in c.rule.split("-") and c.expect]
        if rule in ("1", "2"):
            continue  # covered jointly by the "1-2" accepting cases and their own rejecting cases
        assert rule in rules or accepting or rejecting, rule
        assert rejecting, f"no rejecting case for rule {rule}"
    # rules with an accepting case of their own
    for rule in (
        "3",
        "4",
        "5",
        "6",
        "9",
        "11",
        "12",
        "13",
        "14",
        "18",
        "19",
        "20",
        "21",
        "22",
        "23",
        "ds",
        "url",
        "name",
    ):
        assert any(c.rule == rule and not c.expect for c in CASES), f"no accepting case for rule {rule}"


def test_unknown_preset_never_reaches_fit_check(facts: FakeFacts) -> None:
    calls = []

    class Spy(FakeFacts):
        def check_fit(self, instance_type, count, preset_name):
            calls.append(preset_name)
            return super().check_fit(instance_type, count, preset_name)

    errors = admit(I(inference__preset__name="ghost"), facts=Spy()).errors
    assert calls == [None]
    assert [e.path for e in errors] == ["inference.preset.name"]


def test_warnings_for_deprecated_and_unknown_size(facts: FakeFacts) -> None:
    problems = admit(I(inference__preset__name="deprecated-model"), facts=facts).problems
    assert any(p.severity == "warning" and "deprecated" in p.message for p in problems)
    problems = admit(I(inference__preset__name="org/model"), facts=facts).problems
    assert any(
        p.severity == "warning" and "fit not checked" in p.message and p.path == "resource.instanceType"
        for p in problems
    )
