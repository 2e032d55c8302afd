"""Account for every test id of one collection in another (issue 20's reorganisation).

    pytest --collect-only -q > before.txt      # at the older commit
    pytest --collect-only -q > after.txt       # at the newer one
    python scripts/account_test_ids.py before.txt after.txt

Each old id is either still there (perhaps in another folder: the same module name and
test), ran on PostgreSQL as well and now runs on SQLite only, or was replaced by the
API fuzz's ids (one test per operation instead of one for all). Anything else is listed
as unaccounted, and the script exits 1.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# Parameters renamed since: "clock" is now the app's clock fixture.
RENAMED = {"-clock0-": "-wall_clock0-", "-clock1-": "-wall_clock1-"}
REPLACED_MODULES = {"test_fuzz.py"}


def _ids(path: str) -> list[str]:
    return [line.strip() for line in Path(path).read_text().splitlines() if "::" in line]


def _key(test_id: str) -> str:
    """The id without its folder, with renamed parameters under their new names."""
    path, rest = test_id.split("::", 1)
    for old, new in RENAMED.items():
        rest = rest.replace(old, new)
    return path.rsplit("/", 1)[-1] + "::" + rest


def main(before_path: str, after_path: str) -> int:
    before, after = _ids(before_path), _ids(after_path)
    now = {_key(t) for t in after}
    kept, sqlite_only, replaced, unaccounted = [], [], [], []
    for test_id in before:
        key = _key(test_id)
        if key in now:
            kept.append(test_id)
        elif "[postgresql" in key and key.replace("[postgresql", "[sqlite") in now:
            sqlite_only.append(test_id)
        elif key.split("::")[0] in REPLACED_MODULES:
            replaced.append(test_id)
        else:
            unaccounted.append(test_id)
    old = {_key(t) for t in before}
    new = [t for t in after if _key(t) not in old]
    print(f"before: {len(before)} ids; after: {len(after)} ids")
    print(f"  still there (moved to its layer's folder or not): {len(kept)}")
    print(f"  ran on PostgreSQL too, now on SQLite only: {len(sqlite_only)}")
    for module, count in Counter(_key(t).split("::")[0] for t in sqlite_only).most_common():
        print(f"      {count:5d}  {module}")
    print(f"  replaced by the per-operation fuzz: {len(replaced)}")
    print(f"  unaccounted: {len(unaccounted)}")
    for test_id in unaccounted:
        print(f"      {test_id}")
    print(f"new ids: {len(new)}")
    for module, count in Counter(t.split("::")[0] for t in new).most_common():
        print(f"      {count:5d}  {module}")
    return 1 if unaccounted else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
