"""Run folders made at once never share a name (see also test_load.py: eight `bnexp train`
processes into one folder while compare reads it; test_claims.py: no run trained twice)."""

import threading
import time

from bnexp import runs


def test_folders_made_at_once_with_one_name_are_each_their_own(tmp_path):
    """Eight threads make a run folder of one label in the same second (two configs of one
    name started together): mkdir is exclusive, so eight folders, `-1` ... `-7` after the
    first, each made once."""
    made, start = [], threading.Barrier(8)

    def make():
        start.wait()
        made.append(runs.create(tmp_path, "syn_s0"))

    threads = [threading.Thread(target=make) for _ in range(8)]
    second = time.strftime("%Y%m%d-%H%M%S")
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(made) == len(set(made)) == 8
    assert sorted(made) == sorted(tmp_path.iterdir())
    if all(p.name.startswith(f"syn_s0_{second}") for p in made):  # not across a second
        assert sorted(p.name.removeprefix(f"syn_s0_{second}") for p in made) == [
            "", *(f"-{k}" for k in range(1, 8))]
