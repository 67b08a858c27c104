#!/usr/bin/env python3
"""Write a CSV member roster for POST /v1/members/import (used by import.sh).

usage: gen_roster.py OUT.csv ROWS POLICY_ID [BAD] [SEED]

Header: member_id,policy_id,relationship,dob,gender,pincode,name,phone,enrolled_on,family_id.
ROWS valid rows in families of four sharing a family_id (the `self` member's id): self, spouse,
child, parent, with plausible dates of birth, pincodes 560001..560099, short values so that
100,000 rows stay well under the 10 MB upload limit (member ids m1..mN, names N1..NN).
BAD (default 0) invalid rows are appended after them, cycling through: an impossible dob, an
unknown policy, an unknown relationship, an empty name; ids x1..xBAD. Deterministic for a SEED.
"""
import random
import sys

out, rows, policy = sys.argv[1], int(sys.argv[2]), sys.argv[3]
bad = int(sys.argv[4]) if len(sys.argv) > 4 else 0
rng = random.Random(int(sys.argv[5]) if len(sys.argv) > 5 else 42)

REL = ("self", "spouse", "child", "parent")
YEARS = {"self": (1965, 2000), "spouse": (1965, 2000), "child": (2005, 2023), "parent": (1940, 1964)}


def dob(rel):
    lo, hi = YEARS[rel]
    return f"{rng.randint(lo, hi)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


with open(out, "w", newline="") as f:
    f.write("member_id,policy_id,relationship,dob,gender,pincode,name,phone,enrolled_on,family_id\n")
    for i in range(1, rows + 1):
        rel = REL[(i - 1) % 4]
        fam = f"m{i - (i - 1) % 4}"
        f.write(f"m{i},{policy},{rel},{dob(rel)},{rng.choice('FM')},5600{rng.randint(1, 99):02d},"
                f"N{i},98{rng.randint(0, 99999999):08d},2024-01-{rng.randint(1, 28):02d},{fam}\n")
    for j in range(1, bad + 1):
        k = (j - 1) % 4
        f.write(",".join([
            f"x{j}",
            "pol-nope" if k == 1 else policy,
            "cousin" if k == 2 else "self",
            "1990-13-45" if k == 0 else "1990-01-01",
            "F", "560001",
            "" if k == 3 else f"X{j}",
            "9800000000", "2024-01-01", f"x{j}",
        ]) + "\n")
