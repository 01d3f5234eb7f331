#!/usr/bin/env python3
"""How much code one echoed message runs through: the hot code's footprint in 64-byte
instruction-cache lines, from two callgrind profiles of the echo bench that differ only in
their message count.

    B=target/release/deps/echo-<hash>
    for c in 40 80; do valgrind --tool=callgrind --dump-instr=yes \\
        --callgrind-out-file=cg.$c $B --only stampede --threads 1 --conns 100 --count $c; done
    scripts/hot-code.py cg.40 cg.80 --messages 4000          # per function
    scripts/hot-code.py cg.40 cg.80 --messages 4000 --map 'stampede::plan::cursor::Cursor::next_into'

An instruction is hot when the larger run executed it at least `--share` times per extra
message more than the smaller one (the difference leaves the set-up out). Lines: the
distinct 64-byte lines holding a hot instruction. Against the 32 KiB L1 instruction cache
(512 lines) of the machines these figures come from, a path of more lines than that is
reloaded from L2 on every message. `--map` lists one function's hot lines in address order
with the source lines their hot instructions come from: sparse lines are hot code
interleaved with cold code. The format read is callgrind's (valgrind's "Callgrind Format
Specification": name compression, relative subpositions, `calls=` lines whose next cost
line is the call's inclusive cost, not the caller's own).
"""
import argparse
import collections
import re


def parse(path):
    """{(object, address): own Ir} and {(object, address): (function, file, line)}."""
    names = {}
    cost = collections.Counter()
    where = {}
    obj = fn = fl = None
    prev = [0, 0]
    call_cost_next = False

    def named(kind, text):
        m = re.match(r"\((\d+)\)(?: (.*))?", text)
        if not m:
            return text
        key = (kind, m.group(1))
        if m.group(2):
            names[key] = m.group(2)
        return names.get(key, text)

    def sub(text, i):
        if text == "*":
            return prev[i]
        if text[0] in "+-":
            return prev[i] + int(text, 0)
        return int(text, 0)

    for raw in open(path, encoding="utf-8", errors="replace"):
        line = raw.rstrip("\n")
        if not line:
            continue
        key, _, rest = line.partition("=")
        if key == "ob":
            obj = named("ob", rest)
        elif key == "fn":
            fn = named("fn", rest)
        elif key in ("fl", "fi", "fe"):
            fl = named("fl", rest)
        elif key in ("cob", "cfn", "cfi", "cfl"):
            named({"cob": "ob", "cfn": "fn", "cfi": "fl", "cfl": "fl"}[key], rest)
        elif key == "calls":
            call_cost_next = True
        elif line[0] in "0123456789+-*":
            parts = line.split()
            addr, src = sub(parts[0], 0), sub(parts[1], 1)
            prev[0], prev[1] = addr, src
            if call_cost_next:
                call_cost_next = False
                continue
            if len(parts) > 2:
                cost[(obj, addr)] += int(parts[2])
                where[(obj, addr)] = (fn, fl, src)
    return cost, where


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("smaller")
    ap.add_argument("larger")
    ap.add_argument("--messages", type=float, required=True, help="extra messages in the larger run")
    ap.add_argument("--share", type=float, default=0.2, help="executions per message that make an instruction hot")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--map", help="a function's name, as callgrind gives it")
    args = ap.parse_args()
    small, _ = parse(args.smaller)
    large, where = parse(args.larger)
    per = {k: (v - small.get(k, 0)) / args.messages for k, v in large.items()}
    hot = {k for k, d in per.items() if d >= args.share}
    if args.map:
        lines = collections.defaultdict(list)
        for k in hot:
            fn, fl, src = where[k]
            if fn == args.map:
                lines[k[1] >> 6].append((k[1], f"{(fl or '?').split('/')[-1]}:{src}"))
        for line in sorted(lines):
            sources = collections.Counter(s for _, s in sorted(lines[line]))
            shown = " ".join(f"{s}x{n}" if n > 1 else s for s, n in sources.items())
            print(f"{line << 6:#x} {len(lines[line]):2} hot  {shown}")
        return
    by_fn = collections.defaultdict(set)
    ir = collections.Counter()
    unique = collections.Counter()
    for k in hot:
        fn = where[k][0]
        by_fn[fn].add((k[0], k[1] >> 6))
        unique[fn] += 1
    for k, d in per.items():
        ir[where[k][0]] += d
    every = set().union(*by_fn.values()) if by_fn else set()
    print(f"instructions per message {sum(ir.values()):.0f}; hot instructions {len(hot)}; "
          f"hot lines {len(every)} ({len(every) * 64 / 1024:.1f} KiB)")
    print(" lines  unique   Ir/msg  function")
    for n, fn in sorted(((len(s), f) for f, s in by_fn.items()), reverse=True)[: args.top]:
        print(f"{n:6} {unique[fn]:7} {ir[fn]:8.0f}  {fn[:110]}")


if __name__ == "__main__":
    main()
