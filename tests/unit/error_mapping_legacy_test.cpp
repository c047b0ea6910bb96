// The engine Status -> legacy wasi_nn_error mapping (src/abi/legacy_errors.h)
// and the legacy public header's numbers and layout (SPEC §1).
//
// The two ABI headers define the same C names, so the WAMR 2.4 ABI is tested
// in error_mapping_wamr_test.cpp. Expectations here are literal numbers taken
// from SPEC §1, never the header's own enum names, so a wrong header fails.
#include "abi/legacy_errors.h"

#include <cstddef>
#include <cstdint>
#include <set>
#include <type_traits>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "engine/status.h"

namespace {

using wnl::Status;

// ---- the header against SPEC §1, at compile time ----
static_assert(success == 0, "legacy success");
static_assert(invalid_argument == 1, "legacy invalid_argument");
static_assert(invalid_encoding == 2, "legacy invalid_encoding");
static_assert(timeout == 3, "legacy timeout");
static_assert(runtime_error == 4, "legacy runtime_error");
static_assert(unsupported_operation == 5, "legacy unsupported_operation");
static_assert(too_large == 6, "legacy too_large");
static_assert(not_found == 7, "legacy not_found");
static_assert(security == 8, "legacy security");
static_assert(unknown == 9, "legacy unknown");
static_assert(end_of_sequence == 100, "legacy end_of_sequence");
static_assert(context_full == 101, "legacy context_full");
static_assert(prompt_tool_long == 102, "legacy prompt_tool_long");
static_assert(model_not_found == 103, "legacy model_not_found");

static_assert(fp16 == 0 && fp32 == 1 && fp64 == 2 && bf16 == 3 && u8 == 4 && i32 == 5 && i64 == 6,
              "legacy tensor types: fp16 0, fp32 1, fp64 2, bf16 3, u8 4, i32 5, i64 6");
// The text type in each numbering the legacy ABI accepts (issue #16): WAMR's
// ephemeral u8, the header's default, and the original header's up8
// (fp16 0, fp32 1, up8 2, ip32 3; tests/c/legacy_header_numbering_test.c).
static_assert(WASI_NN_EPHEMERAL_TENSOR_TYPE_U8 == u8, "ephemeral u8");
static_assert(WASI_NN_ORIGINAL_TENSOR_TYPE_UP8 == 2, "original up8");
static_assert(openvino == 0 && onnx == 1 && tensorflow == 2 && pytorch == 3 &&
                  tensorflowlite == 4 && ggml == 5 && autodetect == 6 && unknown_backend == 7,
              "legacy graph_encoding");
static_assert(cpu == 0 && gpu == 1 && tpu == 2, "legacy execution_target");

static_assert(static_cast<int>(wnl::abi::to_legacy(Status::ok)) == 0, "");
static_assert(static_cast<int>(wnl::abi::to_legacy(Status::timeout)) == 3, "");

// ---- layout: tensor { dimensions*, tensor_type (an int enum), uint8_t *data } ----
static_assert(std::is_same<tensor_data, uint8_t*>::value, "legacy tensor_data is a bare pointer");
static_assert(std::is_same<decltype(tensor::type), tensor_type>::value, "");
static_assert(sizeof(tensor_type) == sizeof(int), "tensor_type is an int-sized enum");
#if UINTPTR_MAX == 0xFFFFFFFFFFFFFFFFu
static_assert(offsetof(tensor, dimensions) == 0, "");
static_assert(offsetof(tensor, type) == 8, "");
static_assert(offsetof(tensor, data) == 16, "");
static_assert(sizeof(tensor) == 24, "");
#endif

// Every engine status with the number the legacy ABI must see (SPEC §1).
// This ABI has no missing_memory or busy code: both are runtime_error (4), as
// legacy_errors.h documents.
const std::vector<std::pair<Status, int>>& expected_legacy() {
    static const std::vector<std::pair<Status, int>> table = {
        {Status::ok, 0},
        {Status::invalid_argument, 1},
        {Status::invalid_encoding, 2},
        {Status::missing_memory, 4},
        {Status::busy, 4},
        {Status::timeout, 3},
        {Status::runtime_error, 4},
        {Status::unsupported_operation, 5},
        {Status::too_large, 6},
        {Status::not_found, 7},
        {Status::security, 8},
        {Status::end_of_sequence, 100},
        {Status::context_full, 101},
        {Status::prompt_too_long, 102},
        {Status::model_not_found, 103},
        {Status::path_refused, 8},
    };
    return table;
}

TEST(ErrorMappingLegacyTest, EveryStatusMapsToSpecNumber) {
    for (const auto& [status, number] : expected_legacy()) {
        EXPECT_EQ(static_cast<int>(wnl::abi::to_legacy(status)), number) << wnl::status_name(status);
    }
}

TEST(ErrorMappingLegacyTest, TableCoversEveryStatus) {
    const int last = static_cast<int>(Status::path_refused);
    std::set<int> seen;
    for (const auto& [status, number] : expected_legacy()) {
        (void)number;
        EXPECT_TRUE(seen.insert(static_cast<int>(status)).second) << wnl::status_name(status);
    }
    EXPECT_EQ(seen.size(), static_cast<size_t>(last + 1));
    EXPECT_EQ(*seen.begin(), 0);
    EXPECT_EQ(*seen.rbegin(), last);
}

TEST(ErrorMappingLegacyTest, SuccessOnlyForOk) {
    for (const auto& [status, number] : expected_legacy()) {
        (void)number;
        if (status == Status::ok) continue;
        EXPECT_NE(static_cast<int>(wnl::abi::to_legacy(status)), 0) << wnl::status_name(status);
    }
}

TEST(ErrorMappingLegacyTest, EveryResultIsAValidLegacyCode) {
    const std::set<int> valid = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100, 101, 102, 103};
    for (int i = 0; i <= static_cast<int>(Status::path_refused); ++i) {
        int n = static_cast<int>(wnl::abi::to_legacy(static_cast<Status>(i)));
        EXPECT_EQ(valid.count(n), 1u) << "status " << i << " -> " << n;
    }
}

