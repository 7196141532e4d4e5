"""The Python API's one boundary (bnexp.api_args): every public function's arguments are
checked by their annotations before anything is read, written or imported; a wrong one
is bnexp.BadInput, one line naming the parameter, never a TypeError or AttributeError
from deep inside. What a Python user passes is taken: one string for a list, an
os.PathLike for a path, numpy scalars for numbers (in a dict config too). Nothing here
trains: a call that passes the boundary stops at a stand-in for the training, or at
TensorFlow's import."""

import inspect
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import bnexp
from bnexp import api, sweep
from bnexp.errors import MAX_MESSAGE
from tests.helpers import SYNTHETIC, fake_run

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = [name for name in api.__all__ if name != "Run"]


class Where(os.PathLike):
    """An os.PathLike that is not a pathlib.Path (as a user's own path class is)."""

    def __init__(self, path):
        self.path = str(path)

    def __fspath__(self):
        return self.path


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    for seed, placement, acc in ((0, "none", 0.7), (1, "none", 0.72), (0, "before", 0.8),
                                 (1, "before", 0.84)):
        fake_run(tmp_path / "runs", seed, [acc - 0.1, acc], model__bn__placement=placement)
    return tmp_path / "runs"


@pytest.fixture
def planned(monkeypatch):
    """The RunSpecs bnexp.train hands to the sweep, which trains nothing here."""
    seen = []

    def run_all(specs, runs_dir, reporter, **options):
        seen.extend(specs)
        return []

    monkeypatch.setattr(sweep, "run_all", run_all)
    return seen


# ---------------------------------------------------------------- the issue's cases

# (call, the message); R: a folder of runs, C: a config file, N: a runs folder that must
# never be made, F: a run folder
CASES = [
    ("bnexp.train(C, runs_dir=None)",
     "runs_dir: expected a path (a string or an os.PathLike), got None"),
    ("bnexp.train(C, runs_dir=N, jobs='2')", "jobs: expected a whole number >= 0, got '2'"),
    ("bnexp.train(C, runs_dir=N, jobs=None)", "jobs: expected a whole number >= 0, got None"),
    ("bnexp.train(C, runs_dir=N, jobs=2.5)",
     "jobs: expected a whole number >= 0, got 2.5 (float)"),
    ("bnexp.train(C, runs_dir=N, jobs=-1)", "jobs: expected a whole number >= 0, got -1 (int)"),
    ("bnexp.train(C, runs_dir=N, set=['model.bn.placement=after', 5])",
     "set[1]: expected a string, got 5 (int)"),
    ("bnexp.train(C, runs_dir=N, smoke='yes')", "smoke: expected True or False, got 'yes'"),
    ("bnexp.train(3, runs_dir=N)",
     "config: expected a path, a dict or a Config, got 3 (int)"),
    ("bnexp.load_runs(None)", "runs_dir: expected a path (a string or an os.PathLike), got None"),
    ("bnexp.load_runs(123)",
     "runs_dir: expected a path (a string or an os.PathLike), got 123 (int)"),
    ("bnexp.load_runs('')", "runs_dir: an empty path; give a file or folder ('.' for this one)"),
    ("bnexp.doctor(None)", "path: expected a path (a string or an os.PathLike), got None"),
    ("bnexp.load_run(123)", "folder: expected a path (a string or an os.PathLike), got 123 (int)"),
    ("bnexp.compare(R, metric=None)", "metric: expected a string, got None"),
    ("bnexp.compare(R, baseline=123)", "baseline: expected a string or None, got 123 (int)"),
    ("bnexp.compare(R, by=[1, 2])", "by[0]: expected a string, got 1 (int)"),
    ("bnexp.compare(R, by={'model.bn.placement'})",
     "by: expected a string or a list of strings or None, got {'model.bn.placement'} (set)"),
    ("bnexp.compare(R, metrc='test_acc')",
     "compare(): got an unexpected keyword argument 'metrc' (did you mean 'metric'?)"),
    ("bnexp.plot_features(F, channels='3')", "channels: expected a whole number >= 1, got '3'"),
    ("bnexp.plot_features(F, image=-1)", "image: expected a whole number >= 0, got -1 (int)"),
    ("bnexp.eval(F, batch_size=0)",
     "batch_size: expected a whole number >= 1 or None, got 0 (int)"),
    ("bnexp.eval(F, data=b'/tmp')",
     "data: expected a path (a string or an os.PathLike) or None, got b'/tmp' (bytes)"),
    ("bnexp.plot_activations(R, unit=1.5)",
     "unit: expected a string or a whole number, got 1.5 (float)"),
    ("bnexp.plot_sweep(R)", "plot_sweep(): missing a required argument: 'x'"),
]

