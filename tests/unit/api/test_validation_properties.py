"""Property: any Workspace-shaped input is answered with errors, never with an exception.

Values are drawn from a mix of right-typed and wrong-typed data at every field, so both the
parser (pydantic errors → field errors) and the rules (on whatever parses) are exercised.
"""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaito.api.admission import admit
from kaito.api.documents import parse_documents
from kaito.api.errors import FieldError
from kaito.api.validation import validate_tuning_config
from kaito.catalog.facts import build_catalog_facts
from tests.unit.api.fake_facts import FakeFacts

text = st.one_of(
    st.sampled_from(
        [
            "",
            "falcon-7b",
            "phi-3-mini-4k-instruct",
            "llama-2-7b",
            "Qwen/Qwen2.5-0.5B-Instruct",
            "explode",
            "test-validation",
            "private-test-validation",
            "Standard_NC12s_v3",
            "Standard_NC6",
            "Standard_Dx",
            "p4d.24xlarge",
            "r.io/a/b:1",
            "R.io/A/B",
            "https://e.com/x",
            "http://127.0.0.1/",
            "http://[::1",
            "lora",
            "QLoRA",
            "nan",
            "0.5",
            "2",
            "-1",
            "In",
            "NotIn",
        ]
    ),
    st.text(max_size=12),
)
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 20),
    st.floats(allow_nan=True),
    text,
    st.lists(text, max_size=2),
    st.dictionaries(text, text, max_size=2),
)


def build_workspace(junk_weight: int):
    """Workspace-shaped dicts; `junk_weight` 0 gives right types everywhere, higher mixes in wrong ones."""

    def maybe(strategy):
        return st.one_of(strategy, junk) if junk_weight else strategy

    def obj(required: dict | None = None, optional: dict | None = None):
        req = {k: maybe(v) for k, v in (required or {}).items()}
        opt = {k: maybe(v) for k, v in (optional or {}).items()}
        return maybe(st.fixed_dictionaries(req, optional=opt))

    names = st.lists(text, max_size=3)
    selector = obj(
        optional={
            "matchLabels": st.dictionaries(
                st.sampled_from(["a", "kaito.sh/workspace", "x"]), text, max_size=2
            ),
            "matchExpressions": st.lists(obj({"key": text, "operator": text}, {"values": names}), max_size=2),
        }
    )
    options = obj(optional={"image": text, "imagePullSecrets": names})
    preset = obj(
        {"name": text}, {"accessMode": st.sampled_from(["public", "private"]), "presetOptions": options}
    )
    volume = st.just({"emptyDir": {}})
    source = obj(
        optional={
            "name": text,
            "urls": names,
            "image": text,
            "volumeSource": volume,
            "imagePullSecrets": names,
        }
    )
    destination = obj(optional={"image": text, "imagePushSecret": text, "volumeSource": volume})
    adapters = st.lists(obj(optional={"source": source, "strength": text}), max_size=12)
    return st.fixed_dictionaries(
        {"apiVersion": st.sampled_from(["kaito.sh/v1alpha1", "kaito.sh/v1beta1"]), "kind": st.just("Workspace")},
        optional={
            "metadata": obj(optional={"name": text, "namespace": text, "generation": st.integers(0, 3)}),
            "resource": obj(
                {"labelSelector": selector},
                {"count": st.integers(-1, 4), "instanceType": text, "preferredNodes": names},
            ),
            "inference": obj(
                optional={"preset": preset, "template": st.just({"spec": {}}), "adapters": adapters}
            ),
            "tuning": obj(
                optional={
                    "preset": preset,
                    "method": text,
                    "config": text,
                    "input": source,
                    "output": destination,
                }
            ),
            "status": obj(optional={"workerNodes": names}),
        },
    )


typed_workspace = build_workspace(0)
workspace = st.one_of(typed_workspace, build_workspace(1))

FACTS = [FakeFacts(), build_catalog_facts(read_local_sizes=False)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(new=workspace, old=workspace)
def test_validation_never_raises(new, old) -> None:
    for facts in FACTS:
        for verdict in (admit(new, facts=facts), admit(new, old, facts=facts)):
            result = verdict.problems
            assert all(isinstance(e, FieldError) and e.severity in ("error", "warning") for e in result)


@settings(max_examples=100, deadline=None)
@given(doc=workspace)
def test_documents_never_raise(doc) -> None:
    docs, problems = parse_documents(yaml.safe_dump(doc), "p.yaml")
    for d in docs:
        for problem in d.problems:
            assert problem.source == "p.yaml"


@settings(max_examples=150, deadline=None)
@given(
    body=st.one_of(
        text,
        st.builds(lambda d: yaml.safe_dump({"training_config": d}), st.dictionaries(text, junk, max_size=3)),
    ),
    method=text,
)
def test_tuning_config_never_raises(body, method) -> None:
    result = validate_tuning_config("cfg", {"training_config.yaml": body}, method, "ns")
    assert all(isinstance(e, FieldError) for e in result)
