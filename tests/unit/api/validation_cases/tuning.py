"""Tuning rules (14, 16–18), data sources, URL inputs (SSRF guard), destinations."""

from tests.unit.api.validation_cases.base import (
    DELETE,
    INPUT,
    OUTPUT,
    Case,
    T,
)

CASES = [
    # --- rules 14, 16-18: tuning
    Case("tuning-lora", "14", T()),
    Case("tuning-qlora", "14", T(tuning__method="qlora")),
    Case("tuning-method-case", "14", T(tuning__method="QLoRA")),
    Case("tuning-method-invalid", "14", T(tuning__method="sft"), [("tuning.method", "lora or qlora")]),
    Case("tuning-method-missing", "14", T(tuning__method=DELETE), [("tuning.method", "lora or qlora")]),
    Case(
        "tuning-method-unsupported-warns", "14", T(tuning__preset__name="lora-only", tuning__method="qlora")
    ),
    Case("tuning-no-input", "16", T(tuning__input=DELETE), [(INPUT, "required")]),
    Case("tuning-no-output", "17", T(tuning__output=DELETE), [(OUTPUT, "required")]),
    Case("tuning-no-preset", "18", T(tuning__preset=DELETE), [("tuning.preset", "required")]),
    Case(
        "tuning-preset-unknown",
        "18",
        T(tuning__preset__name="nope"),
        [("tuning.preset.name", "unsupported tuning preset")],
    ),
    Case("tuning-hf-id", "18", T(tuning__preset__name="Qwen/Qwen2.5-0.5B-Instruct")),
    # --- DataSource (create)
    Case("input-urls", "ds", T()),
    Case("input-image", "ds", T(tuning__input={"image": "registry.example.com/data/set:1"})),
    Case("input-image-nested", "ds", T(tuning__input={"image": "r.io/org/team/set:v2"})),
    Case(
        "input-image-no-registry",
        "ds",
        T(tuning__input={"image": "dataset:1"}),
        [(f"{INPUT}.image", "full input image")],
    ),
    Case(
        "input-image-no-tag",
        "ds",
        T(tuning__input={"image": "r.io/data/set"}),
        [(f"{INPUT}.image", "full input image")],
    ),
    Case(
        "input-image-uppercase",
        "ds",
        T(tuning__input={"image": "r.io/data/DataSet:1"}),
        [(f"{INPUT}.image", "lowercase")],
    ),
    Case("input-none", "ds", T(tuning__input={"name": "in"}), [(INPUT, "exactly one")]),
    Case(
        "input-urls-and-image",
        "ds",
        T(tuning__input={"urls": ["https://e.com/a"], "image": "r.io/d/s:1"}),
        [(INPUT, "exactly one")],
    ),
    # --- v0.12: volumes are data sources (v0.3.2 said "not implemented yet")
    Case("input-volume", "ds", T(tuning__input={"volumeSource": {"persistentVolumeClaim": {"claimName": "d"}}})),
    Case("input-volume-named", "ds", T(tuning__input={"name": "in", "volumeSource": {"hostPath": {"path": "/d"}}})),
    Case(
        "input-volume-and-urls",
        "ds",
        T(tuning__input={"urls": ["https://e.com/a"], "volumeSource": {"emptyDir": {}}}),
        [(INPUT, "exactly one")],
    ),
    Case(
        "input-volume-empty",
        "ds",
        T(tuning__input={"volumeSource": {}}),
        [(f"{INPUT}.volumeSource", "one volume type")],
    ),
    Case(
        "input-volume-two-kinds",
        "ds",
        T(tuning__input={"volumeSource": {"emptyDir": {}, "hostPath": {"path": "/d"}}}),
        [(f"{INPUT}.volumeSource", "exactly one volume type, got emptyDir, hostPath")],
    ),
    # --- later rule: URL inputs (SSRF guard)
    Case(
        "url-ftp",
        "url",
        T(tuning__input={"urls": ["ftp://e.com/a"]}),
        [(f"{INPUT}.urls[0]", "http or https")],
    ),
    Case(
        "url-localhost",
        "url",
        T(tuning__input={"urls": ["http://localhost:8080/a"]}),
        [(f"{INPUT}.urls[0]", "localhost")],
    ),
    Case(
        "url-sub-localhost",
        "url",
        T(tuning__input={"urls": ["http://api.localhost/a"]}),
        [(f"{INPUT}.urls[0]", "localhost")],
    ),
    Case(
        "url-loopback",
        "url",
        T(tuning__input={"urls": ["http://127.0.0.1/a"]}),
        [(f"{INPUT}.urls[0]", "loopback")],
    ),
    Case(
        "url-ipv6-loopback",
        "url",
        T(tuning__input={"urls": ["http://[::1]/a"]}),
        [(f"{INPUT}.urls[0]", "loopback")],
    ),
    Case(
        "url-metadata-ip",
        "url",
        T(tuning__input={"urls": ["http://169.254.169.254/latest"]}),
        [(f"{INPUT}.urls[0]", "link-local")],
    ),
    Case(
        "url-metadata-host",
        "url",
        T(tuning__input={"urls": ["http://metadata.google.internal/x"]}),
        [(f"{INPUT}.urls[0]", "metadata")],
    ),
    Case(
        "url-private",
        "url",
        T(tuning__input={"urls": ["https://10.1.2.3/a"]}),
        [(f"{INPUT}.urls[0]", "private")],
    ),
    Case(
        "url-mapped-private",
        "url",
        T(tuning__input={"urls": ["https://[::ffff:192.168.0.1]/a"]}),
        [(f"{INPUT}.urls[0]", "private")],
    ),
    Case("url-no-host", "url", T(tuning__input={"urls": ["https:///a"]}), [(f"{INPUT}.urls[0]", "no host")]),
    Case(
        "url-second-bad",
        "url",
        T(tuning__input={"urls": ["https://e.com/a", "http://0.0.0.0/"]}),
        [(f"{INPUT}.urls[1]", "loopback")],
    ),
    Case("url-public-ip", "url", T(tuning__input={"urls": ["https://8.8.8.8/data"]})),
    # Numeric host forms resolvers turn into addresses (inet_aton): they must not pass as DNS names.
    *(
        Case(f"url-numeric-{n}", "url", T(tuning__input={"urls": [u]}), [(f"{INPUT}.urls[0]", phrase)])
        for n, (u, phrase) in enumerate(
            [
                ("http://2130706433/x", "loopback"),
                ("http://0x7f000001/x", "loopback"),
                ("http://127.1/x", "loopback"),
                ("http://0177.0.0.1/x", "loopback"),
                ("http://0/", "loopback"),
                ("http://0xa9fea9fe/latest", "link-local"),
                ("http://0300.0250.1.1/x", "private"),
                ("http://[0:0:0:0:0:0:0:1]/x", "loopback"),
                ("http://[::ffff:7f00:1]/x", "loopback"),
                ("http://[v1.x]/x", "IPv6"),
                ("http://100.64.0.1/x", "shared address"),
                ("http://100.100.100.200/latest", "metadata"),
            ]
        )
    ),
    Case("url-hex-letters-dns-name", "url", T(tuning__input={"urls": ["https://cafe.be/data"]})),
    Case("url-digits-dns-name", "url", T(tuning__input={"urls": ["https://1.2.3.4.5/data"]})),
    # --- DataDestination (create)
    Case("output-none", "dd", T(tuning__output={}), [(OUTPUT, "exactly one of volumeSource or image")]),
    Case(
        "output-no-secret",
        "dd",
        T(tuning__output={"image": "r.io/a/b:1"}),
        [(f"{OUTPUT}.imagePushSecret", "required")],
    ),
    Case(
        "output-no-registry",
        "dd",
        T(tuning__output__image="adapter:1"),
        [(f"{OUTPUT}.image", "full output image")],
    ),
    Case(
        "output-no-tag",
        "dd",
        T(tuning__output__image="r.io/a/adapter"),
        [(f"{OUTPUT}.image", "full output image")],
    ),
    Case(
        "output-uppercase",
        "dd",
        T(tuning__output__image="r.io/a/Adapter:1"),
        [(f"{OUTPUT}.image", "lowercase")],
    ),
    # --- v0.12: exactly one of volume or image
    Case("output-volume", "dd", T(tuning__output={"volumeSource": {"emptyDir": {}}})),
    Case("output-volume-pvc", "dd", T(tuning__output={"volumeSource": {"persistentVolumeClaim": {"claimName": "r"}}})),
    Case(
        "output-volume-and-image",
        "dd",
        T(tuning__output__volumeSource={"emptyDir": {}}),
        [(OUTPUT, "exactly one of volumeSource or image")],
    ),
    Case(
        "output-volume-empty",
        "dd",
        T(tuning__output={"volumeSource": {}}),
        [(f"{OUTPUT}.volumeSource", "one volume type")],
    ),
]
