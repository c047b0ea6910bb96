#!/usr/bin/env python3
"""List and check the import section of a WebAssembly module.

Standard library only (no wabt needed).

  wasm_imports.py FILE.wasm
      print every import: module.name  kind  type

  wasm_imports.py FILE.wasm --allow-module M [--allow-module M2 ...] \
                  --expect 'MODULE.NAME=SIG' [--expect ...] [--strict-module M]
      check that
        - every import comes from an allowed module,
        - every --expect'ed import is present, is a function and has exactly
          that wasm function type,
        - every import from a --strict-module is one of the --expect'ed ones.
      Exit status 0 when all checks pass, 1 on any mismatch, 2 on bad usage
      or a malformed module.

SIG is either a wasm function type, e.g. '(i32,i32)->(i32)' or '(i32)->i32'
or '()->()', or a WAMR native signature string as written in WAMR's
REG_NATIVE_FUNC tables, e.g. '(*i*i*)i' ('i' i32, 'I' i64, 'f' f32, 'F' f64,
'r' externref, and '*', '~', '$' are i32 addresses/lengths in wasm32).
"""

import argparse
import sys

VALTYPES = {
    0x7F: "i32",
    0x7E: "i64",
    0x7D: "f32",
    0x7C: "f64",
    0x7B: "v128",
    0x70: "funcref",
    0x6F: "externref",
}

WAMR_SIG_CHARS = {
    "i": "i32",
    "I": "i64",
    "f": "f32",
    "F": "f64",
    "r": "externref",
    "*": "i32",
    "~": "i32",
    "$": "i32",
}

KIND_NAMES = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}


class WasmError(Exception):
    pass


