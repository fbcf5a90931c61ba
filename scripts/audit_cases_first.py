"""The 122 cases of the reliability audit of 2026-11-29
(../shared/research/reliability-audit-2026-11-29.md), as the 2026-12-03 audit re-ran them:
bad input (A), bad results files (B), faults during a run (C), security (S) and the gate's
Markdown (E). `CASES` is the audit's table (what was done; the good outcome, from the
re-run's "outcome now" column); the section functions run each case and record its verdict.

Read-only folders and the full disk are tmpfs mounts and the container runs use
`unshare --pid`, as in the audit, so those cases need root; without it they are `n/a`.
The audit's cgroup is not needed any more: the case that asked for 20 GB (A32) is now
refused before anything is allocated, and it is never run with --force-memory here.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from audit_kit import BENCH, FAST, REPO, Audit, Case, Outcome, digest, edit, fill_up, rows_in, wait_for, workers_of
from bench.results import SCHEMA, read_results
from tests.helpers import write_safetensors


# The audit table: each case, what was done, the good outcome.
CASES = [
    Case('A1', 'unknown framework: `bench run -f caffe`',
         'exit 2, one line naming the choices', (), was=()),
    Case('A2', 'unknown workload: `bench run -w conv`',
         'exit 2, one line naming the choices', (), was=()),
    Case('A3', 'unknown dtype: `bench run -d fp8`',
         'exit 2, one line naming the choices', (), was=()),
    Case('A4', 'unknown suite: `bench run --suite huge`',
         'exit 2, one line naming the choices', (), was=()),
    Case('A5', 'unknown device: `bench run --device tpu`',
         'exit 2, one line naming the choices', (), was=()),
    Case('A6', 'unknown timing: `bench run --timing fast`',
         'exit 2, one line naming the choices', (), was=()),
    Case('A7', 'empty framework list: `bench run -f , -w matmul --budget 0.2`',
         "`-f ,` → exit 2 `empty framework list ',' (choose from: …; leave the option out for all)`", (), was=('D12',)),
    Case('A8', 'empty dtype list: `bench run -f torch -w matmul -d ""`',
         '`-d ""` → exit 2 `empty dtype list`', (), was=('D12',)),
    Case('A9', 'threads 0: `bench run --threads 0`',
         'exit 2 `expected a positive integer`', (), was=()),
    Case('A10', 'threads −1: `bench run --threads -1`',
         'exit 2 `expected a positive integer`', (), was=()),
    Case('A11', 'threads non-integer: `bench run --threads 1.5`',
         'exit 2 `expected a positive integer`', (), was=()),
    Case('A12', 'threads huge: `bench run -f torch -w stream -d fp32 --threads 100000` (pids cgroup 400)',
         '`--threads 100000` → exit 2 `expected 1 to 64 threads`', (), was=('D12',)),
    Case('A13', 'budget negative: `bench run --budget -1`',
         'exit 2, one line', (), was=()),
    Case('A14', 'budget zero: `bench run -f torch,, -w matmul --budget 0`',
         'exit 2, one line', (), was=()),
    Case('A15', 'budget NaN: `bench run --budget nan`',
         'exit 2, one line', (), was=()),
    Case('A16', 'budget inf: `bench run --budget inf`',
         'exit 2, one line', (), was=()),
    Case('A17', 'case-timeout 0: `bench run --case-timeout 0`',
         'exit 2, one line', (), was=()),
    Case('A18', 'case-timeout huge: `bench run -f torch -w stream -d fp32 --case-timeout 3000000`',
         '`--case-timeout 3000000` → exit 2 `… up to 1000000`', (), was=('D11',)),
    Case('A19', '-p missing key: `bench run -w matmul -p m=1,n=2`',
         'exit 2, one line naming the key/values', (), was=()),
    Case('A20', '-p unknown key: `bench run -w matmul -p m=1,n=2,k=3,z=4`',
         'exit 2, one line naming the key/values', (), was=()),
    Case('A21', '-p negative: `bench run -w matmul -p m=-5,n=2,k=3`',
         'exit 2, one line naming the key/values', (), was=()),
    Case('A22', '-p zero: `bench run -w matmul -p m=0,n=2,k=3`',
         'exit 2, one line naming the key/values', (), was=()),
    Case('A23', '-p non-integer: `bench run -w matmul -p m=1.5,n=2,k=3`',
         'exit 2, one line naming the key/values', (), was=()),
    Case('A24', '-p text: `bench run -w matmul -p m=abc,n=2,k=3`',
         'exit 2, one line naming the key/values', (), was=()),
    Case('A25', '-p with two workloads: `bench run -w matmul,sdpa -p m=1,n=2,k=3`',
         'exit 2, one line naming the key/values', (), was=()),
    Case('A26', '-p with no workload: `bench run -p m=1,n=2,k=3`',
         'exit 2, one line naming the key/values', (), was=()),
    Case('A27', '-p bad flag: `bench run -w sdpa -p batch=1,heads=1,seq=8,head_dim=8,causal=maybe`',
         'exit 2, one line naming the key/values', (), was=()),
    Case('A28', '-p duplicate key: `bench run -w matmul -p m=1,n=2,k=3,m=9999`',
         "duplicate `m` → exit 2 `duplicate parameter 'm'`", (), was=('D12',)),
    Case('A29', '-p for qmatmul: `bench run -w qmatmul -p m=8,n=512,k=512,bits=8,scheme=symmetric,group=512`',
         'qmatmul `-p …scheme=symmetric,group=512` (`-f torch -d bf16`) → 1 ok row', (), was=('D10',)),
    Case('A30', '-p for train_step / lora: `bench run -w train_step -p layers=2,d_model=64,heads=4,seq=32,batch=8,steps=8,lr=0.001,data=builtin`',
         'train_step `-p …,lr=0.001,data=builtin` → 1 ok row (eager) + 1 skipped (compiled, quick suite on CPU, with the reason)', (), was=('D10',)),
    Case('A31', '-p absurd size: `bench run -f torch -w matmul -d fp32 -p m=10000000,n=10000000,k=10000000 --budget 0.2`',
         '10⁷³ matmul → exit 2 before any work: `needs about 4.47e+06 GiB … --force-memory to run it anyway`', (), was=()),
    Case('A32', '-p size > RAM (OOM): the same with `-p m=10000000,n=256,k=256` (a 20 GB float64 input on a 23 GB machine), inside the 3 GiB cgroup',
         '10⁷×256×256 → exit 2 `needs about 76.3 GiB of host memory …, 22.4 GiB is available`', (), was=('D5',)),
    Case('A33', '--python missing file: `bench run -f torch -w matmul -d fp32 --python torch=/nonexistent/python`',
         '`--python torch=/nonexistent/python` → exit 2 `no interpreter at …`', (), was=('D11',)),
    Case('A34', '--python not executable: `... --python torch=README.md`',
         "`--python torch=README.md` → exit 2 `'README.md' is not executable`", (), was=('D11',)),
    Case('A35', '--python non-Python executable: `... --python torch=/bin/true`',
         '`/bin/true` → 2 `error` rows `worker died while starting torch (exit code 0)`', (), was=()),
    Case('A36', '--python without numpy: `... --python torch=/usr/bin/python3`',
         "`/usr/bin/python3` (no numpy) → 2 `error` rows naming `No module named 'numpy'`", (), was=()),
    Case('A37', '--python `yes`: `... --python torch=/usr/bin/yes`',
         '`/usr/bin/yes` → 2 `error` rows', (), was=()),
    Case('A38', '--python wrapper that prints a banner first (conda/module-style): `... --python torch=scratch/chatty-python` (`echo "conda env activated"; exec .venv/bin/python "$@"`)',
         'banner-printing wrapper (`scratch/chatty-python`) → 2 ok rows', (), was=('D11',)),
    Case('A39', 'env with a missing interpreter: `bench env --python torch=/nonexistent/python`',
         '`bench env --python torch=/nonexistent/python` → exit 2, one line', (), was=('D11',)),
    Case('A40', '--model missing folder: `bench run -f torch -w generate -d fp32 --model scratch/models/missing`',
         'exit 2, one line', (), was=()),
    Case('A41', '--model empty folder: `... --model scratch/models/empty`',
         'exit 2, one line', (), was=()),
    Case('A42', '--model truncated config.json: `... --model scratch/models/badjson`',
         'exit 2, one line', (), was=()),
    Case('A43', '--model config.json is a list: `... --model scratch/models/listjson`',
         'config.json is a list → exit 2 `config.json is a JSON list, expected an object …`', (), was=('D11',)),
    Case('A44', '--model `"hidden_size": "64"`: `... --model scratch/models/strjson`',
         '`"hidden_size": "32"` → exit 2 `… is \'32\', expected a positive integer`', (), was=('D11',)),
    Case('A45', '--model `num_attention_heads: 0`: `... --model scratch/models/zeroheads`',
         'zero heads → exit 2 `num_attention_heads is 0`', (), was=('D11',)),
    Case('A46', '--model qwen2 (biases): `... --model scratch/models/qwen`',
         'qwen2 → exit 2, one line (the folder is named twice)', (), was=()),
    Case('A47', '--model without *.safetensors: `... --model scratch/models/nosafet`',
         '`error` row with the reason (no safetensors; buffer too small; `unpack requires a buffer of 8 bytes`; `UnicodeDecodeError`; matmul shape mismatch)', (), was=()),
    Case('A48', 'safetensors with truncated data: `... --model scratch/models/trunc`',
         '`error` row with the reason (no safetensors; buffer too small; `unpack requires a buffer of 8 bytes`; `UnicodeDecodeError`; matmul shape mismatch)', (), was=()),
    Case('A49', 'safetensors of 5 bytes: `... --model scratch/models/trunchdr`',
         '`error` row with the reason (no safetensors; buffer too small; `unpack requires a buffer of 8 bytes`; `UnicodeDecodeError`; matmul shape mismatch)', (), was=()),
    Case('A50', 'safetensors header length 2⁶³: `... --model scratch/models/hugehdr`',
         '`error` row with the reason (no safetensors; buffer too small; `unpack requires a buffer of 8 bytes`; `UnicodeDecodeError`; matmul shape mismatch)', (), was=()),
    Case('A51', 'safetensors negative `data_offsets`: `... --model scratch/models/negoff`',
         "negative `data_offsets` → `error` row, but now `KeyError: 'model.embed_tokens.weight'`. The negative offset is no longer rejected: the bytes are read from inside the header", (), was=()),
    Case('A52', 'checkpoint with mismatched shapes: `... --model scratch/models/shapes` (a q_proj with the wrong inner dimension, down_proj transposed)',
         '`error` row with the reason (no safetensors; buffer too small; `unpack requires a buffer of 8 bytes`; `UnicodeDecodeError`; matmul shape mismatch)', (), was=()),
    Case('A53', 'results folder read-only: `bench run -f torch -w matmul -d fp32 -o scratch/rofs`',
         'exit 2 `cannot write results to …: Read-only file system / File exists` before any work', (), was=()),
    Case('A54', 'results path is a file: `... -o scratch/afile`',
         'exit 2 `cannot write results to …: Read-only file system / File exists` before any work', (), was=()),
    Case('A55', 'results sub-folder of a read-only folder: `... -o scratch/rofs/sub`',
         'exit 2 `cannot write results to …: Read-only file system / File exists` before any work', (), was=()),
    Case('A56', 'disk full during the run: `bench run -f torch -w matmul,sdpa,stream -d fp32,bf16 --timing latency --budget 0.2 -o scratch/tinyfs --run-id full2`',
         'disk full (filled once 2 rows are on it) → exit 2 `cannot write results to scratch/tinyfs/full2.parquet: No space left on device; N finished rows are saved …`, N ≥ 2 and N rows readable, earlier file intact, no `.tmp` left', (), was=('D11',)),
    Case('A57', 'report into a read-only folder: `bench report results -o scratch/rofs`',
         'report into a read-only folder → exit 2 in 3 s, before any chart', (), was=('D11',)),
    Case('A58', 'report output is a file: `bench report results -o scratch/afile`',
         'report `-o` a file → exit 2 `… is not a folder`', (), was=('D11',)),
    Case('A59', 'gate Markdown unwritable: `bench compare results results --markdown scratch/rofs/x.md`',
         '`--markdown scratch/rofs/x.md` → exit 2 at parse time, before the verdict', (), was=('D11',)),
    Case('A60', 'export path under a file: `bench export --pytest-benchmark scratch/afile/x.json results`',
         'export under a file → exit 2', (), was=('D11',)),
    Case('A61', 'baseline folder read-only: `bench baseline results/<run>.parquet --dir scratch/rofs`',
         'baseline `--dir` read-only → exit 2', (), was=('D11',)),
    Case('A62', 'reused --run-id: `bench run -f torch -w matmul -d fp32 --budget 0.2 --run-id myrun`, then `bench run -f torch -w stream -d fp32 --budget 0.2 --run-id myrun`',
         "second run with the same id → exit 2 `already exists: that run id is taken`. The first run's file is unchanged (2 rows)", (), was=('D2',)),
    Case('A63', '--run-id with a sub-folder: `... --run-id sub/x`',
         '`--run-id sub/x` → `scratch/r-id/sub/x.parquet`', (), was=()),
    Case('A64', '--run-id escaping -o: `... -o scratch/rid4 --run-id ../escaped`',
         '`--run-id ../escaped` → exit 2 `expected a name inside the results folder`', (), was=('D12',)),
    Case('A65', 'negative threshold: `bench compare A B --threshold -5%`',
         '`--threshold -5%` → exit 2', (), was=()),
    Case('A66', 'alpha > 1: `bench compare A B --alpha 2`',
         '`--alpha 2`, `--alpha -1` → exit 2 `expected a level between 0 and 1`', (), was=('D4',)),
    Case('A67', 'alpha negative: `bench compare A B --alpha -1`',
         '`--alpha 2`, `--alpha -1` → exit 2 `expected a level between 0 and 1`', (), was=('D4',)),
    Case('A68', 'alpha NaN: `bench compare scratch/md/slow_base.parquet scratch/md/slow_cand.parquet --alpha nan` (candidate samples ×1.5)',
         "`--alpha nan` → exit 2. Note: with the default alpha, 3 real baseline runs against 2 runs whose samples were ×1.5 give `PASS: 6 same … 6 too noisy to see 25%`. On this loaded VM one case's per-process minimum ranged 0.11–13.9 ms, and the g…", (), was=('D4',)),
    Case('A69', 'baseline with 0 or negative runs: `bench baseline --runs 0 -f torch`, `bench baseline --runs -3`',
         '`bench baseline --runs 0 -f torch` → exit 2 `unrecognized arguments` (the options were removed)', (), was=('D11',)),
    Case('A70', 'serve port out of range: `bench report results -o scratch/r --serve --port 70000 --serve-seconds 1`',
         '`--port 70000` / `-1` → exit 2 at parse time, before rendering', (), was=('D11',)),
    Case('A71', 'serve port negative: the same with `--port -1`',
         '`--port 70000` / `-1` → exit 2 at parse time, before rendering', (), was=('D11',)),
    Case('B1', 'empty file (0 bytes): `bench show|compare|baseline|export scratch/bad/empty.parquet`',
         'exit 2, one line, in show, compare, baseline and export', (), was=()),
    Case('B2', 'truncated parquet (first half): same 4 commands on `truncated.parquet`',
         'exit 2, one line, in show, compare, baseline and export', (), was=()),
    Case('B3', 'truncated footer (last 100 bytes cut): same on `truncated_tail.parquet`',
         'exit 2, one line, in show, compare, baseline and export', (), was=()),
    Case('B4', "another program's parquet (pandas, columns a, b): same on `foreign.parquet`",
         'exit 2, one line, in show, compare, baseline and export', (), was=()),
    Case('B5', 'unrelated columns plus metalbench metadata: same on `foreign_claims.parquet`',
         'exit 2, one line, in show, compare, baseline and export', (), was=()),
    Case('B6', 'schema-version metadata `b"one"`: show / compare / baseline / export / report on `badmeta.parquet`',
         "exit 2 `schema version b'one' in its metadata is not a number` in all 5 commands", (), was=('D9',)),
    Case('B7', 'schema version 2: same 4 on `version2.parquet`',
         'exit 2, one line, in show, compare, baseline and export', (), was=()),
    Case('B8', 'right columns, wrong types (status int, params int, samples str, median str): all 5 on `wrongtypes.parquet`',
         'exit 2 `column params holds int64, expected string` in all 5', (), was=('D9',)),
    Case('B9', '`median_s` as text (`"0.00016s"`): report, baseline on `median_str.parquet`',
         'exit 2 `column median_s holds string, expected double`', (), was=('D9',)),
    Case('B10', '`params` = `[1, 2, 3]`: show / export / report on `params_list.parquet`',
         "exit 2 `params '[1, 2, 3]' is not a JSON object` (show, export, report)", (), was=('D9',)),
    Case('B11', '`params` not JSON: export on `params_badjson.parquet`',
         'exit 2 in export (show and report also refuse now)', (), was=('D9',)),
    Case('B12', '`correct` = `"false"` (text): show / compare on `correct_str.parquet`',
         'exit 2 `column correct holds string, expected bool`', (), was=('D13',)),
    Case('B13', 'NaN / inf / −1 / 0 medians, samples with inf/NaN/−1: show / compare / report on `naninf.parquet`',
         'show ranks none of the NaN/inf/−1/0 rows (`impossible timing` / `no timing`). compare exit 2 CANNOT JUDGE. report exit 0', (), was=('D13',)),
    Case('B14', 'status ok but every median and sample null: show / compare / report on `ok_null_medians.parquet`',
         'show/report `—`, compare exit 2', (), was=()),
    Case('B15', 'right schema, zero rows: all 5 on `zero_rows.parquet`',
         'show `0 rows:` exit 0, the others exit 2', (), was=()),
    Case('B16', 'framework name `[/]`: `bench show scratch/bad/markup_framework.parquet`',
         '`[/]` and `[bold red]` printed literally', (), was=('D6',)),
    Case('B17', 'params value `[/]`: `bench show scratch/bad/markup_params.parquet`',
         '`[/]` and `[bold red]` printed literally', (), was=('D6',)),
    Case('B18', 'reason `boom [/] [bold red]FAKE[/]`: `bench show --all scratch/bad/markup_reason.parquet`',
         '`[/]` and `[bold red]` printed literally', (), was=('D6',)),
    Case('B19', 'a genuine `skipped` row (mlx hidden from its interpreter): `bench run -f mlx -w stream -d fp32 --python mlx=scratch/python-nomlx`, then `bench show --all <out>`',
         "`pip install 'metalbench[mlx]'` in show --all, `bench list` and `bench env`", (), was=('D6',)),
    Case('B20', 'machine name `evil $\\undefinedcommand{$ box`: `bench report scratch/bad/mathtext_machine.parquet -o scratch/r`',
         '`$…$` in machine/framework → report exit 0', (), was=('D9',)),
    Case('B21', 'framework name `$\\frac{$`: `bench report scratch/bad/mathtext_framework.parquet -o scratch/r`',
         '`$…$` in machine/framework → report exit 0', (), was=('D9',)),
    Case('B22', 'folder = 1 good run + 1 readable-but-malformed file (B10): `bench report scratch/folder1 -o scratch/r`; `bench show scratch/folder1`',
         'folder with one good and one malformed file → report and show exit 0, with `warning: skipped scratch/folder1/odd.parquet: …`', (), was=('D9',)),
    Case('B23', 'symlink loops (a→b→a, self→self, `sub -> .`, an absolute link to the folder): `bench show scratch/loop`; `bench report scratch/loop -o scratch/r`',
         'show and report each skip the looping links with a warning (or exit 2 with one line); no traceback, no hang', ('D24',), was=()),
    Case('B24', '2,000 parquet files + 3,000 other files in one folder: `bench show scratch/many`; `bench report scratch/many -o scratch/r`',
         '2,000 parquet + 3,000 other files: show 49 s / 468 MB, report 63 s / 500 MB, exit 0 (slower than on 11-29; the machine was loaded)', (), was=()),
    Case('B25', 're-render a report from its own `data/` copies, as the README suggests: `bench report results -o reports`, then `bench report reports/data` (default `-o reports`)',
         '`bench report results -o reports && bench report reports/data` → exit 0. `reports/data` still holds the 3 copies + csv, no leftovers', (), was=('D1',)),
    Case('C1', 'SIGINT mid-run (19 cases): `bench run -f torch -w matmul,sdpa,stream,qmatmul -d fp32,bf16,fp16 --timing latency --budget 0.3 -o scratch/sigint --run-id s1`, then `kill -INT <runner>` after 4 s',
         'SIGINT after 3 rows → exit 130 `interrupted: 3 finished rows are saved`. 3 rows readable, worker gone', (), was=()),
    Case('C2', 'SIGINT before the first row: `timeout -s INT 4 bench run -f , -w matmul -o scratch/r1p`',
         'SIGINT while the worker starts → exit 130 `interrupted before the first case finished: nothing was written`', (), was=('D15',)),
    Case('C3', 'SIGTERM of the runner: same run, `kill -TERM <runner>`',
         'SIGTERM → exit 143, no message. 3 rows readable. The worker finished its case and exited 1.4 s later (`BrokenPipeError` in its log)', (), was=()),
    Case('C4', 'SIGKILL of the runner during a case: `bench run -f torch -w matmul,stream -d fp32,bf16 --budget 2 --precision 0.0001 -o scratch/sigkill --run-id k1`, then `kill -KILL <runner>` at 10 s',
         'SIGKILL of the runner → both finished rows readable. The orphaned worker ran 5.6 s to the end of its case, then exited', (), was=()),
    Case('C5', 'SIGKILL of a worker (`python -m bench.worker`): `kill -KILL <worker>` during the 3rd case',
         'SIGKILL of the worker → `error` row `killed by SIGKILL`. A fresh worker ran the rest (5 ok + 1 error)', (), was=()),
    Case('C6', 'SIGSTOP of a worker (hang) mid-case: `bench run -f torch -w matmul,stream -d fp32,bf16 --budget 1 --precision 0.0001 --case-timeout 30 ...` (the audit had 4 s: today a case on a busy VM takes longer), then `kill -STOP <worker>` after its first row',
         'SIGSTOP of the worker → one `timeout` row (`no answer within 30s while running …`); a fresh worker runs the rest (17 ok + 1 timeout)', (), was=()),
    Case('C7', 'SIGSTOP of a worker while it starts, `--case-timeout 5`: `bench run -f torch -w stream,matmul -d fp32 --case-timeout 5 ...`, then STOP the worker within 50 ms of its start',
         'SIGSTOP while starting, `--case-timeout 5` → start timeout 30 s. Wall 38 s (was 184 s)', (), was=('D14',)),
    Case('C8', 'OOM killer fires in a worker: A32',
         'A32 with `--force-memory` in the 3 GiB cgroup → `error` row `killed by SIGKILL` (it does not say memory). The runner carried on', (), was=()),
    Case('C9', 'two `bench run` into one folder at once, same host: two concurrent `bench run -f torch ... -o scratch/conc`',
         'two runs into one folder → `…-81a29ab3`, `…-8e0dd846`, both intact', (), was=()),
    Case('C10', 'the same, with each run in its own PID namespace (what two containers sharing a results volume look like): `for w in matmul stream; do unshare --pid --fork --mount-proc bench run -f torch -w $w -d fp32,bf16 --timing latency --budget 0.3 -o…',
         'two runs in separate PID namespaces → two files with 4 + 2 rows', (), was=('D3',)),
    Case('C11', 'a framework prints to stdout after the redirect (`print`, `os.write(1, …)`, `sys.__stdout__`, injected at adapter import): `bench run -f torch -w stream -d fp32` with the adapter patched',
         'stray prints go to the worker log, row ok', (), was=()),
    Case('S1', 'HTML/JS in 17 string columns: reason, framework_version, device_name, host, chip, os, suite, suite_version, run_id, machine (also a second machine, so it shows in chart titles), versions and metrics (keys and values), notes, implementation…',
         '`<img onerror>` in 19 string columns, versions/metrics keys and values, params, a second machine and a framework name → 0 raw `<img` in the HTML. In Chromium with a 60,000-px window (76 charts drawn), 54 SVG `<text>` nodes hold the payload…', (), was=()),
    Case('S2', '`--serve` bind address: `bench report results -o scratch/r --serve --port 0 --serve-seconds 40`; `ss -ltnp`',
         "listens on `127.0.0.1:<port>`; the VM's other address refuses", (), was=()),
    Case('S3', 'path traversal: `curl --path-as-is` on `/../../etc/passwd`, `/%2e%2e/%2e%2e/etc/passwd`, `/%2e%2e%2f…`, `/..%2f..%2f…`, `//etc/passwd`, `/data/..%2f…`',
         '8 traversal variants → 404', (), was=()),
    Case('S4', 'NUL byte in the path: `curl http://127.0.0.1:<port>/%00`',
         '`/%00` → 404, no traceback', (), was=('D16',)),
    Case('S5', "foreign Host header (DNS rebinding): `curl -H 'Host: evil.example:<port>' …/index.html`",
         '`Host: evil.example:<port>` → 403', (), was=('D16',)),
    Case('S6', 'symlinks and listings in the served folder: a symlink `etclink -> /etc` placed in the served folder',
         'a symlink in the served folder is followed (200) and `/data/` is listed (bench creates no symlinks)', (), was=()),
    Case('S7', 'write methods: `curl -X POST /`, `curl -X PUT /x`',
         'POST/PUT/DELETE → 501', (), was=()),
    Case('S8', 'unsafe deserialisation or shell: `grep -rn` for pickle, eval, exec, shell=True, yaml, torch.load, np.load, os.system and literal_eval in bench, workloads and scripts',
         'no pickle/eval/exec/shell/yaml/torch.load. Note: three child processes still start with `python -m` (see D28)', (), was=()),
    Case('S9', 'modules in the working directory: `cd scratch/cwdinj` (it holds a `numpy.py` that writes a marker file), then `bench run -f torch -w stream -d fp32 -o scratch/r-cwd`',
         '`numpy.py` in `scratch/cwdinj/`; `bench run` and `bench env` from there → not imported', (), was=('D8',)),
    Case('S10', 'formula in a string column: `device_name = \'=HYPERLINK("http://evil.example","click")\'`, then `bench report … -o scratch/rep-csv`',
         "`=`, `+`, `-`, `@` cells in `data/results.csv` → leading `'`", (), was=('D16',)),
    Case('S11', 'file modes: `ls -l results/`',
         'results, report and data files 0644', (), was=('D16',)),
    Case('E1', 'reason with newlines and HTML on a case that is now failing: `x\\n\\n</details>\\n\\n## ✅ metalbench regression gate\\n\\nPASS: 12 same | fake | row |\\n\\n<!--`: `bench compare scratch/md/base.parquet scratch/md/cand.parquet --markdown scratch/md…',
         "the E1 reason becomes one entity-escaped line in its cell. One heading, no raw `<!--`, only the page's own `</details>`", (), was=('D7',)),
    Case('E2', 'framework name containing a newline and pipes: same files',
         'a framework with newline and pipes → `&#124;`, rows intact (13 pipes each)', (), was=('D7',)),
    Case('E3', 'params value `` `code` <b>bold</b> [link](http://evil.example) ``: same',
         'backticks, `<b>`, links, `![img]`, `~~`, `*`, `_` inert, no bare `http://`', (), was=('D7',)),
    Case('E4', "the same strings in `--json`: `python -c 'json.load(...)'`",
         '`--json` valid, strings intact, `exit_code` 1', (), was=()),
]


# -- 1. bad input ---------------------------------------------------------------------------
def bad_input(a: Audit) -> None:
    one = {"A1": ["-f", "caffe"], "A2": ["-w", "conv"], "A3": ["-d", "fp8"], "A4": ["--suite", "huge"],
           "A5": ["--device", "tpu"], "A6": ["--timing", "fast"], "A7": ["-f", ",", "-w", "matmul"],
           "A8": ["-f", "torch", "-w", "matmul", "-d", ""], "A9": ["--threads", "0"], "A10": ["--threads", "-1"],
           "A11": ["--threads", "1.5"], "A12": ["-f", "torch", "-w", "stream", "-d", "fp32", "--threads", "100000"],
           "A13": ["--budget", "-1"], "A14": ["-f", "torch,,", "-w", "matmul", "--budget", "0"],
           "A15": ["--budget", "nan"], "A16": ["--budget", "inf"], "A17": ["--case-timeout", "0"],
           "A18": ["-f", "torch", "-w", "stream", "-d", "fp32", "--case-timeout", "3000000"],
           "A19": ["-w", "matmul", "-p", "m=1,n=2"], "A20": ["-w", "matmul", "-p", "m=1,n=2,k=3,z=4"],
           "A21": ["-w", "matmul", "-p", "m=-5,n=2,k=3"], "A22": ["-w", "matmul", "-p", "m=0,n=2,k=3"],
           "A23": ["-w", "matmul", "-p", "m=1.5,n=2,k=3"], "A24": ["-w", "matmul", "-p", "m=abc,n=2,k=3"],
           "A25": ["-w", "matmul,sdpa", "-p", "m=1,n=2,k=3"], "A26": ["-p", "m=1,n=2,k=3"],
           "A27": ["-w", "sdpa", "-p", "batch=1,heads=1,seq=8,head_dim=8,causal=maybe"],
           "A28": ["-f", "torch", "-w", "matmul", "-d", "fp32", "--budget", "0.2", "-p", "m=1,n=2,k=3,m=9999"]}
    for case, args in one.items():
        a.expect(case, a.bench("run", *args, "-o", "r-bad"), 2, note="(issue 16)" if case == "A28" else "")
    for case, params, workload in (
            ("A29", "m=8,n=512,k=512,bits=8,scheme=symmetric,group=512", "qmatmul"),
            ("A30", "layers=2,d_model=64,heads=4,seq=32,batch=8,steps=8,lr=0.001,data=builtin", "train_step")):
        o = a.bench("run", *FAST, "-w", workload, "-d", "bf16", "-p", params, "-o", "r-p")  # as the re-run: -d bf16
        a.expect(case, o, 0, note="(issue 16)")
    o = a.bench("run", *FAST, "-w", "matmul", "-d", "fp32", "-p", "m=10000000,n=10000000,k=10000000", "-o", "r-big")
    a.expect("A31", o, 2, "--force-memory")
    o = a.bench("run", *FAST, "-w", "matmul", "-d", "fp32", "-p", "m=10000000,n=256,k=256", "-o", "r-big")
    a.expect("A32", o, 2, "--force-memory")
    a.expect("A33", a.bench("run", *FAST, "-w", "matmul", "-d", "fp32", "--python", "torch=/nonexistent/python"), 2)
    (a.s / "README.md").write_text("not a program")
    a.expect("A34", a.bench("run", *FAST, "-w", "matmul", "-d", "fp32", "--python", "torch=README.md"), 2)
    for case, python in (("A35", "/bin/true"), ("A36", "/usr/bin/python3"), ("A37", "/usr/bin/yes")):
        o = a.bench("run", *FAST, "-w", "matmul", "-d", "fp32", "--python", f"torch={python}", "-o", "r-py",
                    timeout=300)
        a.expect(case, o, 0, "error", extra=o.seconds < 200)
    chatty = a.s / "chatty-python"
    chatty.write_text(f'#!/bin/sh\necho "conda env activated"\nexec {sys.executable} "$@"\n')
    chatty.chmod(0o755)
    o = a.bench("run", *FAST, "-w", "matmul", "-d", "fp32", "--timing", "latency", "--python", f"torch={chatty}",
                "-o", "r-chatty", "--run-id", "c")
    ok = o.rc == 0 and (read_results(a.s / "r-chatty" / "c.parquet")["status"] == "ok").all()
    a.expect("A38", o, 0, extra=ok)
    a.expect("A39", a.bench("env", "--python", "torch=/nonexistent/python"), 2)
    models(a)
    outputs(a)
    gate_and_ids(a)


def tiny_config() -> dict:
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32,
            "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 1, "intermediate_size": 64,
            "vocab_size": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": True}


def models(a: Audit) -> None:
    root = a.s / "models"
    cfg = tiny_config()
    specs: dict[str, object] = {"missing": None, "empty": "", "badjson": '{"hidden_size": ', "listjson": "[1, 2]",
                                "strjson": {**cfg, "hidden_size": "32"}, "zeroheads": {**cfg, "num_attention_heads": 0},
                                "qwen": {**cfg, "model_type": "qwen2", "attention_bias": True}, "nosafet": cfg,
                                "trunc": cfg, "trunchdr": cfg, "hugehdr": cfg, "negoff": cfg, "shapes": cfg}
    for name, config in specs.items():
        if config is None:
            continue
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        if config != "":
            (folder / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    rng = np.random.default_rng(0)
    d, f, v, kv = 32, 64, 64, 16
    good = {"model.embed_tokens.weight": rng.normal(size=(v, d)), "model.norm.weight": np.ones(d),
            "model.layers.0.input_layernorm.weight": np.ones(d),
            "model.layers.0.post_attention_layernorm.weight": np.ones(d),
            "model.layers.0.self_attn.q_proj.weight": rng.normal(size=(d, d)),
            "model.layers.0.self_attn.k_proj.weight": rng.normal(size=(kv, d)),
            "model.layers.0.self_attn.v_proj.weight": rng.normal(size=(kv, d)),
            "model.layers.0.self_attn.o_proj.weight": rng.normal(size=(d, d)),
            "model.layers.0.mlp.gate_proj.weight": rng.normal(size=(f, d)),
            "model.layers.0.mlp.up_proj.weight": rng.normal(size=(f, d)),
            "model.layers.0.mlp.down_proj.weight": rng.normal(size=(d, f))}
    write_safetensors(root / "trunc" / "model.safetensors", good)
    raw = (root / "trunc" / "model.safetensors").read_bytes()
    (root / "trunc" / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    (root / "trunchdr" / "model.safetensors").write_bytes(b"\x01\x02\x03\x04\x05")
    (root / "hugehdr" / "model.safetensors").write_bytes((2**63).to_bytes(8, "little") + b'{"x": 1}' + b"\xff" * 64)
    header = json.dumps({"t": {"dtype": "F32", "shape": [4], "data_offsets": [-16, 0]}}).encode()
    (root / "negoff" / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 16)
    bad_shapes = {**good, "model.layers.0.self_attn.q_proj.weight": rng.normal(size=(d, d + 3)),
                  "model.layers.0.mlp.down_proj.weight": rng.normal(size=(f, d))}
    write_safetensors(root / "shapes" / "model.safetensors", bad_shapes)
    for case, name, rc in (("A40", "missing", 2), ("A41", "empty", 2), ("A42", "badjson", 2), ("A43", "listjson", 2),
                           ("A44", "strjson", 2), ("A45", "zeroheads", 2), ("A46", "qwen", 2)):
        a.expect(case, a.bench("run", *FAST, "-w", "generate", "-d", "fp32", "--model", str(root / name)), rc)
    for case, name in (("A47", "nosafet"), ("A48", "trunc"), ("A49", "trunchdr"), ("A50", "hugehdr"),
                       ("A51", "negoff"), ("A52", "shapes")):
        o = a.bench("run", *FAST, "-w", "generate", "-d", "fp32", "--timing", "latency", "--model", str(root / name),
                    "-o", "r-model")
        a.expect(case, o, 0, "error")


def outputs(a: Audit) -> None:
    ro = a.mount("rofs", "ro,size=1m")
    (a.s / "afile").write_text("x")
    run = ("run", *FAST, "-w", "matmul", "-d", "fp32")
    if ro:
        a.expect("A53", a.bench(*run, "-o", str(ro)), 2, "cannot write")
    else:
        a.record("A53", "needs root (read-only tmpfs)", None)
    a.expect("A54", a.bench(*run, "-o", "afile"), 2)
    if ro:
        a.expect("A55", a.bench(*run, "-o", str(ro / "sub")), 2)
    else:
        a.record("A55", "needs root", None)
    # The disk fills mid-run for certain: a tmpfs with room for the whole run is filled to the
    # last page once two rows are on it. A fixed free space was tried first: rows grow with
    # the machine's speed (samples per row), and 150 KB held all 18 rows while 40 KB held none.
    tiny = a.mount("tinyfs", "size=16m")
    if tiny:
        (tiny / "earlier.parquet").write_bytes(b"x" * 60_000)
        before = digest(tiny / "earlier.parquet")
        started = time.monotonic()
        p = a.spawn("run", *FAST, "-w", "matmul,sdpa,stream", "-d", "fp32,bf16", "--timing", "latency", "-o", str(tiny),
                    "--run-id", "full2")
        full = tiny / "full2.parquet"
        two = wait_for(lambda: rows_in(full) >= 2 or p.poll() is not None, 300) and p.poll() is None
        if two:
            fill_up(tiny / "fill")
        out, err = p.communicate(timeout=600)
        o = Outcome(p.returncode, out, err, time.monotonic() - started)
        kept = rows_in(full)
        said = re.search(r"(\d+) finished rows are saved", err)
        if not two:
            a.record("A56", f"the run ended before two rows were on disk ({o.summary()}): disk not filled", None)
        else:
            a.expect("A56", o, 2, "No space left", note=f"{kept} rows readable;",
                     extra=kept >= 2 and said is not None and int(said.group(1)) == kept
                     and digest(tiny / "earlier.parquet") == before and not list(tiny.glob(".*.tmp")))
    else:
        a.record("A56", "needs root (tiny tmpfs)", None)
    results = a.s / "results"
    if ro:
        o = a.bench("report", str(results), "-o", str(ro))
        a.expect("A57", o, 2, extra=o.seconds < a.startup_s() + 15, note=f"{o.seconds:.0f} s;")
    else:
        a.record("A57", "needs root", None)
    a.expect("A58", a.bench("report", str(results), "-o", "afile"), 2)
    if ro:
        a.expect("A59", a.bench("compare", str(results), str(results), "--markdown", str(ro / "x.md")), 2)
    else:
        a.record("A59", "needs root", None)
    a.expect("A60", a.bench("export", "--pytest-benchmark", "afile/x.json", str(results)), 2)
    if ro:
        a.expect("A61", a.bench("baseline", str(results / "real.parquet"), "--dir", str(ro)), 2)
    else:
        a.record("A61", "needs root", None)


def gate_and_ids(a: Audit) -> None:
    o1 = a.bench("run", *FAST, "-w", "matmul", "-d", "fp32", "--run-id", "myrun", "-o", "r-id")
    before = digest(a.s / "r-id" / "myrun.parquet")
    o2 = a.bench("run", *FAST, "-w", "stream", "-d", "fp32", "--run-id", "myrun", "-o", "r-id")
    a.expect("A62", o2, 2, "already exists", extra=o1.rc == 0 and digest(a.s / "r-id" / "myrun.parquet") == before)
    o = a.bench("run", *FAST, "-w", "stream", "-d", "fp32", "--timing", "latency", "--run-id", "sub/x", "-o", "r-id")
    a.expect("A63", o, 0, extra=(a.s / "r-id" / "sub" / "x.parquet").exists())
    o = a.bench("run", *FAST, "-w", "stream", "-d", "fp32", "-o", "r-id4", "--run-id", "../escaped")
    a.expect("A64", o, 2, extra=not (a.s / "escaped.parquet").exists())
    real = a.s / "results" / "real.parquet"
    a.expect("A65", a.bench("compare", str(real), str(real), "--threshold", "-5%"), 2)
    a.expect("A66", a.bench("compare", str(real), str(real), "--alpha", "2"), 2)
    a.expect("A67", a.bench("compare", str(real), str(real), "--alpha", "-1"), 2)
    base, slow = slow_pair(a)
    o = a.bench("compare", str(base), str(slow), "--alpha", "nan")
    a.expect("A68", o, 2, "between 0 and 1", note=f"(default alpha: exit {a.bench('compare', str(base), str(slow)).rc})")
    a.expect("A69", a.bench("baseline", "--runs", "0", "-f", "torch"), 2)  # the options were removed: one line
    for case, port in (("A70", "70000"), ("A71", "-1")):
        o = a.bench("report", str(a.s / "results"), "-o", "r-port", "--serve", "--port", port, "--serve-seconds", "1")
        a.expect(case, o, 2, "65535", extra=o.seconds < a.startup_s() + 15, note=f"{o.seconds:.0f} s;")


def slow_pair(a: Audit) -> tuple[Path, Path]:
    """The audit's md/slow_*: the real file, and a copy with every sample ×1.5."""
    base = a.s / "results" / "real.parquet"
    table = pq.read_table(base)
    changes = {}
    for prefix in ("", "latency_", "queued_"):
        samples = table.column(f"{prefix}samples_s").to_pylist()
        changes[f"{prefix}samples_s"] = pa.array([[x * 1.5 for x in s] if s else s for s in samples],
                                                 pa.list_(pa.float64()))
        changes[f"{prefix}median_s"] = pa.array([m * 1.5 if m is not None else None
                                                 for m in table.column(f"{prefix}median_s").to_pylist()], pa.float64())
    (a.s / "md").mkdir(exist_ok=True)
    return base, edit(base, a.s / "md" / "slow_cand.parquet", changes)