PROBE = """
import json, sys
from pathlib import Path
import bnexp
R, C, N, F = (Path(p) for p in sys.argv[1:5])
said = []
for call in json.loads(sys.argv[5]):
    try:
        eval(call)
        said.append("no error")
    except bnexp.BadInput as e:
        said.append(str(e))
    except Exception as e:
        said.append(f"{type(e).__name__}: {e}")
print(json.dumps({"said": said, "heavy": [m for m in ("tensorflow", "keras") if m in sys.modules]}))
"""


def test_the_issues_cases_are_one_line_before_tensorflow_and_before_any_file(tmp_path,
                                                                              runs_dir):
    """Each bad argument of the issue (and its kin) is BadInput naming the parameter, in a
    fresh process that never imports TensorFlow (train, eval and plot_features start it
    after their checks) and makes no folder."""
    config = tmp_path / "c.yaml"
    config.write_text(SYNTHETIC)
    never = tmp_path / "never"
    folder = next(runs_dir.iterdir())
    calls = [call for call, _ in CASES]
    out = subprocess.run([sys.executable, "-c", PROBE, str(runs_dir), str(config), str(never),
                          str(folder), json.dumps(calls)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["heavy"] == []
    for (call, expected), said in zip(CASES, answer["said"], strict=True):
        assert said == expected, call
    assert not never.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "runs"]


def test_every_public_function_is_behind_the_boundary():
    """A public function without @checked (a new one) would take anything."""
    for name in FUNCTIONS:
        assert hasattr(getattr(bnexp, name), "__wrapped__"), name
        assert getattr(bnexp, name).__wrapped__.__name__ == name


# ---------------------------------------------------------------- what a user passes


def test_one_string_is_one_item_of_a_list(tmp_path, runs_dir, planned):
    """set="KEY=VALUE" and by="KEY" are one item each (they were split into characters:
    `--set 'm'`, `--by m`); so are metrics, labels and shift."""
    config = tmp_path / "c.yaml"
    config.write_text(SYNTHETIC)
    assert bnexp.train(config, set="model.bn.placement=after", runs_dir=tmp_path / "r") == []
    (spec,) = planned
    assert spec.config.model.bn.placement == "after"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = bnexp.compare(runs_dir, by="model.bn.placement")
        listed = bnexp.compare(runs_dir, by=["model.bn.placement"])
    assert one.equals(listed) and "model.bn.placement" in one.columns
    figure = bnexp.plot_curves(runs_dir, metrics="test_acc", by="model.bn.placement")
    assert [ax.get_ylabel() for ax in figure.axes if ax.get_lines()] == ["test accuracy"]
    with pytest.raises(bnexp.BadInput, match=r"--shift blur=3"):  # not '--shift b'
        bnexp.eval(next(runs_dir.iterdir()), shift="blur=3")


def test_path_likes_and_numpy_scalars_are_taken(tmp_path, runs_dir, planned):
    """An os.PathLike config and runs folder, numpy scalars and arrays in a dict config
    and as arguments: taken as the Python values they hold (they were refused)."""
    config = tmp_path / "c.yaml"
    config.write_text(SYNTHETIC)
    bnexp.train(Where(config), runs_dir=Where(tmp_path / "r"), jobs=np.int64(1),
                smoke=np.bool_(False))
    raw = {"name": np.str_("np"), "seed": np.int64(3), "data": {
        "dataset": "synthetic", "batch_size": np.int32(25), "validation_size": 200},
        "optimizer": {"learning_rate": np.float32(0.5)},
        "model": {"arch": "mlp", "hidden": np.array([32, 16])},
        "sweep": {"seeds": (np.int64(3), np.int64(4))}}
    bnexp.train(raw, runs_dir=tmp_path / "r")
    first, second, third = planned
    assert first.config.data.dataset == "synthetic"
    assert second.config.seed == 3 and type(second.config.seed) is int
    assert third.config.seed == 4 and second.config.data.batch_size == 25
    assert second.config.model.hidden == [32, 16]
    assert second.config.optimizer.learning_rate == pytest.approx(0.5)
    assert raw["seed"] == np.int64(3) and isinstance(raw["seed"], np.int64)  # not changed
    assert len(bnexp.load_runs(Where(runs_dir))) == 4
    assert bnexp.load_run(Where(next(runs_dir.iterdir()))).status == "completed"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_run = bnexp.compare(runs_dir, per_run=np.bool_(True),
                                by=np.array(["model.bn.placement"]))
    assert len(per_run) == 4


# ---------------------------------------------------------------- generated


class ReachedTensorFlow(Exception):
    """The call passed every check and would start TensorFlow now."""


def _broken_pathlike():
    class Broken(os.PathLike):
        def __fspath__(self):
            raise RuntimeError("no path")

    return Broken()


wrong = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-3, max_value=3), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.binary(max_size=6),
    st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=6)), max_size=3),
    st.tuples(st.integers(), st.text(max_size=3)),
    st.dictionaries(st.text(max_size=4), st.one_of(st.integers(), st.none()), max_size=2),
    st.sampled_from([object(), Path("."), Path("nope"), Path(""), Where("nope"),
                     _broken_pathlike(), np.int64(2), np.int64(-1), np.float64(2.5),
                     np.bool_(True), np.str_("test_acc"), np.array([1, 2]), np.array(["x"]),
                     b"runs", bytearray(b"x"), frozenset({"a"}), {"a", "b"}, 10**5000,
                     float("nan"), "\x00", "a" * 5000, "test_acc", "model.bn.placement",
                     ["model.bn.placement"], ("seed",), "best", "final", "none", "x=1",
                     st, print, Ellipsis]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_wrong_typed_arguments_are_one_line_of_bad_input_or_work(tmp_path_factory, data):
    """Any function, any of its arguments replaced by a value of any type: the call
    works (here: returns, or reaches TensorFlow's import), or raises BadInput whose every
    line is one line (a config's several mistakes: one each), never another exception."""
    base = _bases(tmp_path_factory)
    name = data.draw(st.sampled_from(FUNCTIONS), label="function")
    parameters = list(inspect.signature(getattr(api, name)).parameters)
    replaced = set(data.draw(st.lists(st.sampled_from(parameters), min_size=1,
                                      max_size=min(3, len(parameters)),
                                      unique=True), label="replaced"))
    kwargs = {p: base[name][p] for p in base[name] if p not in replaced}
    kwargs.update({p: data.draw(wrong, label=p) for p in sorted(replaced)})
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        patch.chdir(base["cwd"])  # a relative path names nothing
        patch.setattr(sweep, "run_all", lambda *args, **kw: [])
        patch.setattr("bnexp.tfquiet.import_tensorflow", _reached)
        try:
            getattr(bnexp, name)(**kwargs)
            event("worked")
        except (bnexp.BadInput, ReachedTensorFlow) as e:
            event(type(e).__name__)
            if isinstance(e, bnexp.BadInput):
                assert e.args and all(line and "\n" not in line and len(line) <= MAX_MESSAGE
                                      for line in e.args), e.args
                if not replaced & {"config", "set", "name"}:  # no config's several mistakes
                    assert len(e.args) == 1, e.args


def _reached(*args, **kwargs):
    raise ReachedTensorFlow


_BASES: dict = {}


def _bases(factory) -> dict:
    """Valid arguments of every function, on fake runs made once."""
    if not _BASES:
        root = factory.mktemp("boundary")
        for seed, placement in ((0, "none"), (1, "before")):
            fake_run(root / "runs", seed, [0.5, 0.6], model__bn__placement=placement)
        folder = next((root / "runs").iterdir())
        (root / "cwd").mkdir()
        config = yaml_config(root)
        plots = {"runs_dir": root / "runs", "by": None, "labels": None}
        _BASES.update({
            "cwd": root / "cwd",
            "train": {"config": config, "set": None, "runs_dir": root / "r", "jobs": 1,
                      "smoke": False, "force": False, "name": None},
            "load_run": {"folder": folder}, "load_runs": {"runs_dir": root / "runs"},
            "doctor": {"path": root / "runs"},
            "compare": {"runs_dir": root / "runs", "by": None, "metric": "test_acc",
                        "at": "final", "baseline": None, "per_run": False, "select": None,
                        "columns": None},
            "eval": {"path": folder, "shift": None, "data": None, "stats": "population",
                     "batch_size": None},
            "plot_curves": {**plots, "metrics": ("test_acc",), "band": "ci"},
            "plot_gap": plots, "plot_steps": {**plots, "band": "ci"},
            "plot_activations": {**plots, "layer": None, "unit": "0"}, "plot_drift": plots,
            "plot_sweep": {**plots, "x": "model.bn.placement", "metric": "test_acc",
                           "band": "ci"},
            "plot_features": {"run_dir": folder, "image": 0, "channels": 6},
            "report": {"runs_dir": root / "runs", "out": root / "report.html", "by": None,
                       "metric": "test_acc", "baseline": None},
            "export_mlflow": {"runs_dir": root / "runs",
                              "tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
                              "experiment": None},
        })
    return _BASES


def yaml_config(root: Path) -> Path:
    config = root / "c.yaml"
    config.write_text(SYNTHETIC)
    return config
