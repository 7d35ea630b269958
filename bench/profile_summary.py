"""Where the daemon's threads spend their wall time, from a py-spy raw profile.

Any bench run with `--profile` leaves bench/results/<bench>-profile.txt (py-spy's collapsed
stacks, idle threads included). This groups the samples of the chosen threads by the chain
of temps' own frames (pipeline/, receiver/) down to the deepest one, so waiting on Docker,
a socket or a sleep is charged to the line of temps that waits.

    .venv/bin/python bench/profile_summary.py bench/results/rollback-profile.txt \
        [--threads deploy-] [--top 25] [--rate 100]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.+) \((?P<file>[^()]+):(?P<line>\d+)\)$")
OURS = ("pipeline/", "receiver/")


def own_chain(stack: list[str]) -> tuple[str, str]:
    """(chain of temps' frames, the deepest foreign frame below the last of them)."""
    chain: list[str] = []
    below = ""
    for frame in stack:
        found = FRAME.match(frame.strip())
        if found is None:
            continue
        where = f"{found['file']}:{found['line']}"
        if found["file"].startswith(OURS):
            chain.append(f"{found['function']} ({where})")
            below = ""
        elif chain and not below:
            below = f"{found['function']} ({where})"
    return " > ".join(chain[-4:]) or "(no temps frame)", below


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--threads", default="deploy-", help="regex on thread names")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--rate", type=float, default=100.0, help="py-spy's samples per second")
    args = parser.parse_args()
    wanted = re.compile(args.threads)
    chains: Counter[tuple[str, str]] = Counter()
    total = 0
    for raw in args.profile.read_text().splitlines():
        stack_text, _, count_text = raw.rpartition(" ")
        if not count_text.isdigit():
            continue
        thread, *stack = stack_text.split(";")
        name = thread.split(":", 1)[-1].strip()
        if not wanted.search(name):
            continue
        count = int(count_text)
        total += count
        chains[own_chain(stack)] += count
    print(f"{total / args.rate:.1f} s of wall time in threads matching {args.threads!r}")
    for (chain, below), count in chains.most_common(args.top):
        share = 100 * count / total if total else 0
        print(f"{count / args.rate:7.2f} s {share:5.1f}%  {chain}")
        if below:
            print(f"{'':16s}waiting in {below}")


if __name__ == "__main__":
    main()
