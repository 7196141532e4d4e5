"""`bnexp report`: one self-contained page of a study, checked in a real browser (headless
Chromium: it renders, every figure loads, no network request, the table's numbers are
compare's), and as Markdown; the commands it gives train the same runs again."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bnexp import runs
from tests.helpers import drawn_picture

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("diagnosed_study")]
EXE = str(Path(sys.executable).with_name("bnexp"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium: `bash scripts/bootstrap.sh test` installs Debian's "
    "package (apt-get install chromium); where it cannot, the browser checks are skipped")


def bnexp(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


@pytest.fixture(scope="module")
def page(diagnosed_study, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "study.html"
    result = bnexp("report", diagnosed_study, "--out", out, "--baseline",
                   "model.bn.placement=none")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{out}\n"
    return out


def browse(page: Path, folder: Path, *flags: str) -> tuple[str, list[str]]:
    """(the DOM after load, the URLs the page itself asked the network for) from headless
    Chromium; Chromium's own background requests are not the page's (their network
    isolation key is not file://)."""
    netlog = folder / f"net-{page.stem}.json"
    dom = subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update",
         f"--log-net-log={netlog}", "--virtual-time-budget=5000", *flags,
         f"file://{page}"], capture_output=True, text=True, timeout=120).stdout
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    asked = [e["params"]["url"] for e in log["events"] if e["type"] == start
             and "file://" in e["params"].get("network_isolation_key", "")]
    return dom, asked


@needs_chromium
def test_the_page_renders_loads_every_figure_asks_no_network_and_shows_compares_numbers(
        page, diagnosed_study, tmp_path):
    dom, asked = browse(page, tmp_path, "--dump-dom")
    assert asked == []
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert loaded and loaded[1] == loaded[2] and int(loaded[2]) >= 2, "figures did not load"
    expected = json.loads(bnexp("compare", diagnosed_study, "--baseline",
                                "model.bn.placement=none", "--format", "json").stdout)
    comparison = dom.split("<h2>Comparison</h2>")[1].split("<h2>")[0]
    header = re.findall(r"<th>([^<]*)</th>", comparison)
    rows = re.findall(r"<tr>(.*?)</tr>", comparison.split("<tbody>")[1])
    assert len(rows) == len(expected) and {"mean", "ci95_low", "p_holm"} <= set(header)
    for row, want in zip(rows, expected, strict=True):
        cells = dict(zip(header, re.findall(r"<td[^>]*>(.*?)</td>", row), strict=True))
        exact = dict(zip(header, [m[1] for m in re.findall(
            r'<td( class="num" data-value="([^"]*)")?', row)], strict=True))
        for column, value in want.items():
            if column not in header:  # said in the caption, or a status count of zeros
                assert column in ("metric", "at", "selected_by") or value == 0, column
            elif isinstance(value, int | float) and not isinstance(value, bool):
                # equal to the 10 digits compare's JSON keeps
                assert float(exact[column]) == pytest.approx(value, rel=1e-9, abs=1e-9)
            else:
                assert cells[column] == ("" if value is None else str(value)), column
    for heading in ("Figures", "Doctor's findings", "Settings", "Runs", "Provenance",
                    "Reproduce"):
        assert f"<h2>{heading}</h2>" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", "--window-size=1000,2400", f"--screenshot={shot}",
                    f"file://{page}"], capture_output=True, timeout=120, check=True)
    picture = drawn_picture(shot)
    assert picture.std() > 0.05 and (picture < 0.5).mean() > 0.01  # text and figures, not blank


@needs_chromium
def test_the_browser_check_sees_a_page_that_asks_the_network(tmp_path):
    """The check above can fail: a page with an image from a server is caught."""
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><img src="http://127.0.0.1:9/x.png">')
    _, asked = browse(control, tmp_path)
    assert asked == ["http://127.0.0.1:9/x.png"]


