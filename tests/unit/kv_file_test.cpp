// The KV file format (kv_file.h): what is written reads back exactly, and
// every way a file can be wrong is told apart before its bytes are used.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/kv_file.h"

using namespace wnl;

namespace {

std::string temp_dir() {
    char tmpl[] = "/tmp/wnl-kvfile-XXXXXX";
    const char* d = mkdtemp(tmpl);
    EXPECT_NE(d, nullptr);
    return d ? d : "/tmp";
}

KvFile sample(size_t n_tokens = 300, size_t n_bytes = 100000) {
    KvFile f;
    f.identity = "path=/m.gguf;bytes=1;mtime_ns=2;name=x";
    f.owner = "tenant-a\nchat-1";
    for (size_t i = 0; i < n_tokens; ++i) f.tokens.push_back(static_cast<llama_token>(i * 7919 % 32000));
    auto data = std::make_shared<std::vector<uint8_t>>(n_bytes);
    for (size_t i = 0; i < n_bytes; ++i) (*data)[i] = static_cast<uint8_t>(i * 131 + 7);
    f.data = data;
    return f;
}

std::vector<uint8_t> slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

KvRead read_back(const std::string& path, const KvFile& like, KvFile* out = nullptr, std::string* detail = nullptr) {
    KvFile tmp;
    std::string d;
    return read_kv_file(path, like.identity, like.owner, 1 << 30, out ? out : &tmp, detail ? detail : &d);
}

}  // namespace

TEST(KvFile, WhatIsWrittenReadsBackExactly) {
    const std::string dir = temp_dir();
    const std::string path = dir + "/1.kv";
    const KvFile f = sample();
    std::string err;
    ASSERT_EQ(write_kv_file(path, f, true, &err), Status::ok) << err;
    EXPECT_EQ(slurp(path).size(), kv_file_bytes(f));
    KvFile back;
    std::string detail;
    ASSERT_EQ(read_back(path, f, &back, &detail), KvRead::ok) << detail;
    EXPECT_EQ(back.identity, f.identity);
    EXPECT_EQ(back.owner, f.owner);
    EXPECT_EQ(back.tokens, f.tokens);
    ASSERT_TRUE(back.data);
    EXPECT_EQ(*back.data, *f.data);
    EXPECT_EQ(access((path + ".tmp").c_str(), F_OK), -1) << "the temporary file is gone after the rename";
}

TEST(KvFile, EmptyStateAndNoTokensRoundTrip) {
    const std::string path = temp_dir() + "/2.kv";
    KvFile f = sample(0, 0);
    std::string err;
    ASSERT_EQ(write_kv_file(path, f, false, &err), Status::ok) << err;
    KvFile back;
    ASSERT_EQ(read_back(path, f, &back), KvRead::ok);
    EXPECT_TRUE(back.tokens.empty());
    EXPECT_TRUE(back.data->empty());
}

TEST(KvFile, AMissingFileIsMissing) {
    EXPECT_EQ(read_back(temp_dir() + "/none.kv", sample()), KvRead::missing);
}

TEST(KvFile, EveryTruncationIsCaught) {
    const std::string path = temp_dir() + "/3.kv";
    const KvFile f = sample(50, 4000);
    std::string err;
    ASSERT_EQ(write_kv_file(path, f, false, &err), Status::ok);
    const std::vector<uint8_t> whole = slurp(path);
    // Within the header, within the identity, the tokens, the state, and
    // without only the checksum.
    for (size_t keep : {size_t(0), size_t(5), size_t(31), size_t(40), size_t(120), size_t(300), whole.size() / 2,
                        whole.size() - 4, whole.size() - 1}) {
        spit(path, std::vector<uint8_t>(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(keep)));
        std::string detail;
        const KvRead r = read_back(path, f, nullptr, &detail);
        EXPECT_EQ(r, KvRead::truncated) << "kept " << keep << " of " << whole.size() << ": " << kv_read_name(r) << " "
                                        << detail;
    }
}

