"""`dece report`: Markdown, PNG plots and one self-contained HTML page; the page renders in headless
Chromium with every embedded plot decoded (run when /usr/bin/chromium or `chromium` is installed)."""

import json
import re
import shutil
import subprocess

import pytest

from dece.cli import main
from dece.reporting import build_report

from run_fixtures import write_run, write_sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def auto_run(tmp_path):
    return write_run(tmp_path / "run", name="demo", arms={
        "clean-ce": {"loss": "ce", "bleu": 62.0, "codebleu": 51.0, "asr": 0.0, "asr_from": None},
        "poisoned-ce": {"loss": "ce", "bleu": 60.0, "codebleu": 50.0, "asr": 90.0, "asr_from": 3},
        "poisoned-dece-auto": {"loss": "dece_auto", "bleu": 59.0, "codebleu": 50.0, "asr": 0.0, "asr_from": None,
                               "alpha_base": 0.9, "triggered_at": 2},
    }, epochs=5)


def test_report_writes_markdown_plots_and_self_contained_html(tmp_path):
    run = auto_run(tmp_path)
    out = build_report(run)
    plots = out["plots"]["demo"]
    assert sorted(plots) == ["alpha", "losses", "quality"]
    for p in plots.values():
        assert p.parent == run / "report" and p.read_bytes()[:8] == PNG_MAGIC
    md = out["markdown"].read_text()
    assert "## Results (paper layout)" in md and "## Early learning" in md
    assert "| poisoned-ce | 60.00 | 50.00 | 90.00 |" in md
    assert "![demo quality](demo-quality.png)" in md
    html = out["html"].read_text()
    assert html.count('src="data:image/png;base64,') == 3
    assert not re.search(r"""(src|href)=["'](?!data:)""", html), "no external assets"
    assert "<script" not in html and "@import" not in html and "url(" not in html


def test_report_includes_the_audit_when_present(tmp_path, capsys):
    run = auto_run(tmp_path)
    (run / "audit").mkdir()
    (run / "audit" / "summary.json").write_text(
        '[{"arm": "poisoned-ce", "score": "rank", "statistic": "max", "epochs": 5, "n_rows": 100, "n_poisoned": 10,'
        ' "ap": 0.9, "at_k": [{"k": 10, "precision": 0.8, "recall": 0.8}]}]')
    assert main(["report", str(run), "--out", str(tmp_path / "rep"), "--no-plots"]) == 0
    assert "report of 1 run(s), 3 of 3 arm(s) finished" in capsys.readouterr().out
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Poisoned-row audit" in md and "| poisoned-ce | rank | max | 5 | 100 | 10 | 0.900 | 80.0 | 80.0 |" in md
    assert not list((tmp_path / "rep").glob("*.png"))
    (run / "arms" / "clean-ce" / "metrics.json").unlink()  # an arm still training
    assert main(["report", str(run), "--out", str(tmp_path / "rep"), "--no-plots"]) == 0
    assert "report of 1 run(s), 2 of 3 arm(s) finished" in capsys.readouterr().out


@pytest.mark.parametrize("text, message", [("[]", "holds no results object"), ("{", "not readable JSON")])
def test_report_names_a_damaged_metrics_file(tmp_path, capsys, text, message):
    run = auto_run(tmp_path)
    metrics = run / "arms" / "poisoned-ce" / "metrics.json"
    metrics.write_text(text)  # not counted as a finished arm, not a traceback
    assert main(["report", str(run), "--no-plots"]) == 2
    assert f"{metrics}: {message}" in capsys.readouterr().err


def test_report_of_a_sweep_and_of_a_bad_folder(tmp_path, capsys):
    cells = {f"seed={s}": {"overrides": {"seed": s}} for s in (1, 2)}
    out = build_report(write_sweep(tmp_path / "sweep", cells))
    assert sorted(out["plots"]) == ["seed=1", "seed=2"] and out["runs"] == 2
    assert "90.00 ± 0.00" in out["markdown"].read_text() and out["not_started"] == 0
    status = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    status["cells"].append({"name": "seed=3", "overrides": {"seed": 3}, "done": False})  # listed, not started
    status["cells"].append({"name": "seed=4", "overrides": {"seed": 4}, "done": True})  # done, folder deleted
    (tmp_path / "sweep" / "sweep.json").write_text(json.dumps(status))
    assert main(["report", str(tmp_path / "sweep"), "--no-plots"]) == 0
    note = ("(1 more cell(s) of the sweep not started; 1 marked done in sweep.json whose folder is gone (moved or "
            "deleted?): seed=4)")
    assert f"report of 2 run(s), 4 of 4 arm(s) finished {note}" in capsys.readouterr().out
    assert note in (tmp_path / "sweep" / "report" / "report.md").read_text()
    for damaged, message in (("{", "not readable JSON"), ('{"cells": {}}', r"expected .*, a list of the sweep's cells"),
                             ('{"cells": [{"overrides": {}}]}', r"cells\[0\] must be a table with a non-empty text 'name'"),
                             ('{"cells": ["seed=1"]}', r"cells\[0\] must be a table"),
                             ('{"cells": [{"name": "seed=1"}, {"name": "seed=1"}]}', r"cells\[1\].name 'seed=1' is listed twice"),
                             ('{"cells": [{"name": "../x"}]}', r"cells\[0\].name '../x' is not a folder name")):
        (tmp_path / "sweep" / "sweep.json").write_text(damaged)
        assert main(["report", str(tmp_path / "sweep"), "--no-plots"]) == 2
        assert re.search(f"sweep.json: {message}", capsys.readouterr().err)
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "nothing does not exist: give a run folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "neither a run folder" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("x")
    assert main(["report", str(tmp_path / "a-file")]) == 2
    err = capsys.readouterr().err
    assert "a-file is a file: give a run folder" in err and "--output-dir" not in err
    arm = tmp_path / "sweep" / "cells" / "seed=1" / "arms" / "poisoned-ce"
    assert main(["report", str(arm)]) == 2
    assert "is one arm's folder; give its run folder" in capsys.readouterr().err and not (arm / "report").exists()
    assert main(["report", str(tmp_path / "sweep" / "cells")]) == 2
    assert "holds a sweep's cells; give the sweep folder" in capsys.readouterr().err


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


PROBE = """<script>window.addEventListener("load", function () {
  var ok = 0, im = document.images;
  for (var i = 0; i < im.length; i++) { if (im[i].complete && im[i].naturalWidth > 0) ok++; }
  document.body.setAttribute("data-images", ok + "/" + im.length);
  document.body.setAttribute("data-tables", document.querySelectorAll("table").length);
});</script>"""


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (apt-get install -y chromium); "
                                                "`make test` installs it")
def test_html_renders_in_headless_chromium(tmp_path):
    out = build_report(auto_run(tmp_path))
    html = out["html"].read_text()
    n_tables = html.count("<table>")
    probe = tmp_path / "probe.html"  # the page plus a script that reports what the browser decoded
    probe.write_text(html.replace("</body>", PROBE + "</body>"))
    dom = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                          "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=60).stdout
    assert 'data-images="3/3"' in dom, dom[:500]
    assert f'data-tables="{n_tables}"' in dom
    shot = tmp_path / "shot.png"
    subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1000,800",
                    f"--screenshot={shot}", out["html"].as_uri()], capture_output=True, timeout=60, cwd=tmp_path)
    assert shot.read_bytes()[:8] == PNG_MAGIC and shot.stat().st_size > 10_000  # a page, not a blank
