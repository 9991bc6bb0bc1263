"""Lint the Dockerfiles (no Docker engine here): non-root, pinned, consistent with the project.

A small parser turns each Dockerfile into (instruction, argument) pairs, continuation lines joined.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "docker"


def instructions(path: Path) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued RUN
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, f"{path.name}: dangling line continuation"
    return out


def args_of(ins: list[tuple[str, str]]) -> dict[str, str]:
    found = {}
    for word, rest in ins:
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            found[name] = value.strip('"')
    return found


def constraint(name: str) -> str:
    for line in (ROOT / "constraints" / "ci.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.split("==", 1)[1].split("+", 1)[0]
    raise AssertionError(f"{name} not pinned in constraints/ci.txt")


def final_stage(ins):
    last_from = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    return ins[last_from:]


@pytest.mark.parametrize("name", ["operator.Dockerfile", "runtime.Dockerfile"])
def test_common_rules(name):
    ins = instructions(DOCKER / name)
    known = {"FROM", "ARG", "ENV", "RUN", "COPY", "WORKDIR", "USER", "ENTRYPOINT", "CMD", "EXPOSE", "LABEL"}
    assert {w for w, _ in ins} <= known
    args = args_of(ins)
    for word, rest in ins:
        if word == "FROM":
            image = rest.split()[0]
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
            repo, _, tag = image.rpartition(":")
            assert repo and tag and tag != "latest", f"{name}: unpinned base image {image}"
            assert tag.startswith("3.11"), f"{name}: base Python {tag} differs from CI's 3.11"
        if word == "COPY" and not rest.startswith("--from"):
            for src in shlex.split(rest)[:-1]:
                assert (ROOT / src).exists(), f"{name}: COPY of missing {src}"
        if word == "RUN":
            assert "latest" not in rest
            for pkg in re.findall(r"pip install [^&;]*", rest):
                assert "-c " in pkg or "==" in pkg, f"{name}: unpinned pip install: {pkg}"
    users = [rest for word, rest in final_stage(ins) if word == "USER"]
    assert users, f"{name}: the final stage has no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0") and user.isdigit(), f"{name}: must run as a numeric non-root user"


def test_operator_image_has_no_ml_stack_and_runs_the_operator():
    ins = instructions(DOCKER / "operator.Dockerfile")
    runs = " ".join(rest for word, rest in ins if word == "RUN")
    assert "grep -v" in runs and "torch" in runs  # torch & co. are filtered out of the constraints
    assert "[runtime" not in runs and "vllm" not in runs.replace("|vllm)", "")
    entry = [rest for word, rest in ins if word == "ENTRYPOINT"][-1]
    cmd = [rest for word, rest in ins if word == "CMD"][-1]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entry == '["kaito"]' and "kaito" in scripts and cmd == '["operator"]'
    exposed = {p for word, rest in ins if word == "EXPOSE" for p in rest.split()}
    assert exposed == {"8080", "8081", "9443"}


def test_runtime_image_pins_match_the_project():
    ins = instructions(DOCKER / "runtime.Dockerfile")
    args = args_of(ins)
    assert args["TORCH_VERSION"] == constraint("torch")
    assert "VLLM_VERSION" in {rest.split("=")[0] for word, rest in ins if word == "ARG"}
    runs = " ".join(rest for word, rest in ins if word == "RUN")
    assert '".[runtime,qlora,rag]"' in runs and "-c /tmp/runtime-constraints.txt" in runs
    assert '"vllm==${VLLM_VERSION}"' in runs
    final = final_stage(ins)
    assert ("WORKDIR", "/workspace") in final
    assert [rest for word, rest in final if word == "ENTRYPOINT"][-1] == '["python", "-m", "kaito.runtime.inference"]'
