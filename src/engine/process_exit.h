// What happens to live backend contexts when the host process exits (main
// returns, or exit() from any thread) or unloads this library (dlclose)
// without calling deinit_backend.
//
// Static destructors and atexit handlers run in the reverse order of their
// registration, each shared library's when it is unloaded or at exit. The
// engine's tables are never destroyed (a destructor would free llama.cpp
// state after llama.cpp's own statics are gone: the SIGSEGV in
// ~DecodeLoop -> llama_free this replaces); instead a teardown, registered
// once the first llama_context exists (after the llama.cpp and ggml statics
// that decoding uses, so that it runs before they are destroyed), closes
// every backend context, cancels their requests and stops every decode
// loop's thread and thread pools. After that no thread of this library
// runs, so unloading its code is safe, and from then on the engine frees
// nothing through llama.cpp: the process is ending, or a host that unloads
// the library without deinit_backend leaks what it left open rather than
// crashing.
#pragma once

namespace wnl {

// True once the teardown has begun.
bool process_exiting();

// Registers the teardown with this library's exit handlers (once).
void arm_exit_teardown();

}  // namespace wnl