# -- 2. bad results files -------------------------------------------------------------------
def bad_files(a: Audit) -> None:
    real = a.s / "results" / "real.parquet"
    bad = a.s / "bad"
    bad.mkdir(exist_ok=True)
    n = pq.read_metadata(real).num_rows
    raw = real.read_bytes()
    (bad / "empty.parquet").write_bytes(b"")
    (bad / "truncated.parquet").write_bytes(raw[: len(raw) // 2])
    (bad / "truncated_tail.parquet").write_bytes(raw[:-100])
    pq.write_table(pa.table({"a": [1], "b": [2]}), bad / "foreign.parquet")
    pq.write_table(pa.table({"a": [1]}).replace_schema_metadata(SCHEMA.metadata), bad / "foreign_claims.parquet")
    edit(real, bad / "badmeta.parquet", {}, {b"metalbench_schema_version": b"one"})
    edit(real, bad / "version2.parquet", {}, {b"metalbench_schema_version": b"2"})
    edit(real, bad / "wrongtypes.parquet", {"status": [7] * n, "params": [42] * n, "samples_s": ["1,2"] * n,
                                            "median_s": ["0.1"] * n})
    edit(real, bad / "median_str.parquet", {"median_s": ["0.00016s"] * n})
    edit(real, bad / "params_list.parquet", {"params": ["[1, 2, 3]"] * n})
    edit(real, bad / "params_badjson.parquet", {"params": ["{not json"] * n})
    edit(real, bad / "correct_str.parquet", {"correct": ["false"] * n})
    medians = [float("nan"), float("inf"), -1.0, 0.0] * n
    edit(real, bad / "naninf.parquet", {"median_s": medians[:n]})
    edit(real, bad / "ok_null_medians.parquet", {"median_s": pa.nulls(n, pa.float64()),
                                                 "samples_s": pa.nulls(n, pa.list_(pa.float64())),
                                                 "status": ["ok"] * n})
    pq.write_table(pq.read_table(real).slice(0, 0), bad / "zero_rows.parquet")
    edit(real, bad / "markup_framework.parquet", {"framework": ["[/]"] * n})
    edit(real, bad / "markup_params.parquet", {"params": ['{"k":1,"m":1,"n":"[/]"}'] * n})
    edit(real, bad / "markup_reason.parquet", {"status": ["error"] * n, "reason": ["boom [/] [bold red]FAKE[/]"] * n})
    edit(real, bad / "mathtext_machine.parquet", {"machine": ["evil $\\undefinedcommand{$ box"] * n})
    edit(real, bad / "mathtext_framework.parquet", {"framework": ["$\\frac{$"] * n})
    protected = {p: digest(p) for p in (a.s / "results").glob("*.parquet")}

    def four(name: str, rc: int | set[int], report: bool = False, contains: str = "") -> list[Outcome]:
        f = str(bad / name)
        outs = [a.bench("show", f), a.bench("compare", str(real), f),
                a.bench("baseline", f, "--dir", str(a.s / f"bl-{name}")),
                a.bench("export", "--pytest-benchmark", str(a.s / f"exp-{name}.json"), f)]
        if report:
            outs.append(a.bench("report", f, "-o", str(a.s / f"rep-{name}")))
        return outs

    def judge(case: str, outs: list[Outcome], rcs: set[int], contains: str = "") -> None:
        broken = [o.contract() for o in outs if o.contract()]
        codes = [o.rc for o in outs]
        good = not broken and all(c in rcs for c in codes) and all(contains in o.text for o in outs if o.rc == 2)
        first_err = next((" ".join(o.err.split())[:90] for o in outs if o.err.strip()), "")
        a.record(case, f"exits {codes}{'; ' + ', '.join(broken) if broken else ''}; {first_err}", good)

    judge("B1", four("empty.parquet", 2), {2})
    judge("B2", four("truncated.parquet", 2), {2})
    judge("B3", four("truncated_tail.parquet", 2), {2})
    judge("B4", four("foreign.parquet", 2), {2}, "not a metalbench")
    judge("B5", four("foreign_claims.parquet", 2), {2}, "missing columns")
    judge("B6", four("badmeta.parquet", 2, report=True), {2}, "schema version")
    judge("B7", four("version2.parquet", 2), {2}, "schema version 2")
    judge("B8", four("wrongtypes.parquet", 2, report=True), {2}, "column")
    f = str(bad / "median_str.parquet")
    judge("B9", [a.bench("report", f, "-o", "rep-ms"), a.bench("baseline", f, "--dir", "bl-ms")], {2}, "median_s")
    f = str(bad / "params_list.parquet")
    judge("B10", [a.bench("show", f), a.bench("export", "--pytest-benchmark", "x.json", f),
                  a.bench("report", f, "-o", "rep-pl")], {2}, "params")
    judge("B11", [a.bench("export", "--pytest-benchmark", "x.json", str(bad / "params_badjson.parquet"))], {2}, "params")
    f = str(bad / "correct_str.parquet")
    judge("B12", [a.bench("show", f), a.bench("compare", str(real), f)], {2}, "correct")
    f = str(bad / "naninf.parquet")
    show = a.bench("show", f)
    outs = [show, a.bench("compare", str(real), f), a.bench("report", f, "-o", "rep-nan")]
    broken = [o.contract() for o in outs if o.contract()]
    ranked_bad = "inf×" in show.out or "-0.00×" in show.out
    a.record("B13", f"exits {[o.rc for o in outs]}; show ranks an impossible time: {ranked_bad}",
             not broken and not ranked_bad and show.rc == 0)
    f = str(bad / "ok_null_medians.parquet")
    judge("B14", [a.bench("show", f), a.bench("compare", str(real), f), a.bench("report", f, "-o", "rep-null")], {0, 2})
    judge("B15", four("zero_rows.parquet", 2, report=True), {0, 2})
    for case, name, args in (("B16", "markup_framework.parquet", []), ("B17", "markup_params.parquet", []),
                             ("B18", "markup_reason.parquet", ["--all"])):
        o = a.bench("show", *args, str(bad / name))
        a.expect(case, o, 0, "[/]")
    nomlx = a.s / "nomlx"
    nomlx.mkdir(exist_ok=True)
    (nomlx / "sitecustomize.py").write_text("import sys\nsys.modules['mlx'] = None\nsys.modules['mlx.core'] = None\n")
    wrapper = a.s / "python-nomlx"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{nomlx}:$PYTHONPATH" exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    a.bench("run", "-f", "mlx", "-w", "stream", "-d", "fp32", "--python", f"mlx={wrapper}", "-o", "r-nomlx",
            "--run-id", "n")
    shown = a.bench("show", "--all", str(a.s / "r-nomlx"))
    listed = a.bench("list")
    a.expect("B19", shown, 0, "metalbench[mlx]", extra="pip install 'metalbench[mlx]'" in listed.out)
    for case, name in (("B20", "mathtext_machine.parquet"), ("B21", "mathtext_framework.parquet")):
        a.expect(case, a.bench("report", str(bad / name), "-o", str(a.s / f"rep-{case}")), 0)
    folder = a.s / "folder1"
    folder.mkdir(exist_ok=True)
    shutil.copy(real, folder / "good.parquet")
    shutil.copy(bad / "params_list.parquet", folder / "odd.parquet")
    rep, show = a.bench("report", str(folder), "-o", "rep-folder"), a.bench("show", str(folder))
    judge("B22", [rep, show], {0}, "")
    loop = a.s / "loop"
    loop.mkdir(exist_ok=True)
    for link, target in (("a.parquet", "b.parquet"), ("b.parquet", "a.parquet"), ("self.parquet", "self.parquet"),
                         ("sub", "."), ("abs", str(loop))):
        if not (loop / link).is_symlink():
            (loop / link).symlink_to(target)
    judge("B23", [a.bench("show", str(loop), timeout=120), a.bench("report", str(loop), "-o", "rep-loop", timeout=120)],
          {0, 2})
    many = a.s / "many"
    many.mkdir(exist_ok=True)
    one = pq.read_table(real).slice(0, 1)
    for i in range(2000):
        pq.write_table(one.set_column(one.schema.get_field_index("run_id"), "run_id", pa.array([f"m{i}"])),
                       many / f"m{i}.parquet")
    for i in range(3000):
        (many / f"other{i}.txt").write_text("x")
    outs = [a.bench("show", str(many)), a.bench("report", str(many), "-o", "rep-many")]
    judge("B24", outs, {0})
    a.rows[-1] = (a.rows[-1][0], a.rows[-1][1] + f" ({outs[0].seconds:.0f} s, {outs[1].seconds:.0f} s)", a.rows[-1][2])
    o1 = a.bench("report", str(a.s / "results"), "-o", "reports")
    inputs = {p.name: digest(p) for p in (a.s / "reports" / "data").glob("*.parquet")}
    o2 = a.bench("report", "reports/data")
    after = {p.name: digest(p) for p in (a.s / "reports" / "data").glob("*.parquet")}
    a.expect("B25", o2, 0, extra=o1.rc == 0 and bool(inputs) and inputs == after)
    changed = [p.name for p, h in protected.items() if digest(p) != h]
    if changed:
        a.record("B*", f"results files changed by the reads: {changed}", False)


# -- 3. faults during a run -------------------------------------------------------------------
def faults(a: Audit) -> None:
    long_run = ("run", "-f", "torch", "-w", "matmul,sdpa,stream,qmatmul", "-d", "fp32,bf16,fp16", "--timing", "latency",
                "--budget", "0.3")
    p = a.spawn(*long_run, "-o", "sigint", "--run-id", "s1")
    wait_for(lambda: rows_in(a.s / "sigint" / "s1.parquet") >= 3, 120)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    n = rows_in(a.s / "sigint" / "s1.parquet")
    a.record("C1", f"exit {p.returncode}, {n} rows readable; {' '.join(out.split()[-8:])}",
             p.returncode == 130 and n >= 3 and "Traceback" not in err)
    p = a.spawn("run", "-f", "torch", "-w", "matmul", "-o", "r1p")
    time.sleep(4)  # as the audit's `timeout -s INT 4`: the torch worker is still starting
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    files = list((a.s / "r1p").glob("*.parquet"))
    # D15 was naming a file never written: "nothing was written", or (Ctrl-C while bench still
    # loads, seconds on a busy VM) one "interrupted" line, both with no file named
    said = " ".join((out + err).split())
    # the run's first line names where its rows will go, before any work; D15 was the
    # interrupt's own message naming a file that was never written
    after = said[said.find("interrupted"):] if "interrupted" in said else said
    named_missing = [w for w in after.split() if w.endswith(".parquet") and not (a.s / w).exists()]
    a.record("C2", f"exit {p.returncode}; {said[-80:]}; files {len(files)}",
             p.returncode == 130 and "interrupted" in said and not named_missing and "Traceback" not in err)
    p = a.spawn(*long_run, "-o", "sigterm", "--run-id", "t1")
    wait_for(lambda: rows_in(a.s / "sigterm" / "t1.parquet") >= 3, 120)
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=60)
    n = rows_in(a.s / "sigterm" / "t1.parquet")
    a.record("C3", f"exit {p.returncode}, {n} rows readable", p.returncode in (-15, 143) and n >= 3)
    p = a.spawn("run", "-f", "torch", "-w", "matmul,stream", "-d", "fp32,bf16", "--budget", "2", "--precision", "0.0001",
                "-o", "sigkill", "--run-id", "k1")
    wait_for(lambda: rows_in(a.s / "sigkill" / "k1.parquet") >= 2, 120)
    os.killpg(p.pid, signal.SIGKILL)
    p.communicate(timeout=60)
    n = rows_in(a.s / "sigkill" / "k1.parquet")
    a.record("C4", f"runner killed: {n} rows readable", n >= 2)
    p = a.spawn("run", "-f", "torch", "-w", "matmul,stream", "-d", "fp32,bf16", "--budget", "0.5", "--timing",
                "latency", "-o", "wkill", "--run-id", "w1")
    wait_for(lambda: rows_in(a.s / "wkill" / "w1.parquet") >= 2, 120)
    for pid in workers_of(p.pid):
        os.kill(pid, signal.SIGKILL)
    out, err = p.communicate(timeout=300)
    df = read_results(a.s / "wkill" / "w1.parquet")
    a.record("C5", f"exit {p.returncode}; statuses {df['status'].value_counts().to_dict()}",
             p.returncode == 0 and (df["status"] == "error").sum() <= 1 and len(df) >= 5 and "Traceback" not in err)
    # The worker is stopped mid-case: after the first row, by the worker that wrote it (torch
    # keeps one worker per process for every dtype). With the 2026-11 `--case-timeout 4`, a
    # case of today's protocol (queue sweep, energy window) on a busy VM timed out by itself,
    # the runner started a fresh worker, and the STOP landed on that worker while it was still
    # starting: C7's case, where giving torch up for the run is the promised outcome.
    p = a.spawn("run", "-f", "torch", "-w", "matmul,stream", "-d", "fp32,bf16", "--budget", "1", "--precision",
                "0.0001", "--case-timeout", "30", "-o", "wstop", "--run-id", "w2")
    wait_for(lambda: rows_in(a.s / "wstop" / "w2.parquet") >= 1, 300)
    first_ok = rows_in(a.s / "wstop" / "w2.parquet") >= 1 and read_results(a.s / "wstop" / "w2.parquet")["status"].iloc[0] == "ok"
    stopped = workers_of(p.pid)
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    out, err = p.communicate(timeout=900)
    df = read_results(a.s / "wstop" / "w2.parquet")
    timeouts = df[df["status"] == "timeout"]
    if not first_ok:
        a.record("C6", f"the first case did not end ok within 30 s: no worker was mid-case to stop; statuses "
                       f"{df['status'].value_counts().to_dict()}", None)
    else:
        a.record("C6", f"exit {p.returncode}; statuses {df['status'].value_counts().to_dict()}; "
                       f"{'; '.join(map(str, timeouts['reason']))[:90]}",
                 p.returncode == 0 and len(timeouts) == 1 and "while running" in timeouts["reason"].iloc[0]
                 and (df["status"] == "ok").sum() == len(df) - 1)
    started = time.monotonic()
    p = a.spawn("run", "-f", "torch", "-w", "stream,matmul", "-d", "fp32", "--case-timeout", "5", "-o", "wstart",
                "--run-id", "w3")
    wait_for(lambda: bool(workers_of(p.pid)), 30)
    for pid in workers_of(p.pid):
        os.kill(pid, signal.SIGSTOP)
    out, err = p.communicate(timeout=400)
    wall = time.monotonic() - started
    df = read_results(a.s / "wstart" / "w3.parquet")
    a.record("C7", f"exit {p.returncode}; statuses {df['status'].value_counts().to_dict()}; wall {wall:.0f} s",
             p.returncode == 0 and wall < 120 + 2 * a.startup_s() and (df["status"] == "timeout").any())
    a.record("C8", "the A32 case is refused before anything is allocated (no OOM kill to observe)", True)
    procs = [a.spawn("run", "-f", "torch", "-w", w, "-d", "fp32", "--budget", "0.3", "--timing", "latency", "-o", "conc")
             for w in ("matmul", "stream")]
    codes = [q.wait(timeout=300) for q in procs]
    files = sorted((a.s / "conc").glob("*.parquet"))
    a.record("C9", f"exits {codes}; files {[f.name for f in files]}", codes == [0, 0] and len(files) == 2)
    if a.root:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        procs = [subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", *BENCH, "run",
                                   "-f", "torch", "-w", w, "-d", "fp32,bf16", "--timing", "latency", "--budget", "0.3",
                                   "-o", "conc2"], cwd=a.s, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for w in ("matmul", "stream")]
        codes = [q.wait(timeout=300) for q in procs]
        files = sorted((a.s / "conc2").glob("*.parquet"))
        total = sum(rows_in(f) for f in files)
        per_process = {f.name: rows_in(f) // max(1, len(set(read_results(f)["process"]))) for f in files}
        a.record("C10", f"exits {codes}; files {[f.name for f in files]}; {total} rows; rows per process "
                        f"{sorted(per_process.values())} (4 matmul + 2 stream expected)",
                 codes == [0, 0] and len(files) == 2 and sorted(per_process.values()) == [2, 4])
    else:
        a.record("C10", "needs root (unshare --pid)", None)
    noisy = a.s / "noisy"
    noisy.mkdir(exist_ok=True)
    (noisy / "sitecustomize.py").write_text(
        "import builtins, os, sys\n_imp = builtins.__import__\n"
        "def hook(name, *a, **k):\n    m = _imp(name, *a, **k)\n"
        "    if name == 'torch' and not getattr(builtins, '_noisy', False):\n        builtins._noisy = True\n"
        "        print('stray print'); os.write(1, b'stray write\\n'); sys.__stdout__.write('stray dunder\\n')\n"
        "        sys.__stdout__.flush()\n    return m\nbuiltins.__import__ = hook\n")
    o = a.bench("run", *FAST, "-w", "stream", "-d", "fp32", "--timing", "latency", "-o", "r-noisy", "--run-id", "n",
                env={"PYTHONPATH": f"{noisy}:{REPO}"})
    ok = o.rc == 0 and (read_results(a.s / "r-noisy" / "n.parquet")["status"] == "ok").all()
    a.expect("C11", o, 0, extra=ok)


# -- 4. security, 5. gate Markdown ------------------------------------------------------------
def security(a: Audit) -> None:
    real = a.s / "results" / "real.parquet"
    n = pq.read_metadata(real).num_rows
    xss = a.s / "xss"
    xss.mkdir(exist_ok=True)
    payload = '<img src=x onerror="document.body.setAttribute(\'data-xss\',1)">'
    columns = ("reason", "framework_version", "device_name", "host", "chip", "os", "suite", "suite_version", "run_id",
               "machine", "notes", "implementation", "math_mode")
    table = pq.read_table(real)
    changes = {c: [payload] * n for c in columns if c in table.column_names}
    changes["versions"] = [json.dumps({payload: payload})] * n
    changes["metrics"] = [json.dumps({payload: 1})] * n
    changes["params"] = [json.dumps({"x": payload})] * n
    edit(real, xss / "xss.parquet", changes)
    o = a.bench("report", str(xss / "xss.parquet"), "-o", "rep-xss")
    html = (a.s / "rep-xss" / "index.html").read_text() if o.rc == 0 else ""
    dom = ""
    if shutil.which("chromium") and html:
        dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                              f"file://{a.s / 'rep-xss' / 'index.html'}"], capture_output=True, text=True,
                             timeout=120).stdout
    a.record("S1", f"exit {o.rc}; raw <img: {html.count('<img')}; <script: {html.count('<script')}; "
                   f"payload ran in chromium: {'data-xss' in dom and 'data-xss=' in dom}",
             o.rc == 0 and html.count("<img") == 0 and 'data-xss="1"' not in dom)
    p = a.spawn("report", str(a.s / "results"), "-o", "rep-serve", "--serve", "--port", "0", "--serve-seconds", "60")
    url = ""
    end = time.monotonic() + 60
    while time.monotonic() < end and not url:
        line = p.stdout.readline()
        if m := re.search(r"http://([\d.]+):(\d+)/", line):
            url = m.group(0)
    host, port = (url.split("/")[2].split(":") if url else ("", "0"))
    a.record("S2", f"serving at {url}", host == "127.0.0.1")
    (a.s / "rep-serve" / "etclink").symlink_to("/etc")

    def get(path: str, method: str = "GET", hostname: str | None = None) -> int:
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
        c.putrequest(method, path, skip_host=True)
        c.putheader("Host", hostname or f"127.0.0.1:{port}")
        c.endheaders()
        status = c.getresponse().status
        c.close()
        return status

    traversal = ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                 "/..%2f..%2fetc%2fpasswd", "//etc/passwd", "/data/..%2f..%2f..%2fetc%2fpasswd"]
    codes = [get(t) for t in traversal]
    a.record("S3", f"statuses {codes}", all(c == 404 for c in codes))
    nul = get("/%00")
    a.record("S4", f"status {nul}", nul == 404)
    foreign = get("/index.html", hostname=f"evil.example:{port}")
    a.record("S5", f"foreign Host: {foreign}; own Host: {get('/index.html')}", foreign == 403)
    a.record("S6", f"/etclink/hostname: {get('/etclink/hostname')} (bench creates no symlinks; note)", True)
    writes = [get("/", "POST"), get("/x", "PUT")]
    a.record("S7", f"statuses {writes}", all(c == 501 for c in writes))
    os.killpg(p.pid, signal.SIGINT)
    _, serve_err = p.communicate(timeout=30)
    if "Traceback" in serve_err:
        a.record("S4b", "server printed a traceback: " + " ".join(serve_err.split())[-200:], False)
    pattern = r"(\bpickle|(?<![\w.])eval\(|(?<![\w.])exec\(|shell=True|yaml\.load|torch\.load|np\.load|os\.system|literal_eval)"
    hits = []
    for folder in ("bench", "workloads", "scripts"):
        for f in (REPO / folder).rglob("*.py"):
            if f.name == "reliability_audit.py" or f.name.startswith("audit_"):  # the pattern itself
                continue
            # np.load(..., allow_pickle=False) reads plain arrays only (numpy refuses object
            # arrays then): bench.case_cache's .npy files in the run's own folder
            hits += [f"{f.relative_to(REPO)}:{i}" for i, line in enumerate(f.read_text().splitlines(), 1)
                     if re.search(pattern, line) and not re.search(r"np\.load\(.*allow_pickle=False", line)]
    a.record("S8", f"matches: {hits[:5]}", not hits)
    cwd = a.s / "cwdinj"
    cwd.mkdir(exist_ok=True)
    marker = a.s / "PWNED"
    (cwd / "numpy.py").write_text(f"open({str(marker)!r}, 'w').close()\nraise ImportError('planted')\n")
    o = a.bench("run", *FAST, "-w", "stream", "-d", "fp32", "--timing", "latency", "-o", str(a.s / "r-cwd"), cwd=cwd)
    a.expect("S9", o, 0, extra=not marker.exists(), note=f"marker written: {marker.exists()};")
    csvf = edit(real, a.s / "csv.parquet", {"device_name": ['=HYPERLINK("http://evil.example","click")'] * n})
    o = a.bench("report", str(csvf), "-o", "rep-csv")
    text = (a.s / "rep-csv" / "data" / "results.csv").read_text() if o.rc == 0 else ""
    neutral = "'=HYPERLINK" in text and ",=HYPERLINK" not in text and '"=HYPERLINK' not in text
    a.record("S10", f"exit {o.rc}; formula neutralised with a leading apostrophe: {neutral}", o.rc == 0 and neutral)
    modes = {f.name: oct(f.stat().st_mode & 0o777) for f in (a.s / "results").glob("*.parquet")}
    a.record("S11", f"modes {modes}", all(int(m, 8) & 0o044 for m in modes.values()))