TEST(ErrorMappingLegacyTest, OutOfRangeStatusIsUnknown) {
    EXPECT_EQ(static_cast<int>(wnl::abi::to_legacy(static_cast<Status>(999))), 9);
    EXPECT_EQ(static_cast<int>(wnl::abi::to_legacy(static_cast<Status>(-1))), 9);
}

TEST(ErrorMappingLegacyTest, HeaderNumbersMatchSpec) {
    EXPECT_EQ(static_cast<int>(success), 0);
    EXPECT_EQ(static_cast<int>(timeout), 3);
    EXPECT_EQ(static_cast<int>(runtime_error), 4);
    EXPECT_EQ(static_cast<int>(not_found), 7);
    EXPECT_EQ(static_cast<int>(security), 8);
    EXPECT_EQ(static_cast<int>(unknown), 9);
    EXPECT_EQ(static_cast<int>(prompt_tool_long), 102);
    EXPECT_EQ(static_cast<int>(u8), 4);
    EXPECT_EQ(static_cast<int>(bf16), 3);
    EXPECT_EQ(sizeof(wasi_nn_error), sizeof(int));
}

TEST(ErrorMappingLegacyTest, TensorLayout) {
    ASSERT_EQ(sizeof(void*), 8u) << "layout checks assume a 64-bit host";
    EXPECT_EQ(offsetof(tensor, dimensions), 0u);
    EXPECT_EQ(offsetof(tensor, type), 8u);
    EXPECT_EQ(offsetof(tensor, data), 16u);
    EXPECT_EQ(sizeof(tensor), 24u);
    EXPECT_EQ(WASI_NN_LEGACY_MAX_PROMPT, 16u * 1024u * 1024u);
}

}  // namespace
