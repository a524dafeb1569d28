"""Start-up self-check: a bundle must reproduce its stored sample on the CPU it is served on."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.bundle import VariantInfo, read_manifest
from service.registry import ModelRegistry
from service.runtime.cpu_features import INT8_DOT_PRODUCT, CpuInfo, current_cpu, parse_cpuinfo
from service.selfcheck import SelfCheckError, check_cpu_features
from service.settings import Settings

AVX2_ONLY = CpuInfo(model="AMD EPYC", flags=["avx2"])
VNNI = CpuInfo(model="Intel Xeon", flags=["avx2", "avx512f", "avx512_vnni", "amx_int8"])

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu vme sse sse2 avx avx2 fma bmi2 avx512f avx512bw avx512_vnni sha_ni
processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu
"""


def _copy(bundle: Path, root: Path) -> Path:
    target = root / "bundles" / bundle.name
    shutil.copytree(bundle, target)
    return target


def _edit_manifest(bundle: Path, edit: object) -> None:
    path = bundle / "bundle.json"
    data = json.loads(path.read_text())
    edit(data)  # type: ignore[operator]
    path.write_text(json.dumps(data))


def _load(bundles: Path) -> ModelRegistry:
    registry = ModelRegistry(Settings(bundles_dir=bundles))
    registry.discover()
    registry.load()
    return registry


def test_cpuinfo_gives_the_model_and_only_the_int8_relevant_flags() -> None:
    cpu = parse_cpuinfo(CPUINFO)
    assert cpu.model == "AMD EPYC 7B13"
    assert cpu.flags == ["avx2", "avx512f", "avx512bw", "avx512_vnni"]
    assert cpu.has_any(list(INT8_DOT_PRODUCT)) and not AVX2_ONLY.has_any(list(INT8_DOT_PRODUCT))
    assert "avx512_vnni" in cpu.describe()


def test_exports_store_a_sample_that_passes_on_the_exporting_cpu(tiny_bundle: Path) -> None:
    manifest = read_manifest(tiny_bundle)
    assert manifest.schema_version == 3 and manifest.selfcheck is not None
    check = manifest.selfcheck
    assert len(check.outputs) == len(check.texts) >= 5
    assert check.atol == manifest.parity.atol  # fp32: the parity gate's own tolerance
    assert check.validated_on == current_cpu()
    registry = _load(tiny_bundle.parent)
    assert registry.ready, registry.load_error
    report = registry.models[manifest.name].selfcheck
    assert report is not None and report.status == "passed"
    assert report.max_abs_diff is not None and report.max_abs_diff <= check.atol


def test_tampered_expected_outputs_keep_the_service_unready_with_the_reason(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    bundle = _copy(tiny_bundle, tmp_path)

    def nudge(data: dict) -> None:  # one stored emission moved by 10x the tolerance
        check = data["selfcheck"]
        check["outputs"][2][1][3] += 10 * check["atol"]

    _edit_manifest(bundle, nudge)
    settings = Settings(bundles_dir=bundle.parent)
    with TestClient(create_app(settings, ModelRegistry(settings))) as client:
        deadline = time.monotonic() + 30
        while (answer := client.get("/readyz")).status_code == 503 and time.monotonic() < deadline:
            if "self-check" in answer.text:
                break
            time.sleep(0.05)
        assert answer.status_code == 503
        message = answer.json()["error"]["message"]
        assert "self-check failed" in message and current_cpu().model in message
        assert "tolerance" in message
        assert client.post("/v1/entities", json={"text": "dosa"}).status_code == 503


def test_a_sample_of_the_wrong_shape_fails_the_check(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)
    _edit_manifest(bundle, lambda d: d["selfcheck"]["outputs"][0].pop())
    registry = _load(bundle.parent)
    assert not registry.ready and registry.load_error is not None
    assert "differ from the export's by up to inf" in registry.load_error


def test_bundles_without_a_sample_still_load(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _copy(tiny_bundle, tmp_path)

    def as_schema_1(data: dict) -> None:
        del data["selfcheck"]
        data["schema_version"] = 1

    _edit_manifest(bundle, as_schema_1)
    registry = _load(bundle.parent)
    assert registry.ready
    report = registry.models[tiny_bundle.name].selfcheck
    assert report is not None and report.status == "absent"


@pytest.mark.parametrize(
    ("variant", "cpu", "refused"),
    [
        # Exact everywhere: served on any CPU.
        (VariantInfo(quantization="int8-dynamic", int8_format="u8s8-reduced"), AVX2_ONLY, False),
        (VariantInfo(quantization="int8-dynamic", int8_format="u8u8"), AVX2_ONLY, False),
        # Full-range u8 x s8 needs a dot-product instruction.
        (
            VariantInfo(
                quantization="int8-dynamic",
                int8_format="u8s8",
                requires_cpu_features=list(INT8_DOT_PRODUCT),
            ),
            AVX2_ONLY,
            True,
        ),
        (
            VariantInfo(
                quantization="int8-dynamic",
                int8_format="u8s8",
                requires_cpu_features=list(INT8_DOT_PRODUCT),
            ),
            VNNI,
            False,
        ),
        # INT8 bundles from before formats were recorded are u8 x s8.
        (VariantInfo(quantization="int8-dynamic"), AVX2_ONLY, True),
        (VariantInfo(quantization="int8-dynamic"), VNNI, False),
        (VariantInfo(optimized=True), AVX2_ONLY, False),
    ],
)
def test_int8_formats_that_need_vnni_are_refused_naming_the_feature(
    tiny_bundle: Path, variant: VariantInfo, cpu: CpuInfo, refused: bool
) -> None:
    manifest = read_manifest(tiny_bundle).model_copy(update={"variant": variant})
    if not refused:
        check_cpu_features(manifest, cpu)
        return
    with pytest.raises(SelfCheckError) as caught:
        check_cpu_features(manifest, cpu)
    message = str(caught.value)
    assert "avx512_vnni" in message and "AMD EPYC [avx2]" in message
    assert "--int8-format u8s8-reduced" in message


def test_a_required_cpu_feature_this_host_lacks_keeps_it_unready(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    bundle = _copy(tiny_bundle, tmp_path)

    def needs_a_feature(data: dict) -> None:
        data["variant"] = {"quantization": "int8-dynamic", "int8_format": "u8s8"}
        data["variant"]["requires_cpu_features"] = ["no_cpu_has_this_flag"]

    _edit_manifest(bundle, needs_a_feature)
    registry = _load(bundle.parent)
    assert not registry.ready and registry.load_error is not None
    assert "no_cpu_has_this_flag" in registry.load_error