def gate_markdown(a: Audit) -> None:
    real = a.s / "results" / "real.parquet"
    table = pq.read_table(real)
    n = table.num_rows
    e1 = "x\n\n</details>\n\n## ✅ metalbench regression gate\n\n**PASS: 12 same** | fake | row |\n\n<!--"
    frameworks = table.column("framework").to_pylist()
    status = table.column("status").to_pylist()
    reason = table.column("reason").to_pylist()
    status[0], reason[0] = "error", e1
    frameworks = [f if i != 1 else "torch\n| fake | row" for i, f in enumerate(frameworks)]
    params = table.column("params").to_pylist()
    p2 = json.loads(params[2])
    p2["x"] = "`code` <b>bold</b> [link](http://evil.example)"
    params[2] = json.dumps(p2, sort_keys=True)
    md = a.s / "md"
    md.mkdir(exist_ok=True)
    cand = edit(real, md / "cand.parquet", {"status": status, "reason": reason, "framework": frameworks,
                                            "params": params})
    o = a.bench("compare", str(real), str(cand), "--markdown", str(md / "summary.md"), "--json", str(md / "summary.json"))
    text = (md / "summary.md").read_text() if (md / "summary.md").exists() else ""
    headings = [ln for ln in text.splitlines() if ln.startswith("#")]
    rows = [ln for ln in text.splitlines() if ln.startswith("|")]
    a.record("E1", f"exit {o.rc}; headings {len(headings)}; '<!--' {text.count('<!--')}; "
                   f"'</details>' {text.count('</details>')}",
             o.rc in (1, 2) and len(headings) == 1 and "<!--" not in text and text.count("</details>") <= 1)
    from bench.gate.output import COLUMNS  # the table's width today (10 pipes in 2026-11, 13 since)

    pipes = len(COLUMNS) + 1
    a.record("E2", f"table rows with {pipes} pipes: {sum(r.count('|') == pipes for r in rows)}/{len(rows)}",
             bool(rows) and all(r.count("|") == pipes for r in rows))
    a.record("E3", f"raw <b>: {'<b>' in text}; raw link: {'](http' in text}; raw code: {'`code`' in text}",
             "<b>" not in text and "](http" not in text and "`code`" not in text)
    try:
        doc = json.loads((md / "summary.json").read_text())
        # the now-failing case fails the gate; with a one-run baseline the other cases cannot be judged (exit 2)
        good = doc["exit_code"] == o.rc in (1, 2) and doc["headline"].startswith(("FAIL", "CANNOT JUDGE")) \
            and "now failing" in doc["headline"]
        a.record("E4", f"valid JSON, exit_code {doc['exit_code']}, headline {doc['headline'][:40]}", good)
    except (OSError, ValueError, KeyError) as exc:
        a.record("E4", f"JSON unreadable: {exc}", False)


SECTIONS = {"A": bad_input, "B": bad_files, "C": faults, "S": security, "E": gate_markdown}
