"""Puts one section into bench/RESULTS.md, replacing the section of the same
name and keeping the others (load.sh writes `sqlite` and `postgres`,
peers.sh writes `peers`, floor.sh `floor`, instructions.sh `instructions`).

    python3 bench/sections.py RESULTS.md SECTION_FILE NAME
"""
import re
import sys

ORDER = ("sqlite", "postgres", "peers", "floor", "instructions")
HEAD = (
    "# Cost per request\n\n"
    "Written by `bench/load.sh`, `bench/peers.sh`, `bench/floor.sh` and "
    "`bench/instructions.sh`; `bench/cost.svg` draws the first. "
    "CPU time per request is the server's utime + stime over a run divided by its requests: "
    "on 2 cores wrk shares the CPU, so it, not req/s, says how many cores a load needs.\n\n"
)

path, section, kind = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
try:
    text = open(path).read()
except FileNotFoundError:
    text = ""
parts = {k: v.strip() for k, v in re.findall(r"^## (\w+)\n(.*?)(?=^## |\Z)", text, re.S | re.M)}
parts[kind] = section.split("\n", 1)[1].strip()
names = [k for k in ORDER if k in parts] + sorted(k for k in parts if k not in ORDER)
out = HEAD + "".join(f"## {k}\n\n{parts[k]}\n\n" for k in names)
open(path, "w").write(out.rstrip() + "\n")
