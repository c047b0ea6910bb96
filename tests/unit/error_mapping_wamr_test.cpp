// The engine Status -> WAMR 2.4 wasi_nn_error mapping (src/abi/wamr_errors.h)
// and the WAMR 2.4 public header's numbers and layout (SPEC §1).
//
// The two ABI headers define the same C names, so the legacy ABI is tested in
// error_mapping_legacy_test.cpp. Expectations here are literal numbers taken
// from SPEC §1, never the header's own enum names, so a wrong header fails.
#include "abi/wamr_errors.h"

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "engine/status.h"

namespace {

using wnl::Status;

// ---- the header against SPEC §1, at compile time ----
static_assert(success == 0, "WAMR success");
static_assert(invalid_argument == 1, "WAMR invalid_argument");
static_assert(invalid_encoding == 2, "WAMR invalid_encoding");
static_assert(missing_memory == 3, "WAMR missing_memory");
static_assert(busy == 4, "WAMR busy");
static_assert(runtime_error == 5, "WAMR runtime_error");
static_assert(unsupported_operation == 6, "WAMR unsupported_operation");
static_assert(too_large == 7, "WAMR too_large");
static_assert(not_found == 8, "WAMR not_found");
static_assert(end_of_sequence == 100, "WAMR end_of_sequence");
static_assert(context_full == 101, "WAMR context_full");
static_assert(prompt_tool_long == 102, "WAMR prompt_tool_long");
static_assert(model_not_found == 103, "WAMR model_not_found");

static_assert(fp16 == 0 && fp32 == 1 && fp64 == 2 && u8 == 3 && i32 == 4 && i64 == 5,
              "WAMR tensor types: fp16 0, fp32 1, fp64 2, u8 3, i32 4, i64 5");
static_assert(openvino == 0 && onnx == 1 && tensorflow == 2 && pytorch == 3 &&
                  tensorflowlite == 4 && ggml == 5 && autodetect == 6 && unknown_backend == 7,
              "WAMR graph_encoding");
static_assert(cpu == 0 && gpu == 1 && tpu == 2, "WAMR execution_target");
static_assert(BACKEND_STATUS_QUEUE == 0 && BACKEND_STATUS_MEMORY == 1 &&
                  BACKEND_STATUS_SESSIONS == 2 && BACKEND_STATUS_PERFORMANCE == 3 &&
                  BACKEND_STATUS_MODEL == 4,
              "backend_status_type");

// The mapping is usable at compile time and right there too.
static_assert(static_cast<int>(wnl::abi::to_wamr(Status::ok)) == 0, "");
static_assert(static_cast<int>(wnl::abi::to_wamr(Status::prompt_too_long)) == 102, "");

// ---- layout: WAMR 2.4's host-side structs, byte for byte ----
static_assert(std::is_same<decltype(tensor::type), uint8_t>::value, "tensor.type is a uint8_t");
static_assert(std::is_same<decltype(tensor::data), tensor_data>::value, "tensor.data is a tensor_data");
static_assert(std::is_same<decltype(tensor_data::buf), uint8_t*>::value, "");
static_assert(std::is_same<decltype(tensor_data::size), uint32_t>::value, "");
static_assert(std::is_same<decltype(tensor_dimensions::buf), uint32_t*>::value, "");
static_assert(std::is_same<decltype(tensor_dimensions::size), uint32_t>::value, "");
static_assert(std::is_same<graph, uint32_t>::value && std::is_same<graph_execution_context, uint32_t>::value, "");

#if UINTPTR_MAX == 0xFFFFFFFFFFFFFFFFu
static_assert(offsetof(tensor, dimensions) == 0, "");
static_assert(offsetof(tensor, type) == 8, "");
static_assert(offsetof(tensor, data) == 16, "");
static_assert(sizeof(tensor) == 32, "");
static_assert(offsetof(tensor_data, buf) == 0, "");
static_assert(offsetof(tensor_data, size) == 8, "");
static_assert(sizeof(tensor_data) == 16, "");
static_assert(offsetof(tensor_dimensions, buf) == 0 && offsetof(tensor_dimensions, size) == 8, "");
static_assert(sizeof(tensor_dimensions) == 16, "");
static_assert(offsetof(graph_builder, buf) == 0 && offsetof(graph_builder, size) == 8, "");
static_assert(sizeof(graph_builder) == 16 && sizeof(graph_builder_array) == 16, "");
#endif

// Every engine status with the number WAMR 2.4 must see (SPEC §1).
// WAMR has no timeout or security code: timeout is reported as busy (4) and
// security as invalid_argument (1), as wamr_errors.h documents; a path the
// host's policy refuses is not_found (8), never model_not_found.
const std::vector<std::pair<Status, int>>& expected_wamr() {
    static const std::vector<std::pair<Status, int>> table = {
        {Status::ok, 0},
        {Status::invalid_argument, 1},
        {Status::invalid_encoding, 2},
        {Status::missing_memory, 3},
        {Status::busy, 4},
        {Status::timeout, 4},
        {Status::runtime_error, 5},
        {Status::unsupported_operation, 6},
        {Status::too_large, 7},
        {Status::not_found, 8},
        {Status::security, 1},
        {Status::end_of_sequence, 100},
        {Status::context_full, 101},
        {Status::prompt_too_long, 102},
        {Status::model_not_found, 103},
        {Status::path_refused, 8},
    };
    return table;
}

TEST(ErrorMappingWamrTest, EveryStatusMapsToSpecNumber) {
    for (const auto& [status, number] : expected_wamr()) {
        EXPECT_EQ(static_cast<int>(wnl::abi::to_wamr(status)), number) << wnl::status_name(status);
    }
}

TEST(ErrorMappingWamrTest, TableCoversEveryStatus) {
    // Status values are contiguous from ok to path_refused; the table must
    // name each exactly once, so a new Status forces a decision here.
    const int last = static_cast<int>(Status::path_refused);
    std::set<int> seen;
    for (const auto& [status, number] : expected_wamr()) {
        (void)number;
        EXPECT_TRUE(seen.insert(static_cast<int>(status)).second) << wnl::status_name(status);
    }
    EXPECT_EQ(seen.size(), static_cast<size_t>(last + 1));
    EXPECT_EQ(*seen.begin(), 0);
    EXPECT_EQ(*seen.rbegin(), last);
}

TEST(ErrorMappingWamrTest, SuccessOnlyForOk) {
    for (const auto& [status, number] : expected_wamr()) {
        (void)number;
        if (status == Status::ok) continue;
        EXPECT_NE(static_cast<int>(wnl::abi::to_wamr(status)), 0) << wnl::status_name(status);
    }
}

TEST(ErrorMappingWamrTest, EveryResultIsAValidWamrCode) {
    const std::set<int> valid = {0, 1, 2, 3, 4, 5, 6, 7, 8, 100, 101, 102, 103};
    for (int i = 0; i <= static_cast<int>(Status::path_refused); ++i) {
        int n = static_cast<int>(wnl::abi::to_wamr(static_cast<Status>(i)));
        EXPECT_EQ(valid.count(n), 1u) << "status " << i << " -> " << n;
    }
}

TEST(ErrorMappingWamrTest, OutOfRangeStatusIsRuntimeError) {
    EXPECT_EQ(static_cast<int>(wnl::abi::to_wamr(static_cast<Status>(999))), 5);
    EXPECT_EQ(static_cast<int>(wnl::abi::to_wamr(static_cast<Status>(-1))), 5);
}

TEST(ErrorMappingWamrTest, HeaderNumbersMatchSpec) {
    // The same checks as the static_asserts, visible in the test report.
    EXPECT_EQ(static_cast<int>(success), 0);
    EXPECT_EQ(static_cast<int>(missing_memory), 3);
    EXPECT_EQ(static_cast<int>(busy), 4);
    EXPECT_EQ(static_cast<int>(runtime_error), 5);
    EXPECT_EQ(static_cast<int>(not_found), 8);
    EXPECT_EQ(static_cast<int>(end_of_sequence), 100);
    EXPECT_EQ(static_cast<int>(model_not_found), 103);
    EXPECT_EQ(static_cast<int>(u8), 3);
    EXPECT_EQ(sizeof(wasi_nn_error), sizeof(int));
}

TEST(ErrorMappingWamrTest, TensorLayout) {
    ASSERT_EQ(sizeof(void*), 8u) << "layout checks assume a 64-bit host";
    EXPECT_EQ(offsetof(tensor, dimensions), 0u);
    EXPECT_EQ(offsetof(tensor, type), 8u);
    EXPECT_EQ(offsetof(tensor, data), 16u);
    EXPECT_EQ(sizeof(tensor), 32u);
    EXPECT_EQ(offsetof(tensor_data, buf), 0u);
    EXPECT_EQ(offsetof(tensor_data, size), 8u);
    EXPECT_EQ(sizeof(tensor_data), 16u);
    EXPECT_EQ(sizeof(tensor::type), 1u);
}

TEST(StatusNameTest, DistinctNamesForAllValues) {
    std::set<std::string> names;
    const int last = static_cast<int>(Status::path_refused);
    for (int i = 0; i <= last; ++i) {
        const char* name = wnl::status_name(static_cast<Status>(i));
        ASSERT_NE(name, nullptr) << i;
        EXPECT_STRNE(name, "") << i;
        EXPECT_STRNE(name, "unknown") << i;
        EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name << " for " << i;
    }
    EXPECT_EQ(names.size(), static_cast<size_t>(last + 1));
}

TEST(StatusNameTest, NamesMatchEnumerators) {
    EXPECT_STREQ(wnl::status_name(Status::ok), "ok");
    EXPECT_STREQ(wnl::status_name(Status::invalid_argument), "invalid_argument");
    EXPECT_STREQ(wnl::status_name(Status::busy), "busy");
    EXPECT_STREQ(wnl::status_name(Status::timeout), "timeout");
    EXPECT_STREQ(wnl::status_name(Status::context_full), "context_full");
    EXPECT_STREQ(wnl::status_name(Status::prompt_too_long), "prompt_too_long");
    EXPECT_STREQ(wnl::status_name(Status::model_not_found), "model_not_found");
    EXPECT_STREQ(wnl::status_name(Status::path_refused), "path_refused");
}

TEST(StatusNameTest, OutOfRangeValueHasPrintableName) {
    const char* name = wnl::status_name(static_cast<Status>(12345));
    ASSERT_NE(name, nullptr);
    EXPECT_STREQ(name, "unknown");
}

}  // namespace
