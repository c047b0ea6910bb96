#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses (tests/fuzz/corpus/) and
their dictionaries (tests/fuzz/*.dict).

The config harness reads JSON text, so its seeds are plain documents. The
others read their input through libFuzzer's FuzzedDataProvider, which takes
integers from the end of the input and strings from the front; the Writer
below lays out bytes so that the harness makes the choices each seed names
(it mirrors FuzzedDataProvider and the order in which each harness consumes
its input: keep it in step with stop_fuzzer.cpp, prompt_fuzzer.cpp and
abi_sequence.cpp). A seed that drifts out of step still is a valid input,
only a less useful one.

The configuration keys in config.dict are read from src/engine/config_keys.cpp,
so running this again after adding a key keeps the dictionary complete.

    tests/fuzz/make_seeds.py        # rewrites tests/fuzz/corpus/* and *.dict
"""
import json
import os
import re
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


class Writer:
    """Bytes that FuzzedDataProvider hands back as the given choices."""

    def __init__(self):
        self.front = bytearray()  # strings, in order
        self.back = []            # integers, in consumption order (stored reversed)

    def int(self, lo, hi, value, bits=64):
        assert lo <= value <= hi, (lo, hi, value)
        rng = hi - lo
        if rng == 0:
            return
        n = 0
        while n * 8 < bits and (rng >> (n * 8)) > 0:
            n += 1
        x = value - lo
        # FuzzedDataProvider: result = (result << 8) | next byte from the end.
        for i in reversed(range(n)):
            self.back.append((x >> (i * 8)) & 0xFF)

    def bool(self, value):
        self.int(0, 255, 1 if value else 0, bits=8)

    def string(self, s):
        b = s.encode("utf-8", "surrogateescape") if isinstance(s, str) else bytes(s)
        self.front += b.replace(b"\\", b"\\\\") + b"\\x"  # a backslash and any other byte end it

    def rest(self, s):
        b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
        self.front += b

    def bytes(self):
        return bytes(self.front) + bytes(reversed(self.back))


def write(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- fuzz_config

def config_seeds():
    docs = {
        "backend": {"max_sessions": 8, "idle_timeout_ms": 60000, "max_concurrent": 2, "queue_size": 16,
                    "model_dirs": ["/models"], "logging": {"level": "warn", "format": "json"}},
        "sectioned": {"model": {"n_ctx": 2048, "n_gpu_layers": 0, "flash-attn": "auto", "cache-type-k": "q8_0"},
                      "sampling": {"temperature": 0.7, "top_k": 40, "top_p": 0.9, "logit_bias": {"2": False}},
                      "stopping": {"n_predict": 64, "stop": ["\n\n"], "antiprompt": "User:"}},
        "request": {"temp": 0, "max_tokens": 32, "stop": [" was", "."], "priority": "high", "timeout_ms": 500,
                    "json_schema": {"type": "object", "properties": {"name": {"type": "string"}}}},
        "grammar": {"grammar": "root ::= \"yes\" | \"no\"", "ignore_eos": False, "seed": 42, "mirostat": 2},
        "wasmedge": {"n-predict": 16, "reverse-prompt": "</s>", "enable-log": True, "ctx-size": 512,
                     "threads": -1, "batch-size": 64, "stream-stdout": False},
        "edge": {"seed": 4294967295, "top_k": -1, "tensor_split": "3,1", "rpc_servers": "127.0.0.1:1",
                 "dry_sequence_breakers": ["\n", ":"], "xtc_probability": 0.5, "max_time_ms": 0},
    }
    for name, d in docs.items():
        write("fuzz_config", name + ".json", json.dumps(d).encode())
    # Layered: backend, graph, then two requests (0x1E between documents).
    layered = "\x1e".join([json.dumps({"max_concurrent": 2, "temp": 0.8}),
                           json.dumps({"ctx_size": 256, "chat_template": "chatml", "system_prompt": "Be brief."}),
                           json.dumps({"temp": 0, "max_tokens": 4, "mode": "chat"}),
                           json.dumps({"stop": None, "reverse_prompt": ["a", "a"]})])
    write("fuzz_config", "layered.txt", layered.encode())
    write("fuzz_config", "nul_padding.txt", b'{"max_tokens":4}\x00{"max_tokens":5}')
    write("fuzz_config", "errors.txt", b'{"ctx_size":"big"}\x1e{"temp":1e400}\x1e{"top_p":2}\x1e[1,2]')


# ------------------------------------------------------------------ fuzz_stop

def stop_seeds():
    def seed(name, stops, pieces):
        w = Writer()
        w.int(0, 8, len(stops))
        for s in stops:
            w.string(s)
        for p in pieces:
            w.string(p)
        write("fuzz_stop", name, w.bytes())

    seed("split_stop", ["Lily", "\n\n"], ["Once", " upon", " a time", " Li", "ly was"])
    seed("overlapping", ["abcd", "bc", "aab"], ["a", "a", "b", "c", "d"])
    seed("utf8", ["\u00e9t\u00e9", "\u2603"], [b"caf\xc3", b"\xa9 \xc3\xa9", "t\u00e9 \u2603"])
    seed("utf8_split", ["x"], [b"\xe2", b"\x82", b"\xac", b"\xf0\x9f", b"\x98\x80", b"x"])
    seed("no_stops", [], ["hello", " world", b"\xff\xfe"])


# ---------------------------------------------------------------- fuzz_prompt

def prompt_seeds():
    # Order: model, jinja?, [template text | built-in index], mode, system?,
    # [system], context_shifting, max_tokens index, ctx, turns, [turns],
    # transcript?, [transcript], input (the rest).
    def seed(name, model, template, mode, system, shifting, max_tokens_idx, ctx, turns, transcript, text,
             builtin=0):
        w = Writer()
        w.int(0, 1, model)
        w.bool(template is not None)
        if template is not None:
            w.string(template)
        else:
            w.int(0, 255, builtin)  # one byte: an index into llama.cpp's built-in names and "" (under 256)
        w.int(0, 2, mode)
        w.bool(system is not None)
        if system is not None:
            w.string(system)
        w.bool(shifting)
        w.int(0, 7, max_tokens_idx)
        w.int(1, 640, ctx, bits=32)
        w.int(0, 12, len(turns))
        for u, a in turns:
            w.string(u)
            w.string(a)
        w.bool(transcript is not None)
        if transcript is not None:
            w.string(transcript)
        w.rest(text)
        write("fuzz_prompt", name, w.bytes())

    chatml = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
              "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    llama2 = ("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
              "message['content'] | trim + ' [/INST]' }}{% elif message['role'] == 'system' %}{{ '<<SYS>>\\n' + "
              "message['content'] + '\\n<</SYS>>\\n\\n' }}{% else %}{{ ' ' + message['content'] + ' ' + eos_token }}"
              "{% endif %}{% endfor %}")
    strict = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
              "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}assistant:")
    turns = [("Tell me a story.", "Once upon a time, there was a dog."), ("More.", "The dog ran to the park.")]
    long_turns = [("the little dog ran to the park " * 8, "and then the cat came home " * 8)] * 6
    seed("chatml_jinja", 0, chatml, 1, "You are a storyteller.", True, 3, 256, turns, None, "And then?")
    seed("llama2_jinja", 1, llama2, 0, "Be brief.", True, 4, 128, turns, None, "\u65e5\u672c\u8a9e?")
    seed("raise_exception", 0, strict, 1, "no", False, 2, 64, [], None, "hi")
    seed("builtin_shift", 1, None, 1, None, True, 5, 96, long_turns, None, "go on", builtin=3)
    seed("builtin_full", 0, None, 1, None, False, 6, 48, long_turns, None, "go on", builtin=7)
    seed("completion", 0, None, 2, None, True, 1, 64, [], "Once upon a time, there was a little girl. " * 6,
         " She")
    seed("completion_noshift", 1, None, 2, None, False, 0, 32, [], "abc " * 40, "<s>")
    # A known hole (known_holes.h, unbounded_jinja): skipped while it is.
    seed("hole_jinja_range", 0, "{% for i in range(1000000000) %}{{ i }}{% endfor %}", 1, None, True, 3, 64, [], None,
         "hi")


# ---------------------------------------------------------- fuzz_abi_* (both)

class Program:
    """One ABI-sequence input: ops and their choices, as abi_sequence.cpp reads them."""

    def __init__(self):
        self.w = Writer()
        self.ctxs = 0      # contexts opened
        self.dead = False  # the newest one was deinitialised
        self.graphs = 0    # graphs of the newest context
        self.execs = 0     # execution contexts of the newest context

    def op(self, n):
        self.w.int(0, 19, n)

    def ctx(self):  # the newest context
        self.w.int(0, 9, 0)
        self.w.int(0, 3, 0)

    def exec_(self, i=None):
        i = self.execs - 1 if i is None else i
        self.w.int(0, 3, 1)
        if self.dead:  # no handles of a dead context to pick from: a small number
            self.w.bool(True)
            self.w.int(0, 8, i)
        else:
            self.w.int(0, self.execs - 1, i)

    def index(self, i):
        self.w.int(0, 7, 3)
        self.w.bool(i == 0)

    def raw_doc(self, doc):
        self.w.int(0, 15, 1)
        self.w.string(doc)

    def tensor(self):  # u8, dimensions {len}, the NUL not counted
        self.w.int(0, 15, 5)
        self.w.int(0, 3, 1)
        self.w.int(0, 9, 2)
        self.w.int(0, 15, 1)
        self.w.int(0, 15, 1)
        self.w.int(0, 31, 1)

    def prompt(self, i=0):
        self.w.int(0, 9, 0)
        self.w.int(0, 12, i)

    def capacity(self, i=7):  # 65536
        self.w.int(0, 4, 2)
        self.w.int(0, 7, i)

    def init(self, doc):
        self.op(0)
        self.w.int(0, 7, 1)
        self.raw_doc(doc)
        self.w.bool(False)
        self.w.int(0, 31, 1)
        self.ctxs += 1
        self.graphs = self.execs = 0
        self.dead = False

    def load_by_name(self, name_index=0, doc=None, ok=True):
        self.op(2)
        self.ctx()
        self.w.int(0, 11, name_index)
        self.w.int(0, 7, 7)
        self.w.int(0, 31, 1)
        if doc is None:
            self.w.int(0, 3, 0)
            self.w.bool(False)  # no config: NULL or not
        else:
            self.w.int(0, 3, 1)
            self.raw_doc(doc)
        self.w.int(0, 31, 1)
        if ok:
            self.graphs += 1

    def load_bytes(self):
        self.op(4)
        self.ctx()
        self.w.int(0, 5, 0)
        self.w.bool(True)
        self.w.int(0, 7, 0)
        self.w.int(0, 7, 1)
        self.w.int(0, 2, 0)
        for _ in range(3):
            self.w.int(0, 15, 1)
        self.w.int(0, 31, 1)
        self.graphs += 1

    def init_exec(self, graph=None):
        self.op(6)
        self.ctx()
        self.w.int(0, 3, 1)
        self.w.int(0, self.graphs - 1, self.graphs - 1 if graph is None else graph)
        self.w.int(0, 31, 1)
        self.execs += 1

    def init_session(self, id_index=0):
        self.op(7)
        self.ctx()
        self.w.int(0, 7, 3)
        self.w.int(0, 6, id_index)
        self.w.int(0, 31, 1)
        self.w.int(0, 31, 1)
        self.execs += 1

    def set_prompt(self, i=0):
        self.op(9)
        self.ctx()
        self.exec_()
        self.index(0)
        self.prompt(i)
        self.tensor()

    def set_options(self, doc):
        self.op(9)
        self.ctx()
        self.exec_()
        self.index(1)
        self.raw_doc(doc)
        self.tensor()

    def compute(self):
        self.op(11)
        self.ctx()
        self.exec_()

    def get_output(self, i=0, cap=7):
        self.op(12)
        self.ctx()
        self.exec_()
        self.index(i)
        self.capacity(cap)
        self.w.int(0, 15, 1)
        self.w.int(0, 31, 1)
        self.w.int(0, 31, 1)

    def run_inference(self, doc, i=0, prompt=0):
        self.op(13)
        self.ctx()
        self.exec_()
        self.index(i)
        self.prompt(prompt)
        self.tensor()
        self.raw_doc(doc)
        self.capacity()
        self.w.int(0, 15, 1)
        self.w.int(0, 31, 1)

    def status(self, kind):
        self.op(14)
        self.ctx()
        self.w.int(0, 13, kind)
        self.w.int(0, 5, 5)
        self.w.int(0, 15, 1)

    def compute_single(self, n=8):
        self.op(15)
        self.ctx()
        self.exec_()
        self.w.int(1, 8, n)

    def get_output_single(self, i=0):
        self.op(17)
        self.ctx()
        self.exec_()
        self.index(i)
        self.capacity()
        self.w.int(0, 15, 1)
        self.w.int(0, 31, 1)

    def swap(self, name_index=0, doc=None, force=False):
        self.op(19)
        self.ctx()
        self.w.int(0, 5, 1)  # swap_graph, not reload_aliases
        self.w.int(0, 3, 1)
        self.w.int(0, self.graphs - 1, self.graphs - 1)
        self.w.int(0, 11, name_index)
        self.w.int(0, 7, 7)
        self.w.int(0, 31, 1)
        if doc is None:
            self.w.int(0, 3, 0)
            self.w.int(0, 3, 1)
            self.w.bool(False)  # no config: NULL or not
        else:
            self.w.int(0, 3, 1)
            self.raw_doc(doc)
            self.w.int(0, 3, 0 if force else 1)

    def reload_aliases(self):
        self.op(19)
        self.ctx()
        self.w.int(0, 5, 0)

    def fini_single(self):
        self.op(18)
        self.ctx()
        self.exec_()

    def close_exec(self):
        self.op(8)
        self.ctx()
        self.exec_()

    def unload(self):
        self.op(5)
        self.ctx()
        self.w.int(0, 3, 1)
        self.w.int(0, self.graphs - 1, self.graphs - 1)

    def deinit(self):
        self.op(1)
        self.ctx()
        self.dead = True


BACKEND = json.dumps({"ctx_size": 128, "max_concurrent": 2, "threads": 1, "max_tokens": 4})
GREEDY = json.dumps({"temp": 0, "max_tokens": 4})


def abi_seeds():
    seeds = {}

    p = Program()  # the whole path: load, compute, both outputs, status
    p.init(BACKEND)
    p.load_by_name()
    p.init_exec()
    p.set_prompt()
    p.set_options(GREEDY)
    p.compute()
    p.get_output(0)
    p.get_output(1)
    p.get_output(0, cap=1)  # too small
    for k in range(5):
        p.status(k)
    seeds["compute"] = p

    p = Program()  # streaming, then the turn is in the session
    p.init(BACKEND)
    p.load_by_name()
    p.init_session(0)
    p.set_prompt()
    p.set_options(json.dumps({"temp": 0, "max_tokens": 6, "stop": [" was"]}))
    p.compute_single(8)
    p.get_output_single(0)
    p.get_output_single(1)
    p.fini_single()
    p.get_output(0)
    p.set_prompt(1)
    p.compute()
    seeds["stream_session"] = p

    p = Program()  # run_inference with sampling, a grammar and a schema
    p.init(BACKEND)
    p.load_by_name(0, json.dumps({"chat_template": "chatml", "system_prompt": "Be brief."}))
    p.init_exec()
    p.run_inference(json.dumps({"temp": 0.8, "top_k": 5, "seed": 1, "max_tokens": 4, "repeat_penalty": 1.1}))
    p.run_inference(json.dumps({"max_tokens": 3, "grammar": "root ::= [a-z]+"}), i=1)
    p.run_inference(json.dumps({"max_tokens": 4, "json_schema": {"type": "string"}}), prompt=8)
    p.close_exec()
    p.compute()  # a closed handle
    seeds["run_inference"] = p

    p = Program()  # two contexts, one model, unload and stale handles
    p.init(BACKEND)
    p.load_by_name()
    p.init_exec()
    p.set_prompt()
    p.init(BACKEND)
    p.load_by_name(3)  # llama-2-tiny-random
    p.init_exec()
    p.set_prompt(8)
    p.compute()
    p.unload()
    p.compute()
    p.deinit()
    p.compute()  # the context is gone
    seeds["two_contexts"] = p

    p = Program()  # from bytes, a refused v1 file, a missing one
    p.init(BACKEND)
    p.load_bytes()
    p.load_by_name(4, ok=False)  # GGUF v1
    p.load_by_name(6, ok=False)  # missing
    p.init_exec(0)
    p.set_prompt(6)  # longer than the context
    p.compute()
    seeds["load_bytes"] = p

    p = Program()  # hot swap while a stream runs: same model, another (refused, then forced), reload
    p.init(BACKEND)
    p.load_by_name()
    p.init_session(0)
    p.set_prompt()
    p.set_options(GREEDY)
    p.compute_single(2)
    p.swap(0, json.dumps({"max_tokens": 4}))
    p.get_output_single(0)
    p.fini_single()
    p.swap(3)  # llama-2-tiny-random: another vocabulary, refused
    p.swap(3, "{}", force=True)
    p.set_prompt(1)
    p.compute()
    p.get_output(0)
    p.reload_aliases()
    p.status(0)
    seeds["swap"] = p

    p = Program()  # an embedding graph: compute, both outputs, run_inference, status
    p.init(BACKEND)
    p.load_by_name(0, json.dumps({"embedding": True, "pooling_type": "mean"}))
    p.init_exec()
    p.set_prompt()
    p.compute()
    p.get_output(0)
    p.get_output(1)
    p.run_inference(json.dumps({"embd_normalize": 0}), prompt=8)
    p.compute_single(2)  # streaming generates text: refused on an embedding graph
    p.status(0)
    seeds["embedding"] = p

    # The known holes (known_holes.h): skipped while they are, found at once
    # when the skip is turned off.
    for name, doc in (("hole_llguidance", {"max_tokens": 2, "grammar": "%llguidance {}\nstart: \"a\""}),
                      ("hole_grammar_ignore_eos", {"max_tokens": 8, "grammar": "root ::= \"a\"", "ignore_eos": True}),
                      ("hole_schema_eos_banned", {"max_tokens": 8, "json_schema": {"enum": [1, 2]},
                                                  "logit_bias": {"2": False}})):
        p = Program()
        p.init(BACKEND)
        p.load_by_name()
        p.init_exec()
        p.set_prompt()
        p.set_options(json.dumps(doc))
        p.compute()
        seeds[name] = p
    p = Program()
    p.init(BACKEND)
    p.load_by_name(0, json.dumps({"chat_template": "{% for i in range(1000000000) %}x{% endfor %}"}))
    seeds["hole_jinja_range"] = p

    for harness in ("fuzz_abi_wamr", "fuzz_abi_legacy"):
        for name, prog in seeds.items():
            write(harness, name, prog.w.bytes())


# --------------------------------------------------------------- dictionaries

def dict_entry(value):
    out = ""
    for b in value.encode("utf-8") if isinstance(value, str) else value:
        c = chr(b)
        out += "\\" + c if c in '"\\' else c if 32 <= b < 127 else "\\x%02x" % b
    return '"%s"' % out


def write_dict(name, header, values):
    lines = ["# " + h for h in header] + [""]
    lines += ["k%d=%s" % (i, dict_entry(v)) for i, v in enumerate(values)]
    with open(os.path.join(HERE, name), "w") as f:
        f.write("\n".join(lines) + "\n")


def dictionaries():
    src = open(os.path.join(HERE, "..", "..", "src", "engine", "config_keys.cpp")).read()
    keys = sorted(set(re.findall(r'\{"([a-z_]+)", \{Group::', src)))
    keys += sorted(set(a for a, _ in re.findall(r'\{"([a-z_]+)", "([a-z_]+)"\},', src)))
    values = []
    for k in keys:
        values.append('"%s"' % k)
        if "_" in k:
            values.append('"%s"' % k.replace("_", "-"))
    values += ['"%s"' % s for s in ("model", "sampling", "stopping", "memory", "backend", "logging", "runtime")]
    values += ["{", "}", "[", "]", ":", ",", '":', '":{', '{"', '"}', "null", "true", "false", '""', '\\"',
               "\\u0000", "\\n", "\\\\", "0", "1", "-1", "0.5", "1e400", "-0", "4294967295", "4294967296",
               "2147483648", "9223372036854775807", "1e-45", "3.5e38", "1.0"]
    values += ['"on"', '"off"', '"auto"', '"enabled"', '"layer"', '"row"', '"none"', '"f16"', '"q8_0"', '"q4_0"',
               '"bf16"', '"chat"', '"completion"', '"high"', '"normal"', '"low"', '"json"', '"text"', '"debug"',
               '"info"', '"warn"', '"warning"', '"error"', '"chatml"', '"llama2"', '"/dev/null"', '"127.0.0.1:1"',
               '"root ::= \\"a\\""', '"%llguidance"', '{"type":"string"}', '{"2":false}', '[[2,false]]', '"3,1"',
               '"3/1"']
    write_dict("config.dict", ["libFuzzer dictionary for fuzz_config and the ABI-sequence harnesses: every",
                               "configuration key of src/engine/config_keys.cpp with its aliases and hyphenated",
                               "spellings, the section names, JSON tokens and values. Written by make_seeds.py."],
               values)
    write_dict("stop.dict", ["libFuzzer dictionary for fuzz_stop: UTF-8 lead and continuation bytes,",
                             "whole multi-byte characters, invalid bytes. Written by make_seeds.py."],
               [b"\xc3", b"\xa9", b"\xc3\xa9", b"\xe2", b"\x82", b"\xe2\x82", b"\xe2\x82\xac", b"\xf0",
                b"\x9f", b"\xf0\x9f\x98", b"\xf0\x9f\x98\x80", b"\xed\xa0\x80", b"\xc0\xaf", b"\xff",
                b"\xfe", b"\xf8\x88\x80\x80\x80", b"\\\\", b"\\x", b"\n\n", b"</s>", b"User:"])
    write_dict("prompt.dict", ["libFuzzer dictionary for fuzz_prompt: Jinja syntax and the names chat",
                               "templates use, chat markup and special tokens. Written by make_seeds.py."],
               ["{%", "%}", "{%-", "-%}", "{{", "}}", "{#", "#}", " for ", " in ", " endfor ", " if ", " elif ",
                " else ", " endif ", " set ", " not ", " and ", " is defined", "messages", "message", "message['role']",
                "message['content']", "message.content", "messages[0]", "loop.index0", "loop.first", "loop.last",
                "add_generation_prompt", "bos_token", "eos_token", "raise_exception(", "|trim", "|length", "|tojson",
                "strftime_now(", "namespace(", "'system'", "'user'", "'assistant'", "<|im_start|>", "<|im_end|>",
                "[INST]", "[/INST]", "<<SYS>>", "<s>", "</s>", "<|user|>", "<|assistant|>", "\\n"])


def main():
    dictionaries()
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    config_seeds()
    stop_seeds()
    prompt_seeds()
    abi_seeds()


if __name__ == "__main__":
    main()