TEST(KvFile, AFlippedBitAnywhereIsCaught) {
    const std::string path = temp_dir() + "/4.kv";
    const KvFile f = sample(64, 2048);
    std::string err;
    ASSERT_EQ(write_kv_file(path, f, false, &err), Status::ok);
    const std::vector<uint8_t> whole = slurp(path);
    const size_t id_at = 32, owner_at = id_at + f.identity.size(), tokens_at = owner_at + f.owner.size();
    const size_t data_at = tokens_at + 4 * f.tokens.size();
    struct Case {
        size_t at;
        KvRead expect;
    };
    const Case cases[] = {
        {0, KvRead::not_a_kv_file},           // magic
        {8, KvRead::other_version},           // version
        {12, KvRead::corrupt},                // identity length: the sizes no longer add up
        {id_at + 3, KvRead::wrong_model},     // identity text
        {owner_at + 1, KvRead::wrong_owner},  // owner text
        {tokens_at + 5, KvRead::corrupt},     // a token
        {data_at, KvRead::corrupt},           // the state, first byte
        {data_at + 1000, KvRead::corrupt},    // the state, middle
        {whole.size() - 5, KvRead::corrupt},  // the state, last byte
        {whole.size() - 2, KvRead::corrupt},  // the checksum itself
    };
    for (const Case& c : cases) {
        for (int bit : {0, 7}) {
            std::vector<uint8_t> bad = whole;
            bad[c.at] ^= static_cast<uint8_t>(1u << bit);
            spit(path, bad);
            std::string detail;
            const KvRead r = read_back(path, f, nullptr, &detail);
            EXPECT_NE(r, KvRead::ok) << "byte " << c.at << " bit " << bit;
            if (c.at == 12) {  // longer than the file (truncated) or shorter (corrupt)
                EXPECT_TRUE(r == KvRead::truncated || r == KvRead::corrupt) << kv_read_name(r);
            } else {
                EXPECT_EQ(r, c.expect) << "byte " << c.at << " bit " << bit << ": " << kv_read_name(r) << " " << detail;
            }
        }
    }
}

TEST(KvFile, AnotherModelOrSessionIsRefused) {
    const std::string path = temp_dir() + "/5.kv";
    const KvFile f = sample();
    std::string err;
    ASSERT_EQ(write_kv_file(path, f, false, &err), Status::ok);
    KvFile out;
    std::string detail;
    EXPECT_EQ(read_kv_file(path, f.identity + "x", f.owner, 1 << 30, &out, &detail), KvRead::wrong_model);
    EXPECT_EQ(read_kv_file(path, f.identity, "tenant-b\nchat-1", 1 << 30, &out, &detail), KvRead::wrong_owner);
    EXPECT_EQ(read_kv_file(path, f.identity, f.owner, 1000, &out, &detail), KvRead::too_large);
    EXPECT_FALSE(out.data) << "nothing is handed out from a refused file";
}

TEST(KvFile, TheIdentityNamesEveryField) {
    KvModelIdentity base;
    base.path = "/models/a.gguf";
    base.file_bytes = 100;
    base.file_mtime_ns = 5;
    base.name = "a";
    base.architecture = "llama";
    base.n_vocab = 32000;
    base.n_embd = 576;
    base.n_layer = 30;
    base.cache_type_k = "f16";
    base.cache_type_v = "f16";
    base.flash_attn = "auto";
    base.ctx_per_seq = 4096;
    base.llama_commit = "abc";
    const std::string id = kv_identity_string(base);
    std::vector<KvModelIdentity> changed(13, base);
    changed[0].path = "/models/b.gguf";
    changed[1].file_bytes = 101;
    changed[2].file_mtime_ns = 6;
    changed[3].name = "b";
    changed[4].architecture = "qwen2";
    changed[5].n_vocab = 32001;
    changed[6].n_embd = 577;
    changed[7].n_layer = 31;
    changed[8].cache_type_k = "q8_0";
    changed[9].cache_type_v = "q8_0";
    changed[10].flash_attn = "on";
    changed[11].ctx_per_seq = 2048;
    changed[12].llama_commit = "abd";
    for (size_t i = 0; i < changed.size(); ++i) EXPECT_NE(kv_identity_string(changed[i]), id) << "field " << i;
    EXPECT_EQ(kv_identity_string(base), id);
}

TEST(KvFile, ATemporaryFileLeavesTheOldOneReadableUntilPublished) {
    const std::string dir = temp_dir();
    const std::string path = dir + "/6.kv";
    const KvFile old_f = sample(10, 100), new_f = sample(20, 200);
    std::string err;
    ASSERT_EQ(write_kv_file(path, old_f, false, &err), Status::ok);
    ASSERT_EQ(write_kv_temp(path + ".tmp", new_f, true, &err), Status::ok);
    KvFile back;
    ASSERT_EQ(read_back(path, old_f, &back), KvRead::ok);
    EXPECT_EQ(back.tokens.size(), 10u);
    ASSERT_EQ(publish_kv_file(path + ".tmp", path, true, &err), Status::ok) << err;
    ASSERT_EQ(read_back(path, new_f, &back), KvRead::ok);
    EXPECT_EQ(back.tokens.size(), 20u);
}

TEST(KvFile, AnUnwritableDirectoryIsAnError) {
    std::string err;
    EXPECT_EQ(write_kv_file("/nonexistent-dir-wnl/1.kv", sample(), false, &err), Status::runtime_error);
    EXPECT_NE(err.find("cannot create"), std::string::npos) << err;
}