def test_the_page_is_self_contained_and_names_how_to_reproduce(page, diagnosed_study):
    text = page.read_text()
    assert not re.search(r'(src|href)="(?!data:)', text)  # no file, no server
    assert text.count('src="data:image/png;base64,') >= 2
    summary = runs.read_summary(next(diagnosed_study.iterdir()))
    assert summary["invocation"]["config_file"].endswith("study.yaml")
    assert summary["machine"]["cpu"] and summary["machine"]["cores"] >= 1
    assert f"bnexp train {summary['invocation']['config_file']} --runs-dir" in text
    assert summary["machine"]["cpu"] in text and summary["versions"]["tensorflow"] in text
    assert "model.bn.placement" in text.split("<h2>Settings</h2>")[1]


def test_the_reproduce_command_trains_the_same_runs(page, diagnosed_study):
    """The page's first command, run again: the same config hashes, every run found
    finished (skipped), nothing new."""
    command = re.search(r"<pre><code>(bnexp train [^\n<]+)", page.read_text())[1]
    before = sorted(p.name for p in diagnosed_study.iterdir())
    result = subprocess.run(command.replace("bnexp", EXE, 1), shell=True, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("skipped, already completed") == 4
    assert sorted(p.name for p in diagnosed_study.iterdir()) == before


def test_markdown_has_its_figures_beside_it(diagnosed_study, tmp_path):
    out = tmp_path / "study.md"
    result = bnexp("report", diagnosed_study, "--out", out)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    figures = re.findall(r"!\[[^]]*\]\((study_files/[^)]+\.png)\)", text)
    assert len(figures) >= 2 and all((tmp_path / f).is_file() for f in figures)
    assert "| name |" in text or "| model.bn.placement |" in text
    assert drawn_picture(tmp_path / figures[0]).std() > 0.01


def test_bad_options_are_one_line_and_nothing_is_written_without_tensorflow(tmp_path):
    for args, needle in (([tmp_path, "--out", tmp_path / "r.pdf"], "a report is .html or .md"),
                         ([tmp_path / "none", "--out", tmp_path / "r.html"], "no such folder"),
                         ([tmp_path, "--out", tmp_path / "r.html"], "no run folder")):
        result = bnexp("report", *args)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert needle in result.stderr
    assert sorted(tmp_path.iterdir()) == []


def test_the_report_of_real_runs_imports_no_tensorflow(diagnosed_study, tmp_path):
    """The whole command, doctor's checks and the figures included, on trained runs."""
    code = ("import sys; from typer.testing import CliRunner; from bnexp.cli import app; "
            f"r = CliRunner().invoke(app, ['report', {str(diagnosed_study)!r}, '--out', "
            f"{str(tmp_path / 'r.md')!r}]); assert r.exit_code == 0, r.output; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_page_of_hostile_names_stays_one_page(tmp_path):
    """A run folder named with markup and a terminal escape: shown as text, escaped, in
    the page (markup in a name would run in the reader's browser)."""
    from tests.helpers import fake_run

    folder = fake_run(tmp_path / "runs", seed=0, test_accs=[0.5])
    folder.rename(folder.with_name("evil\x1b[31m<img src=x onerror=alert(1)>"))
    result = bnexp("report", tmp_path / "runs", "--out", tmp_path / "r.html")
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "r.html").read_text()
    assert "<img src=x" not in text and "\x1b" not in text
    assert "evil\\x1b[31m&lt;img src=x onerror=alert(1)&gt;" in text


def test_the_reports_curves_equal_plot_runs_curves(diagnosed_study):
    """series.learning (the report's figures, every metrics.csv read once) gives the same
    numbers as series.standard (plot runs')."""
    import pandas as pd

    from bnexp.analysis import compare, series

    found = compare.load(diagnosed_study)
    fast, full = series.learning(found), series.standard(found)
    pairs = [(fast.curves[m], full.curves[m]) for m in series.LEARNING]
    for a, b in [*pairs, (fast.batch_stats, full.batch_stats)]:
        assert a.keys() == b.keys() and a
        for label in a:
            pd.testing.assert_frame_equal(a[label].reset_index(drop=True),
                                          b[label].reset_index(drop=True))
