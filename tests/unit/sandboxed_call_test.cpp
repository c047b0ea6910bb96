// run_sandboxed: each bound (time, output, memory) and a crash end in an
// error for the caller, never in the caller's process.
#include <csignal>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/sandboxed_call.h"

using wnl::run_sandboxed;
using wnl::SandboxBounds;
using wnl::Status;

TEST(SandboxedCall, ReturnsTheOutput) {
    std::string out, err;
    Status st = run_sandboxed(
        [](std::string* o, std::string*) {
            *o = std::string(100000, 'x') + "end";
            return Status::ok;
        },
        SandboxBounds{}, &out, &err);
    ASSERT_EQ(st, Status::ok) << err;
    EXPECT_EQ(out.size(), 100003u);
    EXPECT_EQ(out.substr(out.size() - 3), "end");
}

TEST(SandboxedCall, ReturnsTheWorksOwnError) {
    std::string out = "untouched", err;
    Status st = run_sandboxed(
        [](std::string*, std::string* e) {
            *e = "template does not parse";
            return Status::invalid_argument;
        },
        SandboxBounds{}, &out, &err);
    EXPECT_EQ(st, Status::invalid_argument);
    EXPECT_EQ(err, "template does not parse");
    EXPECT_EQ(out, "untouched");
}

TEST(SandboxedCall, EndlessWorkIsKilledAtTheTimeBound) {
    SandboxBounds b;
    b.time_ms = 300;
    std::string out, err;
    Status st = run_sandboxed(
        [](std::string*, std::string*) {
            for (volatile uint64_t i = 0;; i = i + 1) {
            }
            return Status::ok;
        },
        b, &out, &err);
    EXPECT_EQ(st, Status::invalid_argument);
    EXPECT_NE(err.find("time bound"), std::string::npos) << err;
}

TEST(SandboxedCall, OutputPastItsBoundIsRefused) {
    SandboxBounds b;
    b.max_output = 1 << 20;
    std::string out, err;
    Status st = run_sandboxed(
        [](std::string* o, std::string*) {
            *o = std::string(3u << 20, 'y');
            return Status::ok;
        },
        b, &out, &err);
    EXPECT_EQ(st, Status::invalid_argument);
    EXPECT_NE(err.find("output"), std::string::npos) << err;
    EXPECT_TRUE(out.empty());
}

TEST(SandboxedCall, GrowingWithoutEndStopsAtTheMemoryBound) {
    SandboxBounds b;
    b.max_memory = 64u << 20;
    b.time_ms = 20000;  // the bound that acts must be the memory one
    std::string out, err;
    Status st = run_sandboxed(
        [](std::string*, std::string*) {
            std::vector<std::string> hoard;
            for (;;) hoard.emplace_back(8u << 20, 'z');
            return Status::ok;
        },
        b, &out, &err);
    EXPECT_EQ(st, Status::invalid_argument);
    EXPECT_FALSE(err.empty());
    EXPECT_EQ(err.find("time bound"), std::string::npos) << err;
}

TEST(SandboxedCall, ACrashInTheChildIsAnError) {
    std::string out, err;
    Status st = run_sandboxed(
        [](std::string*, std::string*) {
            std::raise(SIGKILL);
            return Status::ok;
        },
        SandboxBounds{}, &out, &err);
    EXPECT_EQ(st, Status::invalid_argument);
    EXPECT_NE(err.find("signal"), std::string::npos) << err;
}

static int recurse(int depth) {
    volatile char pad[4096];
    pad[0] = static_cast<char>(depth);
    return depth > 1000000000 ? pad[0] : recurse(depth + 1) + pad[0];
}

TEST(SandboxedCall, StackOverflowInTheChildIsAnError) {
    std::string out, err;
    Status st = run_sandboxed(
        [](std::string* o, std::string*) {
            *o = std::to_string(recurse(0));
            return Status::ok;
        },
        SandboxBounds{}, &out, &err);
    EXPECT_EQ(st, Status::invalid_argument);
    EXPECT_FALSE(err.empty());
}
