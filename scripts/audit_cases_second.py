"""The 63 new cases of the reliability audit of 2026-12-03
(../shared/research/reliability-audit-2026-12-03.md, N1–N63): the surfaces added after the
first audit (`--cpus`, `--mode`, `--python`, `--model`, `-p data=`, doctor, ab, confirm,
make baseline/gate, baseline folders, the report server, symlinks, hostile metadata,
terminal text, concurrency, signals, a full disk).

`CASES` is the audit's table: what was done, and the good outcome (for a case that was a
defect, the behaviour its fix promises; the defect number says which). The four section
functions run the cases; each records one verdict per case.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from audit_kit import FAST, REPO, Audit, Case, Outcome, digest, edit, kill_group, rows_in, wait_for, workers_of
from bench.results import read_results
from tests.helpers import write_safetensors

CASES = [
    Case("N1", "huge CPU range: `bench run -f torch -w matmul -d fp32 --cpus 0-100000000`",
         "exit 2 with one line naming the CPUs to choose from, at once, without building the range", ("D26",)),
    Case("N2", "bad CPU lists: `--cpus <one past the last CPU>`, `1-0`, `\"\"`, `0,,1`, `-1`, `a`",
         "exit 2, one line each, naming the CPUs to choose from"),
    Case("N3", "bind to one CPU: `bench run -f torch -w stream -d fp32 --cpus 0 --timing latency`",
         "ok row; `cpus` column `'0'`"),
    Case("N4", "empty mode / framework list: `bench run --mode ''`, `--mode ,`, `bench doctor -f ,`",
         "exit 2, one line that names the valid choices", ("D40",)),
    Case("N5", "odd mode spellings: `--mode ' eager'`, `eager,eager`, `EAGER`, `jit`",
         "the first two run (eager), the last two get exit 2 with one line"),
    Case("N6", "malformed `--python`: `torch=`, `torch=<a folder>`, `torch`, `caffe=/bin/true`",
         "exit 2, one line each"),
    Case("N7", "a Python without the framework: `bench run -f torch -w stream --python torch=<python that cannot import torch>`",
         "`skipped` row naming the install command `pip install 'metalbench[torch]'`"),
    Case("N8", "worker hangs while importing: `bench run -f torch -w matmul,stream -d fp32 --case-timeout 5 "
               "--python torch=<python whose torch import sleeps>`",
         "the start time-out (30 s) is paid once, then the framework is marked unavailable: about 30 s, not 92", ("D29",)),
    Case("N9", "bad `data=` files: train_step `-p …,data=X` with X = missing, `/dev/zero`, a FIFO, a folder",
         "exit 2 `bad value for train_step data: …` one line each"),
    Case("N10", "`data=` path with a comma: `-p …,data=data/a,b.txt`", "exit 2, one line (such a path cannot be given: note)"),
    Case("N11", "binary `data=`: `-p …,data=data/binary.bin` (a copy of `/bin/ls`)", "ok row (bytes decoded with replacement)"),
    Case("N12", "empty `data=`: `-p …,data=data/empty.txt`", "`error` row `corpus of 0 tokens is shorter than one window`"),
    Case("N13", "a sparse `data=` file larger than memory allows (the audit: 2 GB in a 3 GiB cgroup; here sized to "
                "a fifth of the available memory, so ten bytes per byte cannot fit)",
         "exit 2 before any work: the memory pre-flight counts the file (`--force-memory`)", ("D27",)),
    Case("N14", "config with wrong types the check skipped: `\"rope_theta\": null`, `\"rms_norm_eps\": [1e-6]`",
         "exit 2, one line naming the key", ("D30",)),
    Case("N15", "huge model dims: hidden 65536 × 200 layers × vocab 10⁶, or vocab 2·10⁹",
         "exit 2 `needs about … of host memory … --force-memory`"),
    Case("N16", "heads that do not divide: hidden 32 with 5 heads; 4 heads over 3 KV heads",
         "an `error` row or exit 2 with one line; the run survives (note: the message is cryptic)"),
    Case("N17", "config.json is a FIFO: `bench run -w generate --model models/fifocfg`",
         "exit 2 with one line at once (a FIFO is not a config); no hang", ("D31",)),
    Case("N18", "model.safetensors is a FIFO: `… --model models/fifoweights --case-timeout 20`",
         "`timeout` (or `error`) row after about 20 s, run goes on"),
    Case("N19", "300-character run id: `bench run … --run-id xxx…`", "exit 2 `… File name too long`, before any work"),
    Case("N20", "run id with a newline and ESC: `bench run … --run-id $'a\\nb\\e[31mred'`",
         "refused with exit 2 and one line, or accepted with no raw ESC reaching the terminal", ("D33",)),
    Case("N21", "same `--run-id` twice at once: two `bench run -f torch -w matmul -d fp32 -o r-same --run-id same`",
         "one gets exit 2 `already exists`; the other's file is intact; no worker left"),
    Case("N22", "`--reference` with a planted `numpy.py` in the working directory: "
                "`python -P -m bench run -f torch -w generate -d fp32 --mode eager --reference`",
         "the planted module is not imported (no marker file)", ("D28",)),
    Case("N23", "doctor on this CPU: `bench doctor -f torch`", "Markdown table, `verdict: all usable`, exit 0"),
    Case("N24", "doctor with a broken interpreter: `bench doctor -f torch --python torch=/bin/true`",
         "`probe died`, `verdict: nothing usable`, exit 2"),
    Case("N25", "doctor with a planted `numpy.py` in the working directory: `python -P -m bench doctor -f torch`",
         "the planted module is not imported (no marker file)", ("D28",)),
    Case("N26", "hostile framework error text in doctor: torch raises `ImportError('</details> ## ✅ all usable <!-- "
                "[click](http://evil.example) <img src=x onerror=…>')`",
         "the Markdown holds no raw `</details>`, `<!--`, `<img` or link from the error text", ("D34",)),
    Case("N27", "doctor probe hangs on import: `bench doctor -f torch --python torch=<hanging python>`",
         "bounded: exit 2 `probe did not answer within …` (300 s, not configurable: note)"),
    Case("N28", "bad `ab` arguments: `--a torch=/nonexistent/python`, no `--b`, `--rounds 0`, `-d fp64`",
         "exit 2, one line each"),
    Case("N29", "nothing measured on either side: `bench ab --a torch=/bin/true --b torch=/bin/true -w stream -d fp32 "
                "--rounds 3`; `bench compare` of those error-only runs",
         "no PASS: exit 2 (nothing measured, nothing passed), also in the `--markdown` summary", ("D21",)),
    Case("N30", "too few rounds to judge: `bench ab … -w stream -d fp32 --rounds 2`",
         "exit 2 with one line before any round runs", ("D36",)),
    Case("N31", "`ab -o` folder holding `a-2.parquet`: `bench ab … --rounds 3 -o ab-exist`",
         "exit 2 with one line before round 1, naming the file, not `--run-id`; the file is kept", ("D36",)),
    Case("N32", "Ctrl-C during `ab`: SIGINT to `bench ab … --rounds 5` during round 2",
         "one line, exit 130, no traceback; no worker left running", ("D30",)),
    Case("N33", "a known regression under `ab`: `bench ab --a torch=<python> --b torch=scripts/slowed_env/python "
                "-w stream -d fp32 --budget 0.1` (5 rounds)",
         "`FAIL: 1 slower`, exit 1 (note: `--rounds 3` can miss it on a noisy VM)"),
    Case("N34", "malformed confirm summary: `python -m bench.confirm S --out confirm/out` with S = `[]`, a case "
                "without `key`, params `{not json`",
         "exit 2, one line each", ("D30",)),
    Case("N35", "confirm basics: missing summary file; `--runs 0`",
         "exit 2 `confirm: cannot read …`; `--runs 0` exit 2 (argparse's usage line plus the error)"),
    Case("N36", "confirm with real and hostile summaries: a valid summary `--runs 1 -- --budget 0.1`; the same "
                "`--out` again; `n=10¹²`",
         "runs `confirm-1-1`; then exit 2 `already exists`; exit 2 memory estimate"),
    Case("N37", "foreign run in the baseline folder: `cp c1.parquet mk-bl/old-experiment.parquet; make baseline "
                "BASELINE_RUNS_DIR=mk-bl ARGS=\"-f torch -w stream -d fp32 --budget 0.1\"`",
         "refused with one line (the folder holds runs make did not write), or the foreign run left out", ("D20",)),
    Case("N38", "stale run in the gate folder: `cp c2.parquet mk-gate/confirm-1-1.parquet; make gate "
                "GATE_DIR=mk-gate GATE_CONFIRM=0 ARGS=…`",
         "refused with one line, or the stale run left out of the comparison", ("D20",)),
    Case("N39", "`make baseline`/`make gate` into a folder with their own runs: the same commands again",
         "refused: `already holds baseline runs` / `gate runs`"),
    Case("N40", "the same run given several times: `bench baseline real.parquet ×3 --dir dupbl`, then "
                "`bench compare dupbl c1.parquet c1.parquet`",
         "one run is one process: CANNOT JUDGE (exit 2), never a confident FAIL or PASS", ("D19",)),
    Case("N41", "report written into the results folder: `bench report selfrep -o selfrep`, then `bench show selfrep`",
         "`bench show` counts the same rows before and after (the data/ copies are not new processes)", ("D19",)),
    Case("N42", "re-baselining a folder that holds its baselines: `bench baseline blgrow --dir blgrow/baselines`, "
                "3 times",
         "processes per case stay 3 (rows do not grow)", ("D19",)),
    Case("N43", "two machines with one slug: `Mac Studio / Darwin arm64` and `mac-studio-darwin-arm64`, "
                "baselined together and one at a time",
         "two baseline files (or a refusal); no machine's baseline replaced by the other's", ("D22",)),
    Case("N44", "same-named inputs: `bench report coll/{a,b,c}/run/x.parquet -o rep-coll`",
         "`data/` holds all three runs", ("D23",)),
    Case("N45", "`-o` folder already has a `data/` with user files: `bench report real -o proj`",
         "the user's files are kept (or the command refuses with one line)", ("D17",)),
    Case("N46", "good run + looping symlinks in a folder: report / show / baseline / compare",
         "no traceback: report exit 0 with warnings; the others exit 0 or 2 with one line", ("D24",)),
    Case("N47", "serve on every interface: `bench report … --serve --host 0.0.0.0 --port 0`",
         "a warning that the report is exposed, or a foreign Host header refused (403)", ("D32",)),
    Case("N48", "unresolvable `--host`: `… --serve --host no-such-host.invalid`",
         "exit 2 `cannot serve on …` (note: after the report was rendered)"),
    Case("N49", "Ctrl-C during the report: SIGINT during `bench report many -o rep-int`",
         "one line, exit 130, no traceback; the old `index.html` and `data/` intact, no leftovers", ("D30",)),
    Case("N50", "disk full while writing the report: a second `bench report` into a 3 MiB tmpfs with little free",
         "exit 2 with one line; the old page and its `data/` stay consistent; no `.tmp` left", ("D37",)),
    Case("N51", "extra column (`my_extra`): show, report", "exit 0"),
    Case("N52", "renamed columns: `median_s`→`median`; `cpus`→`cpu_set`",
         "exit 2 `missing columns median_s`; the optional rename reads as null (exit 0)"),
    Case("N53", "duplicated column name (a second `framework`): show / report / baseline / export / compare",
         "exit 2, one line each"),
    Case("N54", "hostile `pandas` metadata (`{not json`; an index column that does not exist): show, compare, "
                "report of a folder holding a good run and this file",
         "no traceback: the metadata is ignored (exit 0)", ("D25",)),
    Case("N55", "odd schema-version text: `\" 1\\n\"`, `\"+1\"`, fullwidth `\"１\"`",
         "read as version 1, or exit 2 with one line; no traceback"),
    Case("N56", "inf/NaN/negative samples: export",
         "the export is strict JSON (no `NaN`/`Infinity` tokens)", ("D35",)),
    Case("N57", "terminal escape sequences (clear screen, title, OSC-8) in `framework`, `machine`, `reason`: "
                "`bench show`, `show --all`, `compare`",
         "no raw ESC byte reaches the terminal", ("D33",)),
    Case("N58", "bidi override, NUL, backspace in `reason`, `device_name`, `params`: `compare --markdown`, the "
                "report's `results.csv`",
         "the Markdown holds no U+202E, NUL or backspace; `results.csv` no NUL", ("D34",)),
    Case("N59", "symlinks pointing outside: `symres/` = a local run + `linkdir → <folder elsewhere>` + "
                "`linkfile.parquet → <file elsewhere>`: show, report",
         "the linked folder's run is read too (3 runs)", ("D38",)),
    Case("N60", "FIFO and 2 GB sparse `*.parquet` in a folder: show, report",
         "skipped with a warning, no hang, no blow-up"),
    Case("N61", "output path names an input: `export --pytest-benchmark c1.parquet c1.parquet`; "
                "`compare … c2.parquet --json c2.parquet`; `… --markdown real.parquet`",
         "refused with one line; every results file unchanged", ("D18",)),
    Case("N62", "runs with different `--threads`: `bench compare thr/base thr/cand` (baseline 1 thread, "
                "candidate 2)",
         "the comparison says the sides ran with different threads", ("D39",)),
    Case("N63", "the project's own re-audit script: `python scripts/reliability_audit.py --help`", "exit 0, usage", ("D41",)),
]


def _one_line(o: Outcome) -> bool:
    return o.contract() is None and o.rc == 2


def _all(a: Audit, case: str, outs: list[Outcome], good: bool, note: str = "") -> None:
    broken = [b for b in (o.contract() for o in outs) if b]
    first_err = next((" ".join(o.err.split())[:100] for o in outs if o.err.strip()), "")
    a.record(case, f"{note + '; ' if note else ''}exits {[o.rc for o in outs]}"
                   f"{'; ' + ', '.join(broken) if broken else ''}; {first_err}", good and not broken)


def _wrapper(a: Audit, name: str, body: str) -> Path:
    path = a.s / name
    path.write_text(body)
    path.chmod(0o755)
    return path


def _site_python(a: Audit, name: str, sitecustomize: str) -> Path:
    """An interpreter (this one) with a sitecustomize.py of its own first on its path."""
    folder = a.s / f"{name}-site"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(sitecustomize)
    return _wrapper(a, name, f'#!/bin/sh\nPYTHONPATH="{folder}:$PYTHONPATH" exec {sys.executable} "$@"\n')


HANG_TORCH = ("import builtins, time\n_imp = builtins.__import__\n"
              "def hook(name, *a, **k):\n    if name == 'torch':\n        time.sleep(100000)\n    return _imp(name, *a, **k)\n"
              "builtins.__import__ = hook\n")
NO_TORCH = ("import builtins\n_imp = builtins.__import__\n"
            "def hook(name, *a, **k):\n    if name.split('.')[0] == 'torch':\n"
            "        raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n    return _imp(name, *a, **k)\n"
            "builtins.__import__ = hook\n")


def _runs(a: Audit) -> dict[str, Path]:
    """The audit's scratch/real/{real,b2,b3,c1,c2}.parquet: five real small torch runs."""
    real = a.s / "real"
    real.mkdir(exist_ok=True)
    out = {}
    for name in ("real", "b2", "b3", "c1", "c2"):
        path = real / f"{name}.parquet"
        if not path.exists():
            if name == "real" and (a.s / "results" / "real.parquet").exists():
                shutil.copy(a.s / "results" / "real.parquet", path)
            else:
                a.bench("run", *FAST, "-w", "matmul,stream", "-d", "fp32,bf16", "-o", str(real), "--run-id", name)
        out[name] = path
    return out