class Reader:
    def __init__(self, data, pos=0, end=None):
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def byte(self):
        if self.pos >= self.end:
            raise WasmError("unexpected end of data at offset %d" % self.pos)
        b = self.data[self.pos]
        self.pos += 1
        return b

    def bytes(self, n):
        if n < 0 or self.pos + n > self.end:
            raise WasmError("unexpected end of data at offset %d" % self.pos)
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u32(self):
        result = 0
        shift = 0
        for _ in range(5):
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                if result > 0xFFFFFFFF:
                    raise WasmError("LEB128 u32 out of range")
                return result
            shift += 7
        raise WasmError("LEB128 u32 too long at offset %d" % self.pos)

    def u64(self):
        result = 0
        shift = 0
        for _ in range(10):
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
        raise WasmError("LEB128 u64 too long at offset %d" % self.pos)

    def name(self):
        n = self.u32()
        raw = self.bytes(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise WasmError("import name is not valid UTF-8")

    def valtype(self):
        b = self.byte()
        if b not in VALTYPES:
            raise WasmError("unknown value type 0x%02x" % b)
        return VALTYPES[b]


def format_functype(params, results):
    return "(%s) -> (%s)" % (", ".join(params), ", ".join(results))


def parse_module(data):
    """Return (types, imports): types is a list of (params, results);
    imports is a list of dicts with module, name, kind, and for functions
    typeidx/params/results."""
    r = Reader(data)
    if len(data) < 8 or data[:4] != b"\0asm":
        raise WasmError("not a wasm module (bad magic)")
    r.bytes(4)
    version = r.bytes(4)
    if version != b"\x01\0\0\0":
        raise WasmError("unsupported wasm version %r" % version)

    types = []
    imports = []
    raw_imports = []
    while r.pos < r.end:
        section_id = r.byte()
        size = r.u32()
        start = r.pos
        if start + size > r.end:
            raise WasmError("section %d runs past the end of file" % section_id)
        s = Reader(data, start, start + size)
        if section_id == 1:  # type section
            for _ in range(s.u32()):
                form = s.byte()
                if form != 0x60:
                    raise WasmError("unsupported type form 0x%02x" % form)
                params = [s.valtype() for _ in range(s.u32())]
                results = [s.valtype() for _ in range(s.u32())]
                types.append((params, results))
        elif section_id == 2:  # import section
            for _ in range(s.u32()):
                module = s.name()
                field = s.name()
                kind = s.byte()
                entry = {"module": module, "name": field,
                         "kind": KIND_NAMES.get(kind, "kind%d" % kind)}
                if kind == 0:  # func
                    entry["typeidx"] = s.u32()
                elif kind == 1:  # table: reftype, limits
                    entry["reftype"] = s.valtype()
                    read_limits(s)
                elif kind == 2:  # memory: limits
                    read_limits(s)
                elif kind == 3:  # global: valtype, mutability
                    entry["valtype"] = s.valtype()
                    s.byte()
                elif kind == 4:  # tag: attribute, typeidx
                    s.byte()
                    entry["typeidx"] = s.u32()
                else:
                    raise WasmError("unknown import kind %d" % kind)
                raw_imports.append(entry)
        r.pos = start + size

    for entry in raw_imports:
        if entry["kind"] in ("func", "tag"):
            idx = entry["typeidx"]
            if idx >= len(types):
                raise WasmError("import %s.%s uses type index %d, but there "
                                "are only %d types" % (entry["module"],
                                                       entry["name"], idx,
                                                       len(types)))
            entry["params"], entry["results"] = types[idx]
        imports.append(entry)
    return types, imports


def read_limits(s):
    flags = s.byte()
    if flags & ~0x07:
        raise WasmError("unknown limits flags 0x%02x" % flags)
    read = s.u64 if flags & 0x04 else s.u32  # memory64
    read()
    if flags & 0x01:
        read()


def parse_sig(text):
    """Parse a wasm function type or a WAMR signature string into
    (params, results)."""
    t = text.replace(" ", "")
    if "->" in t:
        lhs, rhs = t.split("->", 1)

        def side(x):
            if x.startswith("(") and x.endswith(")"):
                x = x[1:-1]
            items = [v for v in x.split(",") if v]
            for v in items:
                if v not in VALTYPES.values():
                    raise ValueError("unknown value type %r in %r" % (v, text))
            return items

        return side(lhs), side(rhs)
    # WAMR style: "(args)ret"
    if not t.startswith("(") or ")" not in t:
        raise ValueError("cannot parse signature %r" % text)
    args, ret = t[1:].split(")", 1)
    try:
        params = [WAMR_SIG_CHARS[c] for c in args]
        results = [WAMR_SIG_CHARS[c] for c in ret]
    except KeyError as exc:
        raise ValueError("unknown WAMR signature char %s in %r" % (exc, text))
    if len(results) > 1:
        raise ValueError("WAMR signature %r has more than one result" % text)
    return params, results


def describe(entry):
    if "params" in entry:
        return "%s %s" % (entry["kind"],
                          format_functype(entry["params"], entry["results"]))
    return entry["kind"]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wasm")
    ap.add_argument("--allow-module", action="append", default=[],
                    metavar="MODULE",
                    help="a module imports may come from (repeatable)")
    ap.add_argument("--expect", action="append", default=[],
                    metavar="MODULE.NAME=SIG",
                    help="a function import that must exist with this type")
    ap.add_argument("--strict-module", action="append", default=[],
                    metavar="MODULE",
                    help="every import from MODULE must be --expect'ed")
    args = ap.parse_args(argv)

    try:
        with open(args.wasm, "rb") as f:
            data = f.read()
        _, imports = parse_module(data)
    except (OSError, WasmError) as exc:
        print("wasm_imports: %s: %s" % (args.wasm, exc), file=sys.stderr)
        return 2

    expected = {}
    for spec in args.expect:
        key, sep, sig = spec.partition("=")
        if not sep or "." not in key:
            print("wasm_imports: bad --expect %r (want MODULE.NAME=SIG)" % spec,
                  file=sys.stderr)
            return 2
        module, name = key.split(".", 1)
        try:
            expected[(module, name)] = (parse_sig(sig), sig)
        except ValueError as exc:
            print("wasm_imports: %s" % exc, file=sys.stderr)
            return 2

    checking = bool(args.allow_module or expected or args.strict_module)
    print("%s: %d imports" % (args.wasm, len(imports)))
    failures = 0
    seen = set()
    for entry in imports:
        key = (entry["module"], entry["name"])
        full = "%s.%s" % key
        problems = []
        if args.allow_module and entry["module"] not in args.allow_module:
            problems.append("module %r is not allowed (allowed: %s)"
                            % (entry["module"], ", ".join(args.allow_module)))
        note = ""
        if key in expected:
            seen.add(key)
            (want_params, want_results), want_text = expected[key]
            if entry["kind"] != "func":
                problems.append("is a %s, expected a function" % entry["kind"])
            elif (entry["params"], entry["results"]) != (want_params,
                                                         want_results):
                problems.append("type is %s, expected %s"
                                % (format_functype(entry["params"],
                                                   entry["results"]),
                                   format_functype(want_params, want_results)))
            note = "  [expected %s]" % want_text
        elif entry["module"] in args.strict_module:
            problems.append("unexpected import from strict module %r"
                            % entry["module"])
        status = ("FAIL" if problems else "ok  ") if checking else "    "
        print("  %s %-48s %s%s" % (status, full, describe(entry), note))
        for p in problems:
            print("       -> %s" % p)
        failures += len(problems)

    for key, (_, want_text) in sorted(expected.items()):
        if key not in seen:
            print("  FAIL %-48s missing  [expected %s]"
                  % ("%s.%s" % key, want_text))
            failures += 1

    if checking:
        if failures:
            print("import check: FAILED (%d problem%s)"
                  % (failures, "" if failures == 1 else "s"))
            return 1
        print("import check: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
