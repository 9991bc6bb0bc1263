"""`tuning` on CREATE, with its data source and destination (SSRF guard, image references)."""

from tests.unit.api.v1beta1_cases.base import DELETE, Case, T

IN, OUT = "tuning.input", "tuning.output"
F = "TestTuningSpecValidateCreate/"
S = "TestDataSourceValidateCreate/"
D = "TestDataDestinationValidateCreate/"


def source(**src) -> dict:
    return T(tuning__input=src)


def dest(**dst) -> dict:
    return T(tuning__output=dst)


CASES = [
    Case(F + "All fields valid", T()),
    Case(F + "Verify QLoRA Config", T(tuning__method="qlora")),
    Case(F + "Missing Input", T(tuning__input=DELETE), [(IN, "required")]),
    Case(F + "Missing Output", T(tuning__output=DELETE), [(OUT, "required")]),
    Case(F + "Missing Preset", T(tuning__preset=DELETE), [("tuning.preset", "required")]),
    Case(F + "Invalid Preset", T(tuning__preset__name="invalid-preset"), [("tuning.preset.name", "unsupported")]),
    Case(F + "Invalid Method", T(tuning__method="invalid-method"), [("tuning.method", "invalid tuning method")]),
    Case(F + "Invalid Input Source Casing", source(name="valid-input", image="kaito.azurecr.io/INPUT:0.0.0"),
         [(IN + ".image", "lowercase")]),
    Case(F + "Invalid Output Destination Casing",
         dest(image="kaito.azurecr.io/OUTPUT:0.0.0", imagePushSecret="secret"), [(OUT + ".image", "lowercase")]),
    Case("ours/tuning qlora with the lora template", T(tuning__method="qlora", tuning__config="lora-params-template",
                                                       metadata__namespace="kaito-workspace"),
         [("tuning.config", "qlora")]),
    # TestDataSourceValidateCreate
    Case(S + "URLs specified only", source(urls=["http://example.com/data"])),
    Case(S + "Unsupported URL scheme", source(urls=["ftp://example.com/data"]), [(IN + ".urls[0]", "http or https")]),
    Case(S + "Loopback URL", source(urls=["http://127.0.0.1/data"]), [(IN + ".urls[0]", "loopback")]),
    Case(S + "Private URL", source(urls=["http://10.0.0.1/data"]), [(IN + ".urls[0]", "private")]),
    Case(S + "Link-local URL", source(urls=["http://169.254.169.254/latest/meta-data"]),
         [(IN + ".urls[0]", "link-local")]),
    Case(S + "IPv6 loopback URL", source(urls=["http://[::1]/data"]), [(IN + ".urls[0]", "loopback")]),
    Case(S + "Metadata hostname URL", source(urls=["http://metadata.google.internal/computeMetadata/v1"]),
         [(IN + ".urls[0]", "metadata")]),
    # KAITO admits an empty volumeSource; it names no volume, so the pod could never start.
    Case(S + "Volume specified only", source(volumeSource={}), [(IN + ".volumeSource", "one volume type")],
         differs="empty-volume-source"),
    Case("ours/Volume specified only, with a volume type", source(volumeSource={"emptyDir": {}})),
    Case(S + "Image specified only", source(image="aimodels.azurecr.io/data-image:latest")),
    Case(S + "Image without URL Specified", source(image="data-image:latest", imagePullSecrets=["imagePushSecret"])),
    Case(S + "Image without Tag Specified",
         source(image="aimodels.azurecr.io/data-image", imagePullSecrets=["imagePushSecret"])),
    Case(S + "Invalid image", source(image="!ValidImage", imagePullSecrets=["imagePushSecret"]),
         [(IN + ".image", "invalid input image reference")]),
    Case(S + "None specified", source(), [(IN, "exactly one of urls, volumeSource or image")]),
    Case(S + "URLs and Volume specified", source(urls=["http://example.com/data"], volumeSource={"emptyDir": {}}),
         [(IN, "exactly one of")]),
    Case(S + "All fields specified", source(urls=["http://example.com/data"], image="aimodels.azurecr.io/data-image:latest"),
         [(IN, "exactly one of")]),
    # TestDataDestinationValidateCreate
    Case(D + "No fields specified", dest(), [(OUT, "exactly one of volumeSource or image")]),
    Case(D + "Volume specified only", dest(volumeSource={}), [(OUT + ".volumeSource", "one volume type")],
         differs="empty-volume-source"),
    Case("ours/Destination volume with a volume type", dest(volumeSource={"persistentVolumeClaim": {"claimName": "o"}})),
    Case(D + "Image specified only", dest(image="aimodels.azurecr.io/data-image:latest", imagePushSecret="s")),
    Case(D + "Image without URL Specified", dest(image="data-image:latest", imagePushSecret="s")),
    Case(D + "Image without Tag Specified", dest(image="aimodels.azurecr.io/data-image", imagePushSecret="s")),
    Case(D + "Invalid image", dest(image="!ValidImage", imagePushSecret="s"), [(OUT + ".image", "invalid output image")]),
    Case(D + "Both fields specified",
         dest(volumeSource={"emptyDir": {}}, image="aimodels.azurecr.io/data-image:latest", imagePushSecret="s"),
         [(OUT, "exactly one of volumeSource or image")]),
    Case("ours/Destination image without its push secret", dest(image="aimodels.azurecr.io/data-image:latest"),
         [(OUT + ".imagePushSecret", "required")]),
]