def _tiny_model(folder: Path, **over: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32, "num_attention_heads": 4,
           "num_key_value_heads": 2, "num_hidden_layers": 1, "intermediate_size": 64, "vocab_size": 64,
           "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": True, **over}
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


TRAIN = "layers=2,d_model=64,heads=4,seq=32,batch=8,steps=8,lr=0.001"


# -- run inputs: N1–N21 ------------------------------------------------------------------------
def run_inputs(a: Audit) -> None:
    run = ("run", "-f", "torch", "-w", "matmul", "-d", "fp32", "-o", "r-bad")
    o = a.bench(*run, "--cpus", "0-100000000", timeout=120)
    a.expect("N1", o, 2, "choose from", extra=o.seconds < a.startup_s() + 15, note=f"{o.seconds:.0f} s;")
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    outs = [a.bench(*run, "--cpus", v) for v in (str(allowed[-1] + 1), "1-0", "", "0,,1", "-1", "a")]
    _all(a, "N2", outs, all(_one_line(o) for o in outs))
    o = a.bench("run", *FAST, "-w", "stream", "-d", "fp32", "--cpus", str(allowed[0]), "--timing", "latency",
                "-o", "r-cpu", "--run-id", "c")
    cpus = set(read_results(a.s / "r-cpu" / "c.parquet")["cpus"]) if o.rc == 0 else set()
    a.expect("N3", o, 0, extra=cpus == {str(allowed[0])}, note=f"cpus {cpus};")
    outs = [a.bench("run", "--mode", ""), a.bench("run", "--mode", ","), a.bench("doctor", "-f", ",")]
    _all(a, "N4", outs, all(_one_line(o) and "choose from: ;" not in o.err for o in outs))
    ok = [a.bench("run", *FAST, "-w", "stream", "-d", "fp32", "--timing", "latency", "--budget", "0.1", "--mode", m,
                  "-o", "r-mode") for m in (" eager", "eager,eager")]
    bad = [a.bench("run", "-w", "stream", "--mode", m) for m in ("EAGER", "jit")]
    _all(a, "N5", ok + bad, all(o.rc == 0 for o in ok) and all(_one_line(o) for o in bad))
    outs = [a.bench(*run, "--python", v) for v in ("torch=", f"torch={a.s}", "torch", "caffe=/bin/true")]
    _all(a, "N6", outs, all(_one_line(o) for o in outs))
    nothere = _site_python(a, "python-notorch", NO_TORCH)
    o = a.bench("run", *FAST, "-w", "stream", "-d", "fp32", "--python", f"torch={nothere}", "-o", "r-nt", "--run-id", "n")
    df = read_results(a.s / "r-nt" / "n.parquet") if o.rc == 0 else None
    a.expect("N7", o, 0, extra=df is not None and set(df["status"]) == {"skipped"}
             and df["reason"].str.contains("metalbench[torch]", regex=False).all())
    hang = _site_python(a, "python-hang", HANG_TORCH)
    o = a.bench("run", "-f", "torch", "-w", "matmul,stream", "-d", "fp32", "--case-timeout", "5", "--python",
                f"torch={hang}", "-o", "r-hang", timeout=400)
    # one 30-s start time-out, then the framework is marked unavailable (was 30 s per case: 92 s)
    a.expect("N8", o, 0, extra=o.seconds < 60 + 2 * a.startup_s(), note=f"{o.seconds:.0f} s (was 92);")
    data = a.s / "data"
    data.mkdir(exist_ok=True)
    if not (data / "fifo").exists():
        os.mkfifo(data / "fifo")
    train = ("run", *FAST, "-w", "train_step", "-d", "bf16", "--mode", "eager", "-o", "r-data")
    outs = [a.bench(*train, "-p", f"{TRAIN},data={x}", timeout=60) for x in (data / "missing.txt", "/dev/zero",
                                                                               data / "fifo", data)]
    _all(a, "N9", outs, all(_one_line(o) and "data" in o.err for o in outs))
    (data / "a,b.txt").write_text("hello " * 100)
    o = a.bench(*train, "-p", f"{TRAIN},data={data / 'a,b.txt'}")
    a.expect("N10", o, 2, note="(note: a path with a comma cannot be given)")
    shutil.copy("/bin/ls", data / "binary.bin")
    o = a.bench(*train, "-p", f"{TRAIN},data={data / 'binary.bin'}", "--run-id", "bin")
    a.expect("N11", o, 0, extra=o.rc == 0 and set(read_results(a.s / "r-data" / "bin.parquet")["status"]) == {"ok"})
    (data / "empty.txt").write_text("")
    o = a.bench(*train, "-p", f"{TRAIN},data={data / 'empty.txt'}", "--run-id", "empty")
    a.expect("N12", o, 0, extra=o.rc == 0 and read_results(a.s / "r-data" / "empty.parquet")["reason"]
             .str.contains("shorter than one window").all())
    import psutil

    sparse = data / "sparse.txt"
    with open(sparse, "wb") as fh:
        fh.truncate(max(2 * 2**30, psutil.virtual_memory().available // 5))
    o = a.bench(*train, "-p", f"{TRAIN},data={sparse}", "--run-id", "sparse", timeout=300)
    a.expect("N13", o, 2, "--force-memory", note=f"file {sparse.stat().st_size / 2**30:.1f} GiB;")
    sparse.unlink()
    models = a.s / "models2"
    gen = ("run", *FAST, "-w", "generate", "-d", "fp32", "--timing", "latency", "-o", "r-model2")
    outs = [a.bench(*gen, "--model", str(_tiny_model(models / name, **over)))
            for name, over in (("ropenull", {"rope_theta": None}), ("epslist", {"rms_norm_eps": [1e-6]}))]
    _all(a, "N14", outs, all(_one_line(o) for o in outs))
    outs = [a.bench(*gen, "--model", str(_tiny_model(models / name, **over))) for name, over in (
        ("hugedims", {"hidden_size": 65536, "num_hidden_layers": 200, "vocab_size": 10**6, "intermediate_size": 65536,
                      "num_attention_heads": 64, "num_key_value_heads": 64}),
        ("hugevocab", {"vocab_size": 2 * 10**9}))]
    _all(a, "N15", outs, all(_one_line(o) and "--force-memory" in o.err for o in outs))
    outs = [a.bench(*gen, "--model", str(_tiny_model(models / name, **over)), timeout=300) for name, over in (
        ("heads5", {"num_attention_heads": 5, "num_key_value_heads": 5}), ("kv3", {"num_key_value_heads": 3}))]
    _all(a, "N16", outs, all(o.rc in (0, 2) for o in outs), note="(note: cryptic reason)")
    fifocfg = models / "fifocfg"
    fifocfg.mkdir(parents=True, exist_ok=True)
    if not (fifocfg / "config.json").exists():
        os.mkfifo(fifocfg / "config.json")
    o = a.bench(*gen, "--model", str(fifocfg), timeout=30)
    a.expect("N17", o, 2, note=f"{o.seconds:.0f} s;")
    fifow = _tiny_model(models / "fifoweights")
    if not (fifow / "model.safetensors").exists():
        os.mkfifo(fifow / "model.safetensors")
    o = a.bench(*gen, "--model", str(fifow), "--case-timeout", "20", "--run-id", "fifow", timeout=300)
    df = read_results(a.s / "r-model2" / "fifow.parquet") if o.rc == 0 else None
    a.expect("N18", o, 0, extra=df is not None and bool(set(df["status"]) & {"timeout", "error"})
             and set(df["status"]) <= {"timeout", "error", "skipped", "unsupported"}, note=f"{o.seconds:.0f} s;")
    o = a.bench(*run, "--run-id", "x" * 300)
    a.expect("N19", o, 2)
    o = a.bench("run", *FAST, "-w", "stream", "-d", "fp32", "--timing", "latency", "-o", "r-esc",
                "--run-id", "a\nb\x1b[31mred")
    a.record("N20", f"exit {o.rc}; raw ESC in output: {chr(27) in o.text}",
             o.contract() is None and chr(27) not in o.text)
    procs = [a.spawn("run", *FAST, "-w", "matmul", "-d", "fp32", "-o", "r-same", "--run-id", "same") for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    n = rows_in(a.s / "r-same" / "same.parquet")
    a.record("N21", f"exits {codes}; file rows {n}", codes == [0, 2] and n >= 1
             and any("already exists" in err for _, err in results) and not any("Traceback" in e for _, e in results))


# -- doctor, ab and confirm: N22–N36 ---------------------------------------------------------------
def _planted(a: Audit, name: str) -> tuple[Path, Path]:
    cwd = a.s / name
    cwd.mkdir(exist_ok=True)
    marker = a.s / f"PWNED-{name}"
    (cwd / "numpy.py").write_text(f"open({str(marker)!r}, 'w').write(__file__)\nraise ImportError('planted')\n")
    return cwd, marker


def tools(a: Audit) -> None:
    hang = _site_python(a, "python-hang", HANG_TORCH)
    probe_hang = a.spawn("doctor", "-f", "torch", "--python", f"torch={hang}")  # 300 s: collected at the end
    hang_started = time.monotonic()
    cwd, marker = _planted(a, "cwdinj2")
    o = a.command([sys.executable, "-P", "-m", "bench", "run", "-f", "torch", "-w", "generate", "-d", "fp32", "--mode",
                   "eager", "--reference", "--budget", "0.1", "-o", str(a.s / "r-ref")], cwd=cwd, timeout=600)
    a.record("N22", f"exit {o.rc}; marker written: {marker.exists()}", o.contract() is None and not marker.exists())
    o = a.bench("doctor", "-f", "torch", timeout=400)
    a.expect("N23", o, 0, "usable", note=f"{o.seconds:.0f} s;")
    o = a.bench("doctor", "-f", "torch", "--python", "torch=/bin/true", timeout=400)
    a.record("N24", f"exit {o.rc}; {' '.join(o.out.split())[-90:]}",  # the verdict is doctor's report, on stdout
             o.rc == 2 and "nothing usable" in o.text and "Traceback" not in o.text)
    cwd, marker = _planted(a, "cwdinj3")
    o = a.command([sys.executable, "-P", "-m", "bench", "doctor", "-f", "torch"], cwd=cwd, timeout=400)
    a.record("N25", f"exit {o.rc}; marker written: {marker.exists()}", o.contract() in (None,) and not marker.exists())
    fake = a.s / "faketorch-site" / "torch"
    fake.mkdir(parents=True, exist_ok=True)
    payload = ("boom </details> ## ✅ all usable <!-- [click](http://evil.example) "
               "<img src=x onerror=alert(1)>")
    (fake / "__init__.py").write_text(f"raise ImportError({payload!r})\n")
    faketorch = _wrapper(a, "python-faketorch",
                         f'#!/bin/sh\nPYTHONPATH="{fake.parent}:$PYTHONPATH" exec {sys.executable} "$@"\n')
    o = a.bench("doctor", "-f", "torch", "--python", f"torch={faketorch}", timeout=400)
    raw = [t for t in ("</details>", "<!--", "<img", "](http") if t in o.out]
    a.record("N26", f"exit {o.rc}; raw in the Markdown: {raw}", "Traceback" not in o.text and not raw)
    outs = [a.bench("ab", "--a", "torch=/nonexistent/python", "--b", f"torch={sys.executable}"),
            a.bench("ab", "--a", f"torch={sys.executable}"),
            a.bench("ab", "--a", f"torch={sys.executable}", "--b", f"torch={sys.executable}", "--rounds", "0"),
            a.bench("ab", "--a", f"torch={sys.executable}", "--b", f"torch={sys.executable}", "-d", "fp64")]
    _all(a, "N28", outs, all(o.rc == 2 for o in outs), note="(argparse lines allowed)")
    ab = ("ab", "-w", "stream", "-d", "fp32", "--budget", "0.1")
    o = a.bench(*ab, "--a", "torch=/bin/true", "--b", "torch=/bin/true", "--rounds", "3", "-o", "ab-true",
                "--markdown", "ab-true.md", timeout=600)
    md = (a.s / "ab-true.md").read_text() if (a.s / "ab-true.md").exists() else ""
    for side in "ab":
        (a.s / "ab-true" / side.upper()).mkdir(parents=True, exist_ok=True)
        for f in (a.s / "ab-true").glob(f"{side}-*.parquet"):
            shutil.copy(f, a.s / "ab-true" / side.upper() / f.name)
    c = a.bench("compare", str(a.s / "ab-true" / "A"), str(a.s / "ab-true" / "B"))
    a.record("N29", f"ab exit {o.rc}; compare exit {c.rc}; PASS in Markdown: {'PASS' in md}; {o.out.strip()[-90:]}",
             o.rc != 0 and c.rc != 0 and "PASS" not in md and o.contract() is None and c.contract() is None)
    o = a.bench(*ab, "--a", f"torch={sys.executable}", "--b", f"torch={sys.executable}", "--rounds", "2",
                "-o", "ab-two", timeout=600)
    a.expect("N30", o, 2, extra=not list((a.s / "ab-two").glob("*.parquet")), note=f"{o.seconds:.0f} s;")
    exist = a.s / "ab-exist"
    exist.mkdir(exist_ok=True)
    (exist / "a-2.parquet").write_text("someone else's")
    o = a.bench(*ab, "--a", f"torch={sys.executable}", "--b", f"torch={sys.executable}", "--rounds", "3",
                "-o", str(exist), timeout=600)
    a.expect("N31", o, 2, "a-2.parquet", extra="--run-id" not in o.err and not (exist / "a-1.parquet").exists()
             and (exist / "a-2.parquet").read_text() == "someone else's")
    p = a.spawn(*ab, "--a", f"torch={sys.executable}", "--b", f"torch={sys.executable}", "--rounds", "5", "-o", "ab-int")
    wait_for(lambda: (a.s / "ab-int" / "b-1.parquet").exists() and bool(workers_of(p.pid)), 300)
    workers = workers_of(p.pid)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    def alive(pid: int) -> bool:
        try:
            return "zombie" not in Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False

    wait_for(lambda: not any(alive(w) for w in workers), 10)  # a worker may finish the case it is in
    left = [w for w in workers if alive(w)]
    a.record("N32", f"exit {p.returncode}; traceback {'Traceback' in err}; workers left {left}; {' '.join(err.split())[:80]}",
             p.returncode == 130 and "Traceback" not in err and not left)
    o = a.bench(*ab, "--a", f"torch={sys.executable}", "--b", f"torch={REPO / 'scripts' / 'slowed_env' / 'python'}",
                "-o", "ab-slow", env={"SLOWED_ENV_PYTHON": sys.executable}, timeout=900)
    a.expect("N33", o, 1, "slower", note=f"{o.seconds:.0f} s;")
    conf = a.s / "confirm"
    conf.mkdir(exist_ok=True)
    outs = []
    for i, text in enumerate(("[]", '{"cases": [{"verdict": "slower"}]}',
                              '{"cases": [{"verdict": "slower", "key": {"framework": "torch", "workload": "stream", '
                              '"dtype": "fp32", "params": "{not json"}}]}')):
        (conf / f"s{i}.json").write_text(text)
        outs.append(a.command([sys.executable, "-m", "bench.confirm", str(conf / f"s{i}.json"), "--out",
                               str(conf / "out")]))
    _all(a, "N34", outs, all(_one_line(o) for o in outs))
    outs = [a.command([sys.executable, "-m", "bench.confirm", str(conf / "missing.json"), "--out", str(conf / "out")]),
            a.command([sys.executable, "-m", "bench.confirm", str(conf / "s0.json"), "--out", str(conf / "out"),
                       "--runs", "0"])]
    _all(a, "N35", outs[:1], _one_line(outs[0]) and outs[1].rc == 2 and "Traceback" not in outs[1].text)
    params = json.loads(read_results(a.s / "results" / "real.parquet").query("workload == 'stream'")["params"].iloc[0])
    summary = {"cases": [{"verdict": "slower", "key": {"framework": "torch", "workload": "stream", "dtype": "fp32",
                                                       "mode": "eager", "params": json.dumps(params)}}]}
    (conf / "valid.json").write_text(json.dumps(summary))
    confirm = [sys.executable, "-m", "bench.confirm", str(conf / "valid.json"), "--out", str(conf / "ok"), "--runs", "1"]
    first = a.command([*confirm, "--", "--budget", "0.1"], timeout=300)
    again = a.command([*confirm, "--", "--budget", "0.1"], timeout=300)
    huge = {**params, "n": 10**12}
    summary["cases"][0]["key"]["params"] = json.dumps(huge)
    (conf / "huge.json").write_text(json.dumps(summary))
    big = a.command([sys.executable, "-m", "bench.confirm", str(conf / "huge.json"), "--out", str(conf / "big")],
                    timeout=300)
    written = sorted(f.name for f in (conf / "ok").glob("confirm-*.parquet"))
    a.record("N36", f"exits {first.rc}, {again.rc}, {big.rc}; written: {written}",
             first.rc == 0 and again.rc == 2 and big.rc == 2 and bool(written)
             and not any("Traceback" in o.text for o in (first, again, big)))
    out, err = probe_hang.communicate(timeout=max(1.0, 420 - (time.monotonic() - hang_started)))
    a.record("N27", f"exit {probe_hang.returncode} after {time.monotonic() - hang_started:.0f} s (note: fixed 300 s); "
                    f"{' '.join((out + err).split())[-80:]}",
             probe_hang.returncode == 2 and "Traceback" not in err)


# -- the gate's folders and the report: N37–N50 ------------------------------------------------------
def _make(a: Audit, target: str, **variables: str) -> Outcome:
    """`make -f <checkout>/Makefile TARGET` from the scratch folder, through a `.venv` shim there
    that runs this checkout's bench (as the audit did), so nothing is written into the checkout."""
    venv = a.s / ".venv" / "bin"
    if not venv.exists():
        venv.mkdir(parents=True)
        for name, module in (("bench", "-m bench"), ("python", "")):
            _wrapper(a, f".venv/bin/{name}", f'#!/bin/sh\nPYTHONPATH="{REPO}" exec {sys.executable} -P {module} "$@"\n')
    for rel in ("pyproject.toml", "constraints/linux-cpu.txt"):  # the install rule's inputs, as in a copy
        (a.s / rel).parent.mkdir(parents=True, exist_ok=True)
        if (REPO / rel).exists() and not (a.s / rel).exists():
            shutil.copy(REPO / rel, a.s / rel)
    (a.s / ".venv" / ".installed").touch()
    later = time.time() + 60
    os.utime(a.s / ".venv" / ".installed", (later, later))  # newer than its inputs: make installs nothing
    return a.command(["make", "-s", "-f", str(REPO / "Makefile"), target, *(f"{k}={v}" for k, v in variables.items())],
                     timeout=900)


def _refused(o: Outcome, folder: Path) -> bool:
    """make stopped with exit 2 and a line naming the folder (not a missing rule or a crash)."""
    return o.rc == 2 and folder.name in o.text and "No rule" not in o.text


def _processes(path: Path) -> int:
    """The most processes any case has in a baseline file (distinct run and process index)."""
    df = read_results(path)
    df["process"] = df["process"].fillna(0)
    return int(df.groupby(["workload", "dtype", "params", "timing"])[["run_id", "process"]]
               .apply(lambda g: len(g.drop_duplicates())).max())


def gate_and_report(a: Audit) -> None:
    runs = _runs(a)
    args = "-f torch -w stream -d fp32 --budget 0.1"
    mkbl, mkgate = a.s / "mk-bl", a.s / "mk-gate"
    mkbl.mkdir(exist_ok=True)
    shutil.copy(runs["c1"], mkbl / "old-experiment.parquet")
    o = _make(a, "baseline", BASELINE_RUNS_DIR=str(mkbl), ARGS=args)
    ids: set = set()
    for f in (a.s / "results" / "baselines").glob("*.parquet"):
        ids |= set(read_results(f)["run_id"])
    a.record("N37", f"exit {o.rc}; baseline run ids {sorted(ids)}; {' '.join(o.err.split())[:80]}",
             "Traceback" not in o.text and ((_refused(o, mkbl) and not ids) or (o.rc == 0 and bool(ids) and "c1" not in ids)))
    mkgate.mkdir(exist_ok=True)
    shutil.copy(runs["c2"], mkgate / "confirm-1-1.parquet")
    o = _make(a, "gate", GATE_DIR=str(mkgate), GATE_CONFIRM="0", ARGS=args)
    summary = mkgate / "summary.json"
    judged_stale = False
    if summary.exists():
        doc = json.loads(summary.read_text())
        judged_stale = any(c.get("key", {}).get("workload") == "matmul" and c.get("verdict") not in ("missing",)
                           for c in doc.get("cases", [])) or any(c.get("candidate_runs", 0) > 2 for c in doc["cases"])
    a.record("N38", f"exit {o.rc}; stale run judged: {judged_stale}; {' '.join(o.err.split())[:80]}",
             "Traceback" not in o.text and (_refused(o, mkgate) or (summary.exists() and not judged_stale)))
    again = [_make(a, "baseline", BASELINE_RUNS_DIR=str(mkbl), ARGS=args), _make(a, "gate", GATE_DIR=str(mkgate),
                                                                                   GATE_CONFIRM="0", ARGS=args)]
    a.record("N39", f"exits {[x.rc for x in again]}; {' '.join(again[0].out.split())[:80]}",
             all(x.rc == 2 and "already holds" in x.text for x in again))
    # Runs hold several processes now (--processes): the honest answer is what one copy of each
    # run gives; the same files given again must not add processes (or change the verdict).
    a.bench("baseline", str(runs["real"]), "--dir", "onebl")
    a.bench("baseline", *[str(runs["real"])] * 3, "--dir", "dupbl")
    once = a.bench("compare", str(a.s / "onebl"), str(runs["c1"]), "--json", "once.json")
    o = a.bench("compare", str(a.s / "dupbl"), str(runs["c1"]), str(runs["c1"]), "--json", "dup.json")

    def processes(name: str) -> list:
        try:
            return sorted((c["baseline_runs"], c["candidate_runs"]) for c in json.loads((a.s / name).read_text())["cases"])
        except (OSError, ValueError, KeyError):
            return []

    a.record("N40", f"exits {once.rc} (once) / {o.rc} (given 3× and 2×); processes once {processes('once.json')[:2]}… "
                    f"duplicated {processes('dup.json')[:2]}…",
             o.contract() is None and o.rc == once.rc and bool(processes("once.json"))
             and processes("dup.json") == processes("once.json"))
    selfrep = a.s / "selfrep"
    selfrep.mkdir(exist_ok=True)
    for name in ("real", "b2", "b3"):
        shutil.copy(runs[name], selfrep / f"{name}.parquet")
    before = a.bench("show", str(selfrep))
    a.bench("report", str(selfrep), "-o", str(selfrep))
    after = a.bench("show", str(selfrep))
    count = [re.findall(r"(\d+) rows", x.out)[-1:] for x in (before, after)]
    a.record("N41", f"show rows before/after: {count}", bool(count[0]) and count[0] == count[1])
    grow = a.s / "blgrow"
    grow.mkdir(exist_ok=True)
    for name in ("real", "b2", "b3"):
        shutil.copy(runs[name], grow / f"{name}.parquet")
    counts = []
    for _ in range(3):
        a.bench("baseline", str(grow), "--dir", str(grow / "baselines"))
        files = list((grow / "baselines").glob("*.parquet"))
        counts.append(_processes(files[0]) if files else 0)
    a.record("N42", f"processes per case after each refresh: {counts}", counts[0] > 0 and len(set(counts)) == 1)
    mac = edit(runs["real"], a.s / "slug-a.parquet", {"machine": ["Mac Studio / Darwin arm64"] * rows_in(runs["real"])})
    other = edit(runs["b2"], a.s / "slug-b.parquet", {"machine": ["mac-studio-darwin-arm64"] * rows_in(runs["b2"])})
    together = a.bench("baseline", str(mac), str(other), "--dir", "slugbl")
    machines = {m for f in (a.s / "slugbl").glob("*.parquet") for m in read_results(f)["machine"]}
    a.bench("baseline", str(mac), "--dir", "slugbl2")
    second = a.bench("baseline", str(other), "--dir", "slugbl2")
    kept = {m for f in (a.s / "slugbl2").glob("*.parquet") for m in read_results(f)["machine"]}
    a.record("N43", f"together: exit {together.rc}, machines kept {len(machines)}; one at a time: exit {second.rc}, "
                    f"machines kept {len(kept)}",
             together.contract() is None and second.contract() is None and (together.rc == 2 or len(machines) == 2)
             and (second.rc == 2 or len(kept) == 2))
    for sub, name in (("a", "real"), ("b", "b2"), ("c", "b3")):
        (a.s / "coll" / sub / "run").mkdir(parents=True, exist_ok=True)
        shutil.copy(runs[name], a.s / "coll" / sub / "run" / "x.parquet")
    o = a.bench("report", *(str(a.s / "coll" / s / "run" / "x.parquet") for s in "abc"), "-o", "rep-coll")
    copies = {r for f in (a.s / "rep-coll" / "data").glob("*.parquet") for r in read_results(f)["run_id"]}
    a.expect("N44", o, 0, extra=copies == {"real", "b2", "b3"}, note=f"runs in data/: {sorted(copies)};")
    proj = a.s / "proj" / "data"
    proj.mkdir(parents=True, exist_ok=True)
    (proj / "my-notes.txt").write_text("mine")
    (proj / "dataset.csv").write_text("a,b\n1,2\n")
    o = a.bench("report", str(runs["real"]), "-o", str(a.s / "proj"))
    kept_files = (proj / "my-notes.txt").exists() and (proj / "dataset.csv").exists()
    a.record("N45", f"exit {o.rc}; user files kept: {kept_files}", o.contract() is None and kept_files)
    loop2 = a.s / "loop2"
    loop2.mkdir(exist_ok=True)
    shutil.copy(runs["real"], loop2 / "good.parquet")
    for link, target in (("x.parquet", "y.parquet"), ("y.parquet", "x.parquet")):
        if not (loop2 / link).is_symlink():
            (loop2 / link).symlink_to(target)
    outs = [a.bench("report", str(loop2), "-o", "rep-loop2"), a.bench("show", str(loop2)),
            a.bench("baseline", str(loop2), "--dir", "bl-loop2"), a.bench("compare", str(loop2), str(runs["c1"]))]
    _all(a, "N46", outs, outs[0].rc == 0 and all(o.rc in (0, 1, 2) for o in outs))
    _serve_cases(a, runs)
    many = a.s / "many2"
    many.mkdir(exist_ok=True)
    one = pq.read_table(runs["real"]).slice(0, 1)
    for i in range(400):
        pq.write_table(one.set_column(one.schema.get_field_index("run_id"), "run_id", pa.array([f"m{i}"])),
                       many / f"m{i}.parquet")
    first = a.bench("report", str(runs["real"]), "-o", "rep-int")
    page = digest(a.s / "rep-int" / "index.html") if first.rc == 0 else ""
    p = a.spawn("report", str(many), "-o", "rep-int")
    time.sleep(4)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    left = _leftovers(a.s / "rep-int")
    intact = page and digest(a.s / "rep-int" / "index.html") == page
    a.record("N49", f"exit {p.returncode}; traceback {'Traceback' in err}; page intact {bool(intact)}; leftovers {left}; "
                    f"{' '.join(err.split())[:60]}",
             p.returncode in (130, 0) and "Traceback" not in err and not left and (p.returncode == 0 or bool(intact)))
    tiny = a.mount("tinyrep", "size=3m")
    if tiny:
        a.bench("report", str(runs["real"]), "-o", str(tiny))
        free = shutil.disk_usage(tiny).free
        (tiny / "filler").write_bytes(b"\0" * max(0, free - 400 * 1024))
        old_runs = {r for f in (tiny / "data").glob("*.parquet") for r in read_results(f)["run_id"]}
        o = a.bench("report", str(a.s / "real"), "-o", str(tiny))
        new_runs = {r for f in (tiny / "data").glob("*.parquet") for r in read_results(f)["run_id"]}
        html = (tiny / "index.html").read_text(errors="replace")
        page_runs = {r for r in ("real", "b2", "b3", "c1", "c2") if r in html}
        leftovers = _leftovers(tiny)
        consistent = (o.rc == 0) or (new_runs == old_runs)
        a.record("N50", f"exit {o.rc}; data/ runs before {sorted(old_runs)} after {sorted(new_runs)}; page names "
                        f"{sorted(page_runs)}; leftovers {leftovers}",
                 o.contract() is None and consistent and not leftovers)
    else:
        a.record("N50", "needs root (a 3 MiB tmpfs)", None)


def _leftovers(folder: Path) -> list[str]:
    """Temporary files a command left behind (`.x.tmp`, `.data.new-…`); bench's own record of
    the outputs it created (`.metalbench-outputs.json`) is meant to stay."""
    return [f.name for f in folder.iterdir() if f.name.startswith(".") and f.name != ".metalbench-outputs.json"]


def _serve_cases(a: Audit, runs: dict[str, Path]) -> None:
    p = a.spawn("report", str(runs["real"]), "-o", "rep-serve0", "--serve", "--host", "0.0.0.0", "--port", "0",
                "--serve-seconds", "60", env={"PYTHONUNBUFFERED": "1"})
    port, said = 0, ""
    end = time.monotonic() + 120
    while time.monotonic() < end and not port:
        line = p.stdout.readline()
        said += line
        if m := re.search(r":(\d+)/", line):
            port = int(m.group(1))
        if not line and p.poll() is not None:
            break
    status = 0
    if port:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.putrequest("GET", "/", skip_host=True)
            c.putheader("Host", "evil.example")
            c.endheaders()
            status = c.getresponse().status
            c.close()
        except OSError:
            status = -1
    kill_group(p.pid)
    out, err = p.communicate(timeout=30)
    warned = "warning" in (said + out + err).lower()
    a.record("N47", f"port {port}; foreign Host → {status}; warning printed: {warned}", bool(port) and
             (status == 403 or warned))
    o = a.bench("report", str(runs["real"]), "-o", "rep-serve1", "--serve", "--host", "no-such-host.invalid",
                "--serve-seconds", "1", timeout=300)
    a.expect("N48", o, 2, note="(note: after rendering)")


# -- results files, terminal text and tooling: N51–N63 -------------------------------------------------
def files_and_text(a: Audit) -> None:
    runs = _runs(a)
    real = runs["real"]
    n = rows_in(real)
    new = a.s / "new"
    new.mkdir(exist_ok=True)
    table = pq.read_table(real)
    pq.write_table(table.append_column("my_extra", pa.array(["x"] * n)), new / "extra.parquet")
    outs = [a.bench("show", str(new / "extra.parquet")), a.bench("report", str(new / "extra.parquet"), "-o", "rep-extra")]
    _all(a, "N51", outs, all(o.rc == 0 for o in outs))
    renamed = new / "renamed"
    renamed.mkdir(exist_ok=True)
    for name, column, new_name in (("median", "median_s", "median"), ("cpus", "cpus", "cpu_set")):
        names = [c if c != column else new_name for c in table.column_names]
        pq.write_table(table.rename_columns(names).replace_schema_metadata(table.schema.metadata),
                       renamed / f"{name}.parquet")
    m, c = a.bench("show", str(renamed / "median.parquet")), a.bench("show", str(renamed / "cpus.parquet"))
    _all(a, "N52", [m, c], _one_line(m) and "median_s" in m.err and c.rc == 0)
    dup = new / "dup"
    dup.mkdir(exist_ok=True)
    pq.write_table(table.append_column(pa.field("framework", pa.string()), pa.array(["x"] * n)), dup / "dup.parquet")
    f = str(dup / "dup.parquet")
    outs = [a.bench("show", f), a.bench("report", f, "-o", "rep-dup"), a.bench("baseline", f, "--dir", "bl-dup"),
            a.bench("export", "--pytest-benchmark", "dup.json", f), a.bench("compare", str(real), f)]
    _all(a, "N53", outs, all(_one_line(o) for o in outs))
    pm = a.s / "folder-pm"
    pm.mkdir(exist_ok=True)
    shutil.copy(real, pm / "good.parquet")
    meta = dict(table.schema.metadata)
    outs = []
    for name, value in (("notjson", b"{not json"),
                        ("noindex", json.dumps({"index_columns": ["nope"], "columns": [], "column_indexes": []}).encode())):
        path = edit(real, a.s / f"pm-{name}.parquet", {}, {**meta, b"pandas": value})
        outs += [a.bench("show", str(path)), a.bench("compare", str(real), str(path))]
    shutil.copy(a.s / "pm-notjson.parquet", pm / "pm.parquet")
    outs.append(a.bench("report", str(pm), "-o", "rep-pm"))
    _all(a, "N54", outs, outs[0].rc == 0 and outs[-1].rc == 0)
    outs = []
    for i, version in enumerate((b" 1\n", b"+1", "１".encode())):
        path = edit(real, a.s / f"ver{i}.parquet", {}, {**meta, b"metalbench_schema_version": version})
        outs.append(a.bench("show", str(path)))
    _all(a, "N55", outs, all(o.rc in (0, 2) for o in outs))
    samples = table.column("queued_samples_s").to_pylist()
    bad = [[float("inf"), float("nan"), -1.0, *s[3:]] if s else s for s in samples]
    nan = edit(real, a.s / "naninf-samples.parquet", {"queued_samples_s": pa.array(bad, pa.list_(pa.float64()))})
    o = a.bench("export", "--pytest-benchmark", "naninf.json", str(nan))
    strict = True
    try:
        json.loads((a.s / "naninf.json").read_text(), parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
    except (OSError, ValueError):
        strict = False
    a.expect("N56", o, 0, extra=strict, note=f"strict JSON: {strict};")
    esc = "torch\x1b[2J\x1b]0;title\x07\x1b]8;;http://evil.example\x07link\x1b]8;;\x07"
    hostile = edit(real, a.s / "esc.parquet", {"framework": [esc] * n, "machine": [esc] * n,
                                               "status": ["error"] * n, "reason": [esc] * n})
    outs = [a.bench("show", str(hostile)), a.bench("show", "--all", str(hostile)), a.bench("compare", str(real), str(hostile))]
    raw = [o.text.count("\x1b") for o in outs]
    a.record("N57", f"raw ESC bytes: {raw}", not any(raw) and all(o.contract() is None for o in outs))
    odd = "a\u202eevil\u2028x\x00y\x08z</script><!--"
    params = [json.dumps({**json.loads(p), "x": odd}, sort_keys=True) for p in table.column("params").to_pylist()]
    cand = edit(real, a.s / "bidi.parquet", {"reason": [odd] * n, "device_name": [odd] * n, "status": ["error"] * n})
    a.bench("compare", str(real), str(cand), "--markdown", "bidi.md")
    md = (a.s / "bidi.md").read_text() if (a.s / "bidi.md").exists() else ""
    csvsrc = edit(real, a.s / "bidi-csv.parquet", {"reason": [odd] * n, "device_name": [odd] * n, "params": params})
    a.bench("report", str(csvsrc), "-o", "rep-bidi")
    csv = (a.s / "rep-bidi" / "data" / "results.csv").read_text(errors="replace") if (
        a.s / "rep-bidi" / "data" / "results.csv").exists() else ""
    found = {name: ch in md for name, ch in (("U+202E", "\u202e"), ("NUL", "\x00"), ("BS", "\x08"))}
    a.record("N58", f"in the Markdown: {found}; NULs in results.csv: {csv.count(chr(0))}",
             bool(md) and bool(csv) and not any(found.values()) and "\x00" not in csv)
    symres, elsewhere = a.s / "symres", a.s / "elsewhere"
    symres.mkdir(exist_ok=True)
    elsewhere.mkdir(exist_ok=True)
    shutil.copy(real, symres / "local.parquet")
    shutil.copy(runs["b2"], elsewhere / "b2.parquet")
    if not (symres / "linkdir").is_symlink():
        (symres / "linkdir").symlink_to(elsewhere)
        (symres / "linkfile.parquet").symlink_to(runs["b3"])
    show = a.bench("show", str(symres))
    rep = a.bench("report", str(symres), "-o", "rep-sym")
    copies = {r for f in (a.s / "rep-sym" / "data").glob("*.parquet") for r in read_results(f)["run_id"]}
    a.record("N59", f"exits {show.rc}, {rep.rc}; b2 in show: {'b2' in show.out}; runs in the report's data/: "
                    f"{sorted(copies)}", show.rc == 0 and rep.rc == 0 and "b2" in show.out and "b2" in copies)
    odd_folder = a.s / "fiforesults"
    odd_folder.mkdir(exist_ok=True)
    shutil.copy(real, odd_folder / "good.parquet")
    if not (odd_folder / "fifo.parquet").exists():
        os.mkfifo(odd_folder / "fifo.parquet")
    with open(odd_folder / "sparse.parquet", "wb") as fh:
        fh.truncate(2 * 2**30)
    outs = [a.bench("show", str(odd_folder), timeout=120), a.bench("report", str(odd_folder), "-o", "rep-fifo", timeout=120)]
    (odd_folder / "sparse.parquet").unlink()
    _all(a, "N60", outs, all(o.rc == 0 and "skipped" in o.err for o in outs))
    over = a.s / "outover"
    over.mkdir(exist_ok=True)
    for name in ("c1", "c2", "real"):
        shutil.copy(runs[name], over / f"{name}.parquet")
    before = {p.name: digest(p) for p in over.glob("*.parquet")}
    outs = [a.bench("export", "--pytest-benchmark", str(over / "c1.parquet"), str(over / "c1.parquet")),
            a.bench("compare", str(over / "real.parquet"), str(over / "c2.parquet"), "--json", str(over / "c2.parquet")),
            a.bench("compare", str(over / "c1.parquet"), str(over / "c2.parquet"), "--markdown", str(over / "real.parquet"))]
    changed = [p.name for p in over.glob("*.parquet") if digest(p) != before[p.name]]
    _all(a, "N61", outs, not changed and all(o.rc == 2 for o in outs), note=f"changed {changed}")
    thr = a.s / "thr"
    (thr / "base").mkdir(parents=True, exist_ok=True)
    (thr / "cand").mkdir(parents=True, exist_ok=True)
    for name, side, threads in (("real", "base", 1), ("b2", "base", 1), ("b3", "base", 1), ("c1", "cand", 2),
                                ("c2", "cand", 2)):
        edit(runs[name], thr / side / f"{name}.parquet", {"threads": pa.array([threads] * rows_in(runs[name]), pa.int64())})
    o = a.bench("compare", str(thr / "base"), str(thr / "cand"))
    said = "thread" in o.text.lower() and ("not like with like" in o.text or "warning" in o.text.lower())
    a.record("N62", f"exit {o.rc}; thread counts mentioned: {said}", o.contract() is None and said)
    o = a.command([sys.executable, str(REPO / "scripts" / "reliability_audit.py"), "--help"], cwd=a.s)
    a.expect("N63", o, 0, "usage")


SECTIONS = {"N-run": run_inputs, "N-tools": tools, "N-gate": gate_and_report, "N-files": files_and_text}
