#!/usr/bin/env python3
"""Independent verifier of a DxStack audit export (JSON Lines), written from the contract in
DESIGN.md ("Audit chain") only -- no code shared with the server:

    hash = SHA-256(prev_hash as 32 raw bytes || canonical JSON of the entry without "hash")
    canonical JSON = keys sorted, no whitespace, UTF-8; prev_hash included as lowercase hex;
    genesis prev_hash = 32 zero bytes; seq 1, 2, 3 ... without gaps.

    verify_chain.py verify EXPORT.jsonl
        prints {"ok": true, "entries": N, "head_hash": H, "non_canonical_seqs": [...]} (exit 0)
        or {"ok": false, "broken_seq": S, "entries": S-1, "reason": ...} (exit 1)
    verify_chain.py forge EXPORT.jsonl SEQ OUT.jsonl
        rewrites entry SEQ's reason and recomputes *its* hash (a forger who knows the scheme):
        only the link to SEQ+1 breaks. Prints {"forged": SEQ}.
"""
import hashlib
import json
import sys


def canonical(entry):
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(prev: bytes, entry: dict) -> bytes:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(prev + canonical(body)).digest()


def lines(path):
    with open(path, "rb") as f:
        for raw in f:
            line = raw.rstrip(b"\n")
            if line.strip():
                yield line


def verify(path):
    prev, n, non_canonical = bytes(32), 0, []
    for line in lines(path):
        seq = n + 1

        def broken(reason):
            print(json.dumps({"ok": False, "broken_seq": seq, "entries": n, "reason": reason}))
            sys.exit(1)

        try:
            entry = json.loads(line)
        except ValueError as e:
            broken(f"not JSON: {e}")
        if entry.get("seq") != seq:
            broken(f"seq {entry.get('seq')} where {seq} was expected")
        if entry.get("prev_hash") != prev.hex():
            broken("prev_hash is not the previous entry's hash")
        digest = entry_hash(prev, entry)
        if entry.get("hash") != digest.hex():
            broken("hash does not match the content")
        # The contract also says the exported line is the canonical form of the entry.
        if canonical(entry) != line:
            non_canonical.append(seq)
        prev, n = digest, seq
    print(json.dumps({"ok": True, "entries": n, "head_hash": prev.hex(), "non_canonical_seqs": non_canonical}))


def forge(path, seq, out):
    entries = [json.loads(line) for line in lines(path)]
    e = entries[seq - 1]
    e["reason"] = "forged: " + str(e.get("reason", ""))
    prev = bytes.fromhex(e["prev_hash"])
    e["hash"] = entry_hash(prev, e).hex()
    with open(out, "wb") as f:
        for x in entries:
            f.write(canonical(x) + b"\n")
    print(json.dumps({"forged": seq}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "verify":
        verify(sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "forge":
        forge(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(__doc__)
