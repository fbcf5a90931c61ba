"""The HTML report: the page's data from a synthetic fixture (tests/synthetic.py), the CLI
and the server. The page in a real browser: tests/test_report_browser.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from bench.cli import main
from bench.report import build_report, start_server
from bench.report.data import queue_curve
from bench.report.labels import case_label
from bench.report.payload import _samples, embed
from tests.synthetic import HOSTILE, MACHINES, write_synthetic


class Page(HTMLParser):
    """Just enough of the server-rendered DOM for assertions: ids, support-matrix cells."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.cells: list[dict[str, str]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "td" and "cell" in a.get("class", "").split():
            self.cells.append(a)


def page_data(html: str) -> dict[str, Any]:
    """The JSON the page's script draws from, rows as dicts."""
    text = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S).group(1)  # type: ignore[union-attr]
    data = json.loads(text)
    data["records"] = [dict(zip(data["columns"], row)) for row in data["rows"]]
    return data


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("results")
    write_synthetic(directory)
    return directory


@pytest.fixture(scope="module")
def report(results_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_report([results_dir], tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def html(report: Path) -> str:
    return report.read_text()


@pytest.fixture(scope="module")
def data(html: str) -> dict[str, Any]:
    return page_data(html)


@pytest.fixture(scope="module")
def rows(results_dir: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted(results_dir.glob("*.parquet"))], ignore_index=True)


def test_report_has_every_section(html: str, rows: pd.DataFrame) -> None:
    expected = {"headline", "answer", "matrix", "detail", "compare-machines", "roofline", "training", "support",
                "rows", "data", "filters", "selftest", "report-data"}
    expected |= {f"w-{w.replace('_', '-')}" for w in rows["workload"].unique()}
    assert expected <= Page(html).ids


def test_headline_names_both_machines_and_framework_versions(html: str) -> None:
    for m in MACHINES:
        assert m.machine in html
    assert "tensorflow 2.19.1" in html and "mlx 0.29.3" in html


def test_every_row_reaches_the_page_once(data: dict[str, Any], rows: pd.DataFrame) -> None:
    assert len(data["records"]) == len(rows)
    assert sorted(r["status"] for r in data["records"]) == sorted(rows["status"])


def test_support_matrix_has_a_cell_per_machine_framework_workload(html: str, rows: pd.DataFrame) -> None:
    cells = Page(html).cells
    assert len(cells) == rows["machine"].nunique() * rows["framework"].nunique() * rows["workload"].nunique()
    statuses = {c["data-status"] for c in cells}
    assert {"error", "partial", "unsupported", "ok"} <= statuses
    error = next(c for c in cells if c["data-status"] == "error")
    assert "bf16 is not supported" in error["title"]  # the reason is on hover


def test_groups_compare_only_like_with_like_and_never_across_modes(data: dict[str, Any]) -> None:
    records = data["records"]
    for g in data["groups"]:
        ok = {fw: c for fw, c in g["cells"].items() if c["status"] == "ok"}
        for fw, c in ok.items():
            r = records[c["row"]]
            assert (r["machine"], r["workload"], r["dtype"], r["timing"], r["mode"]) == \
                   (g["machine"], g["workload"], g["dtype"], g["timing"], g["mode"])
            assert r["framework"] == fw and r["not_ranked"] == ""
            assert c["lo"] <= c["ratio"] <= c["hi"]  # the ratio sits inside its interval
        if ok:
            assert min(c["ratio"] for c in ok.values()) == 1.0  # one fastest per group
    modes = {(g["workload"], g["mode"]) for g in data["groups"] if g["workload"] == "train_step"}
    assert modes == {("train_step", "eager"), ("train_step", "compiled")}


def test_precision_mismatch_is_shown_in_its_case_with_the_reason_never_ranked(data: dict[str, Any]) -> None:
    group = next(g for g in data["groups"] if g["machine"].startswith("AMD") and g["workload"] == "sdpa"
                 and g["dtype"] == "fp16" and "tensorflow" in g["cells"])
    cell = group["cells"]["tensorflow"]
    assert cell["status"] == "unranked" and "ratio" not in cell
    assert cell["note"] == "measured bf16-class, not fp16"


def test_a_case_where_nothing_could_be_ranked_still_has_its_line(data: dict[str, Any]) -> None:
    tf32 = [g for g in data["groups"] if g["workload"] == "matmul" and g["dtype"] == "tf32"]
    assert tf32 and all(c["status"] == "unsupported" for g in tf32 for c in g["cells"].values())


def test_each_workload_is_read_in_its_users_units(data: dict[str, Any]) -> None:
    units = {w["name"]: [(m["key"], m["unit"]) for m in w["measures"]] for w in data["workloads"]}
    assert units["generate"] == [("tg_tokens_per_s", "tokens/s"), ("pp_tokens_per_s", "tokens/s"), ("ttft_s", "ms"),
                                 ("decode_tokens_per_s", "tokens/s")]
    assert units["train_step"] == [("tokens_per_s", "tokens/s"), ("samples_per_s", "samples/s")]
    assert units["qmatmul"] == [("weight_gbps", "GB/s")]
    assert units["stream"][0][0] == "gbps"  # memory-bound: GB/s first
    assert units["matmul"][0][0] == "tflops"
    names = {w["name"]: [m["name"] for m in w["measures"]] for w in data["workloads"]}
    assert names["generate"][:2] == ["generation (tg128)", "prompt processing (pp512)"]
    # ratios come from the timed call (the decode step); the cells print what LLM users quote: tg and pp
    generate = next(w for w in data["workloads"] if w["name"] == "generate")
    assert generate["measures"][generate["ranked"]]["key"] == "decode_tokens_per_s"
    assert [generate["measures"][j]["key"] for j in generate["headline"]] == ["tg_tokens_per_s", "pp_tokens_per_s"]
    matmul = next(w for w in data["workloads"] if w["name"] == "matmul")
    assert matmul["headline"] == [matmul["ranked"]]


def test_measure_values_follow_the_median_and_its_interval(data: dict[str, Any]) -> None:
    qm = next(w for w in data["workloads"] if w["name"] == "qmatmul")
    for r in data["records"]:
        if r["workload"] == "qmatmul" and r["status"] == "ok":
            value, low, high = r["measures"][qm["ranked"]]
            assert low <= value <= high
            assert value == pytest.approx(r["bytes"] / r["med"] / 1e9, rel=2e-3)


@pytest.mark.parametrize("params, label", [
    ({"layers": 24, "d_model": 896, "heads": 14, "kv_heads": 2, "ffn": 4864, "vocab": 151_936, "tied": True,
      "prompt": 512, "new_tokens": 128, "batch": 1, "bits": 4, "group": 64}, "Qwen2.5-0.5B shape · int4 g64 · batch 1"),
    ({"m": 16, "n": 4096, "k": 4096}, "16×4096·4096²"),
    ({"m": 1024, "n": 1024, "k": 1024}, "1024³"),
    ({"m": 1, "n": 4096, "k": 4096, "bits": 8, "group": 4096, "scheme": "symmetric"}, "1×4096·4096² · int8 g4096 symmetric"),
    ({"batch": 4, "heads": 32, "seq": 4096, "head_dim": 128, "causal": True}, "B4 H32 S4096 D128 causal"),
    ({"layers": 4, "d_model": 256, "seq": 128, "batch": 16, "lora_rank": 8}, "L4 d256 · 16×128 tokens · LoRA r8"),
    ({"batch": 1, "heads": 14, "kv_heads": 2, "q_len": 1, "kv_len": 32768, "head_dim": 64}, "q1 · H14/2 · KV 32768 · D64 · batch 1"),
    ({"n": 268435456}, "268M elements"),
    ({"alpha": 1}, "alpha=1"),
])
def test_case_labels_are_compact_and_named_by_the_workload(params: dict[str, Any], label: str) -> None:
    assert case_label(json.dumps(params)) == label


def test_hover_has_the_full_parameters(data: dict[str, Any]) -> None:
    r = next(r for r in data["records"] if r["workload"] == "generate")
    assert r["case"].startswith("Qwen2.5-0.5B shape") and "vocab=151936" in r["params"]


def test_file_supplied_text_cannot_break_out_of_the_page(html: str, data: dict[str, Any]) -> None:
    assert "<script>alert" not in html and "<img src=x" not in html
    assert html.count("<script") == 3  # data, plotly.js, the report's script: nothing injected
    assert any(HOSTILE in r["reason"] for r in data["records"])  # the text itself survives, as text
    assert "&lt;/script&gt;" in html  # escaped where the template shows it (support-matrix hover)
    assert "<" not in embed({"reason": HOSTILE}) and ">" not in embed({"reason": HOSTILE})


def test_plotly_is_embedded_once_and_nothing_is_fetched(html: str) -> None:
    assert html.count("plotly.js (cartesian - minified) v4.1.1") == 1
    outside_scripts = re.sub(r"<script\b.*?</script>", "", html, flags=re.S)
    assert not re.search(r'(src|href)="(https?:)?//', outside_scripts)
    assert "<link" not in outside_scripts and not re.search(r"<script[^>]+src=", html)


def test_newer_columns_are_read_when_present(data: dict[str, Any]) -> None:
    records = data["records"]
    assert {r["mode"] for r in records} == {"eager", "compiled"}
    assert any(r["dev"] for r in records if r["framework"] == "torch" and r["backend"] == "metal")
    assert any(len(r["curve"]) == 7 for r in records if r["workload"] == "matmul")
    assert {r["barrier_check"] for r in records if r["status"] == "ok"} == {"ok"}


def test_files_without_the_newer_columns_read_as_eager_with_no_device_time(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "old", newer_columns=False)
    records = page_data(build_report([tmp_path / "old"], tmp_path / "out").read_text())["records"]
    assert {r["mode"] for r in records} == {"eager"}
    assert all(r["dev"] is None and r["curve"] == [] and r["barrier_check"] == "" for r in records)


@pytest.mark.parametrize("stored", [
    [[1, 2e-3], [4, 1e-3]],
    '[[1, 0.002], [4, 0.001]]',
    [{"k": 1, "per_call_s": 2e-3}, {"k": 4, "per_call_s": 1e-3}],
    {"k": [1, 4], "per_call_s": [2e-3, 1e-3]},
    {"4": 1e-3, "1": 2e-3},
])
def test_a_queue_curve_is_read_from_any_shape_it_may_arrive_in(stored: Any) -> None:
    assert queue_curve(stored) == [(1.0, 2e-3), (4.0, 1e-3)]


@pytest.mark.parametrize("stored", [None, "not json", [1, 2, 3], [[0, 1.0], [-1, 2.0]], {"k": "x"}])
def test_a_malformed_queue_curve_is_no_curve(stored: Any) -> None:
    assert queue_curve(stored) == []


def test_packed_samples_keep_a_thousandth_of_the_median() -> None:
    raw = [1.23e-5, 1.25e-5, 1.31e-5, 9.9e-6]
    packed = _samples(raw)
    ref, rest = packed[0], packed[1:]
    assert [v * ref / 1000 for v in rest] == pytest.approx(raw, rel=1e-3)
    assert _samples(None) == [] and _samples([]) == []


def test_data_is_offered_for_download(report: Path, rows: pd.DataFrame) -> None:
    data_dir = report.parent / "data"
    assert len(pd.read_csv(data_dir / "results.csv")) == len(rows)
    assert len(list(data_dir.glob("*.parquet"))) == rows["run_id"].nunique()
    assert 'href="data/results.csv"' in report.read_text()


def test_a_folder_and_its_subfolder_named_together_read_each_file_once(tmp_path: Path, results_dir: Path,
                                                                        rows: pd.DataFrame) -> None:
    shutil.copytree(results_dir, tmp_path / "results" / "baselines")
    records = page_data(build_report([tmp_path / "results", tmp_path / "results" / "baselines"],
                                     tmp_path / "out").read_text())["records"]
    assert len(records) == len(rows)


def test_without_loss_curves_no_row_carries_one(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "results", loss_curves=False)
    records = page_data(build_report([tmp_path / "results"], tmp_path / "out").read_text())["records"]
    assert not any(r["loss"] for r in records)


def test_a_single_run_with_one_framework_renders(tmp_path: Path, results_dir: Path) -> None:
    table = pq.read_table(next(results_dir.glob("*cpu.parquet")))
    one = table.filter(pc.and_(pc.equal(table["framework"], "mlx"), pc.equal(table["workload"], "matmul")))
    (tmp_path / "r").mkdir()
    pq.write_table(one, tmp_path / "r" / "one.parquet")
    data = page_data(build_report([tmp_path / "r"], tmp_path / "out").read_text())
    assert [w["name"] for w in data["workloads"]] == ["matmul"]
    assert all(list(g["cells"]) == ["mlx"] for g in data["groups"])


def test_cli_report_writes_index(results_dir: Path, tmp_path: Path) -> None:
    assert main(["report", str(results_dir), "-o", str(tmp_path / "out")]) == 0
    assert page_data((tmp_path / "out" / "index.html").read_text())["records"]


def test_report_has_no_baseline_option(results_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`--baseline` changed nothing on the page (ratios are to each case's fastest): it is gone."""
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(results_dir), "-o", str(tmp_path / "out"), "--baseline", "mlx"])
    assert exit_.value.code == 2 and "--baseline" in capsys.readouterr().err


@pytest.mark.parametrize("make_input", ["missing", "empty_dir", "corrupt"])
def test_cli_bad_input_is_one_line_and_exit_2(make_input: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "input.parquet"
    if make_input == "empty_dir":
        target = tmp_path / "empty"
        target.mkdir()
    elif make_input == "corrupt":
        target.write_bytes(b"not parquet")
    assert main(["report", str(target), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench report: error:") and "\n" not in err


def test_corrupt_file_inside_a_folder_is_skipped_with_a_warning(results_dir: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "results"
    shutil.copytree(results_dir, folder)
    (folder / "broken.parquet").write_bytes(b"crashed mid-write")
    assert main(["report", str(folder), "-o", str(tmp_path / "out")]) == 0
    assert "warning: skipped" in capsys.readouterr().err


def test_server_serves_the_report_and_stops(report: Path) -> None:
    server = start_server(report.parent, port=0)
    try:
        host, port = server.server_address[:2]
        body = urllib.request.urlopen(f"http://{host}:{port}/index.html", timeout=10).read().decode()
        assert 'id="answer"' in body
    finally:
        server.shutdown()
        server.server_close()


def test_cli_serve_prints_its_address_and_stops_on_its_own(results_dir: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "bench", "report", str(results_dir), "-o", str(tmp_path / "out"),
           "--serve", "--port", "0", "--serve-seconds", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in proc.stdout:  # type: ignore[union-attr]
            if (m := re.search(r"http://127\.0\.0\.1:\d+/", line)):
                url = m.group(0)
                break
        assert url, proc.stderr.read()  # type: ignore[union-attr]
        assert b"metalbench report" in urllib.request.urlopen(url, timeout=10).read()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_rebuild_hashes_each_file_of_the_old_data_folder_once(results_dir: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """data/ is checked before the build and again before it is replaced (bench.safe_write):
    an unchanged file is hashed for the first check only (thousands of copies were hashed twice)."""
    from bench import safe_write

    out = tmp_path / "out"
    build_report([results_dir], out)
    getattr(safe_write, "_DIGESTS", {}).clear()
    hashed: list[Path] = []
    real = safe_write.sha256_file
    monkeypatch.setattr(safe_write, "sha256_file", lambda path: (hashed.append(Path(path)), real(path))[1])
    build_report([results_dir], out)
    old = [p for p in hashed if p.parent == out / "data"]
    assert old and len(old) == len(set(old))
