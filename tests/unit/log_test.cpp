// Unit tests of the process-wide logger (src/engine/log.cpp, SPEC §3 "Logging").
#include "engine/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "llama.h"

namespace fs = std::filesystem;
using nlohmann::json;
using wnl::LogField;
using wnl::LoggingConfig;
using wnl::LogLevel;
using wnl::Status;

namespace {

// Redirects a file descriptor (1 or 2) into a temporary file for the
// object's lifetime; finish() restores it and returns what was written.
class FdCapture {
public:
    explicit FdCapture(int fd) : fd_(fd) {
        std::fflush(nullptr);
        char tmpl[] = "/tmp/wnl_log_capture_XXXXXX";
        tmp_fd_ = ::mkstemp(tmpl);
        path_ = tmpl;
        saved_ = ::dup(fd_);
        ::dup2(tmp_fd_, fd_);
    }
    ~FdCapture() { finish(); }

    std::string finish() {
        if (done_) return text_;
        done_ = true;
        std::fflush(nullptr);
        ::dup2(saved_, fd_);
        ::close(saved_);
        ::close(tmp_fd_);
        std::ifstream in(path_, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        text_ = ss.str();
        ::unlink(path_.c_str());
        return text_;
    }

private:
    int fd_;
    int saved_ = -1;
    int tmp_fd_ = -1;
    std::string path_;
    bool done_ = false;
    std::string text_;
};

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    size_t start = 0;
    while (start < text.size()) {
        const size_t nl = text.find('\n', start);
        if (nl == std::string::npos) {
            lines.push_back(text.substr(start));  // an unterminated tail
            break;
        }
        lines.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    return lines;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

const std::regex& text_line_re() {
    static const std::regex re(
        R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (DEBUG|INFO |WARN |ERROR) \[[^\]]*\].*$)");
    return re;
}

const std::regex& ts_re() {
    static const std::regex re(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$)");
    return re;
}

// Seconds between the timestamp's whole-second part and now.
double ts_age_seconds(const std::string& ts) {
    struct tm tm_utc {};
    if (strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm_utc) == nullptr) return 1e9;
    const time_t t = timegm(&tm_utc);
    return std::difftime(std::time(nullptr), t);
}

// Number of this process's descriptors open on `path`.
int open_fds_on(const std::string& path) {
    const std::string want = fs::weakly_canonical(path).string();
    int count = 0;
    DIR* d = ::opendir("/proc/self/fd");
    if (d == nullptr) return -1;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        char target[4096];
        const std::string link = std::string("/proc/self/fd/") + e->d_name;
        const ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
        if (n <= 0) continue;
        target[n] = '\0';
        if (want == target) ++count;
    }
    ::closedir(d);
    return count;
}

ggml_log_callback installed_llama_callback() {
    ggml_log_callback cb = nullptr;
    void* ud = nullptr;
    llama_log_get(&cb, &ud);
    return cb;
}

class LogTest : public ::testing::Test {
protected:
    void SetUp() override {
        wnl::reset_logging();
        char tmpl[] = "/tmp/wnl_log_test_XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        wnl::reset_logging();
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::string path(const std::string& name) const { return dir_ + "/" + name; }

    static LoggingConfig file_config(const std::string& file, LogLevel level = LogLevel::info,
                                     bool json_format = false) {
        LoggingConfig c;
        c.file = file;
        c.level = level;
        c.json = json_format;
        return c;
    }

    std::string dir_;
};

// ---------------------------------------------------------------------------
// Defaults and the text format

TEST_F(LogTest, DefaultsAreInfoTextToStderr) {
    EXPECT_FALSE(wnl::log_enabled(LogLevel::debug, "engine"));
    EXPECT_TRUE(wnl::log_enabled(LogLevel::info, "engine"));
    EXPECT_TRUE(wnl::log_enabled(LogLevel::warn, "anything"));
    EXPECT_TRUE(wnl::log_enabled(LogLevel::error, "anything"));
    EXPECT_FALSE(wnl::log_enabled(LogLevel::none, "engine"));

    FdCapture out(1);
    FdCapture err(2);
    wnl::log(LogLevel::info, "engine", "hello",
             {{"n", 42}, {"s", "two words"}, {"b", true}, {"x", 1.5}, {"neg", -7}});
    wnl::log(LogLevel::debug, "engine", "not shown");
    const std::string e = err.finish();
    EXPECT_EQ(out.finish(), "");

    const auto lines = split_lines(e);
    ASSERT_EQ(lines.size(), 1u) << e;
    EXPECT_EQ(e.back(), '\n');
    const std::regex re(
        R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z INFO  \[engine\] hello n=42 s="two words" b=true x=1.5 neg=-7$)");
    EXPECT_TRUE(std::regex_match(lines[0], re)) << lines[0];
    EXPECT_LE(std::fabs(ts_age_seconds(lines[0].substr(0, 19))), 5.0) << lines[0];
}

TEST_F(LogTest, TextLevelNamesArePadded) {
    LoggingConfig c;
    c.level = LogLevel::debug;
    ASSERT_EQ(wnl::configure_logging(c, nullptr), Status::ok);
    FdCapture err(2);
    wnl::log(LogLevel::debug, "c", "d");
    wnl::log(LogLevel::info, "c", "i");
    wnl::log(LogLevel::warn, "c", "w");
    wnl::log(LogLevel::error, "c", "e");
    const auto lines = split_lines(err.finish());
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_EQ(lines[0].substr(24), " DEBUG [c] d");
    EXPECT_EQ(lines[1].substr(24), " INFO  [c] i");
    EXPECT_EQ(lines[2].substr(24), " WARN  [c] w");
    EXPECT_EQ(lines[3].substr(24), " ERROR [c] e");
}

TEST_F(LogTest, TextQuotesAndEscapesValues) {
    FdCapture err(2);
    wnl::log(LogLevel::info, "engine", "two\nlines\tand\x01" "ctl",
             {{"q", "say \"hi\"\nthere"},
              {"e", ""},
              {"w", "word"},
              {"eq", "a=b"},
              {"bs", "C:\\dir"},
              {"utf", "h\xc3\xa9llo"},
              {"bad", "x\xffy"},
              {"sv", std::string_view("view value")},
              {"str", std::string("std string")}});
    const std::string e = err.finish();
    const auto lines = split_lines(e);
    ASSERT_EQ(lines.size(), 1u) << e;
    const std::string& l = lines[0];
    const std::string expected_tail =
        " INFO  [engine] two\\nlines\\tand\\x01ctl"
        " q=\"say \\\"hi\\\"\\nthere\""
        " e=\"\""
        " w=word"
        " eq=\"a=b\""
        " bs=\"C:\\\\dir\""
        " utf=h\xc3\xa9llo"
        " bad=\"x\\xffy\""
        " sv=\"view value\""
        " str=\"std string\"";
    ASSERT_GE(l.size(), 24u);
    EXPECT_EQ(l.substr(24), expected_tail);
    EXPECT_TRUE(std::regex_match(l.substr(0, 24), std::regex(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$)")));
}

TEST_F(LogTest, EmptyMessageWithFields) {
    FdCapture err(2);
    wnl::log(LogLevel::info, "c", "", {{"k", 1}});
    const auto lines = split_lines(err.finish());
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].substr(24), " INFO  [c] k=1");
}

// ---------------------------------------------------------------------------
// LogField values

TEST_F(LogTest, DoubleFieldsUseUpToThreeDecimals) {
    EXPECT_EQ(LogField("x", 12.345).value, "12.345");
    EXPECT_EQ(LogField("x", 12.3456).value, "12.346");
    EXPECT_EQ(LogField("x", 1.5).value, "1.5");
    EXPECT_EQ(LogField("x", 2.0).value, "2");
    EXPECT_EQ(LogField("x", 100.0).value, "100");
    EXPECT_EQ(LogField("x", 0.1).value, "0.1");
    EXPECT_EQ(LogField("x", -3.25).value, "-3.25");
    EXPECT_EQ(LogField("x", 0.0001).value, "0");
    EXPECT_EQ(LogField("x", -0.0001).value, "0");
    EXPECT_EQ(LogField("x", 0.0).value, "0");
    EXPECT_EQ(LogField("x", 1e15).value, "1000000000000000");
    EXPECT_EQ(LogField("x", 2.5f).value, "2.5");
    EXPECT_FALSE(LogField("x", 12.345).quoted);

    const LogField nan_f("x", std::nan(""));
    EXPECT_EQ(nan_f.value, "nan");
    EXPECT_TRUE(nan_f.quoted);
    const LogField inf_f("x", std::numeric_limits<double>::infinity());
    EXPECT_EQ(inf_f.value, "inf");
    EXPECT_TRUE(inf_f.quoted);
    EXPECT_EQ(LogField("x", -std::numeric_limits<double>::infinity()).value, "-inf");

    // The largest double still formats completely.
    const std::string big = LogField("x", std::numeric_limits<double>::max()).value;
    EXPECT_EQ(big.size(), 309u);
    EXPECT_EQ(big.substr(0, 5), "17976");
}

TEST_F(LogTest, IntegerAndBoolFields) {
    EXPECT_EQ(LogField("n", 0).value, "0");
    EXPECT_EQ(LogField("n", -5).value, "-5");
    EXPECT_EQ(LogField("n", std::numeric_limits<uint64_t>::max()).value, "18446744073709551615");
    EXPECT_EQ(LogField("n", std::numeric_limits<int64_t>::min()).value, "-9223372036854775808");
    EXPECT_EQ(LogField("n", static_cast<uint32_t>(7)).value, "7");
    EXPECT_FALSE(LogField("n", 3).quoted);
    EXPECT_EQ(LogField("b", false).value, "false");
    EXPECT_FALSE(LogField("b", true).quoted);
    EXPECT_TRUE(LogField("s", "text").quoted);
    EXPECT_EQ(LogField("s", static_cast<const char*>(nullptr)).value, "");
}

// ---------------------------------------------------------------------------
// JSON format

TEST_F(LogTest, JsonLinesCarryTsLevelComponentMsgAndFields) {
    const std::string file = path("j.log");
    ASSERT_EQ(wnl::configure_logging(file_config(file, LogLevel::debug, true), nullptr), Status::ok);
    wnl::log(LogLevel::info, "sched", "queued",
             {{"id", 17}, {"prio", "high"}, {"ok", true}, {"wait_ms", 12.345},
              {"big", std::numeric_limits<uint64_t>::max()}, {"nan", std::nan("")},
              {"inf", -std::numeric_limits<double>::infinity()}, {"neg", -3}});
    wnl::log(LogLevel::debug, "model", "loaded");
    wnl::log(LogLevel::warn, "model", "slow");
    wnl::log(LogLevel::error, "abi", "bad handle", {{"handle", 3}});
    wnl::reset_logging();

    const std::string text = read_file(file);
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    const auto lines = split_lines(text);
    ASSERT_EQ(lines.size(), 4u) << text;

    const json j = json::parse(lines[0]);
    ASSERT_TRUE(j.is_object());
    ASSERT_TRUE(j["ts"].is_string());
    EXPECT_TRUE(std::regex_match(j["ts"].get<std::string>(), ts_re())) << j["ts"];
    EXPECT_LE(std::fabs(ts_age_seconds(j["ts"].get<std::string>())), 5.0);
    EXPECT_EQ(j["level"], "info");
    EXPECT_EQ(j["component"], "sched");
    EXPECT_EQ(j["msg"], "queued");
    ASSERT_TRUE(j["id"].is_number_integer());
    EXPECT_EQ(j["id"].get<int>(), 17);
    EXPECT_EQ(j["prio"], "high");
    ASSERT_TRUE(j["ok"].is_boolean());
    EXPECT_TRUE(j["ok"].get<bool>());
    ASSERT_TRUE(j["wait_ms"].is_number_float());
    EXPECT_DOUBLE_EQ(j["wait_ms"].get<double>(), 12.345);
    ASSERT_TRUE(j["big"].is_number_unsigned());
    EXPECT_EQ(j["big"].get<uint64_t>(), std::numeric_limits<uint64_t>::max());
    EXPECT_EQ(j["nan"], "nan");
    EXPECT_EQ(j["inf"], "-inf");
    EXPECT_EQ(j["neg"].get<int>(), -3);
    // The fixed keys come first, in order.
    EXPECT_EQ(lines[0].rfind("{\"ts\":\"", 0), 0u);
    EXPECT_NE(lines[0].find("\",\"level\":\"info\",\"component\":\"sched\",\"msg\":\"queued\","),
              std::string::npos);

    const json d = json::parse(lines[1]);
    EXPECT_EQ(d["level"], "debug");
    EXPECT_EQ(d["component"], "model");
    EXPECT_EQ(d["msg"], "loaded");
    EXPECT_EQ(d.size(), 4u);
    EXPECT_EQ(json::parse(lines[2])["level"], "warn");
    const json e = json::parse(lines[3]);
    EXPECT_EQ(e["level"], "error");
    EXPECT_EQ(e["handle"], 3);
}

TEST_F(LogTest, JsonEscapesControlQuotesAndInvalidUtf8) {
    const std::string file = path("esc.log");
    ASSERT_EQ(wnl::configure_logging(file_config(file, LogLevel::info, true), nullptr), Status::ok);
    const std::string msg =
        std::string("q\"b\\n\nt\tc\x01" "d\x7f" "e\xff" "f\xe2\x82" "g\xc0\xaf" "h\xed\xa0\x80"
                    "i\xf4\x90\x80\x80" "j") +
        std::string("\0z", 2) + "\r\b\f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    LogField raw("raw", "x");
    raw.quoted = false;
    raw.value = "not json";  // an unquoted field that is not a JSON literal
    wnl::log(LogLevel::info, "comp\"\n", msg,
             {{"k\"ey", "v\x1f" "al\xfe"}, {"msg", "shadow"}, raw});
    wnl::reset_logging();

    const std::string text = read_file(file);
    const auto lines = split_lines(text);
    ASSERT_EQ(lines.size(), 1u) << text;
    // Only the terminating newline is a control character.
    for (unsigned char c : lines[0]) {
        EXPECT_TRUE(c >= 0x20 && c != 0x7f) << "raw control byte " << int(c);
    }
    const std::string fffd = "\xef\xbf\xbd";
    const std::string expected =
        std::string("q\"b\\n\nt\tc\x01" "d\x7f" "e") + fffd + "f" + fffd + fffd + "g" + fffd + fffd +
        "h" + fffd + fffd + fffd + "i" + fffd + fffd + fffd + fffd + "j" + std::string("\0z", 2) +
        "\r\b\f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    json j;
    ASSERT_NO_THROW(j = json::parse(lines[0])) << lines[0];  // nlohmann rejects invalid UTF-8
    EXPECT_EQ(j["msg"].get<std::string>(), expected);
    EXPECT_EQ(j["component"], "comp\"\n");
    EXPECT_EQ(j["k\"ey"], "v\x1f" "al" + fffd);
    EXPECT_EQ(j["_msg"], "shadow");  // a field may not overwrite the message
    EXPECT_EQ(j["raw"], "not json");
    // Valid multi-byte UTF-8 is passed through unescaped.
    EXPECT_NE(lines[0].find("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), std::string::npos);
    EXPECT_NE(lines[0].find("\\u0000z"), std::string::npos);
    EXPECT_NE(lines[0].find("\\u0001"), std::string::npos);
}

// ---------------------------------------------------------------------------
// Levels

TEST_F(LogTest, LevelFiltering) {
    struct Case {
        LogLevel level;
        std::vector<std::string> shown;
    };
    const std::vector<Case> cases = {
        {LogLevel::debug, {"m-debug", "m-info", "m-warn", "m-error"}},
        {LogLevel::info, {"m-info", "m-warn", "m-error"}},
        {LogLevel::warn, {"m-warn", "m-error"}},
        {LogLevel::error, {"m-error"}},
    };
    for (const Case& c : cases) {
        LoggingConfig cfg;
        cfg.level = c.level;
        ASSERT_EQ(wnl::configure_logging(cfg, nullptr), Status::ok);
        EXPECT_EQ(wnl::log_enabled(LogLevel::debug, "x"), c.level <= LogLevel::debug);
        EXPECT_EQ(wnl::log_enabled(LogLevel::info, "x"), c.level <= LogLevel::info);
        EXPECT_EQ(wnl::log_enabled(LogLevel::warn, "x"), c.level <= LogLevel::warn);
        EXPECT_TRUE(wnl::log_enabled(LogLevel::error, "x"));
        FdCapture err(2);
        wnl::log(LogLevel::debug, "x", "m-debug");
        wnl::log(LogLevel::info, "x", "m-info");
        wnl::log(LogLevel::warn, "x", "m-warn");
        wnl::log(LogLevel::error, "x", "m-error");
        const auto lines = split_lines(err.finish());
        ASSERT_EQ(lines.size(), c.shown.size()) << "level " << static_cast<int>(c.level);
        for (size_t i = 0; i < lines.size(); ++i) {
            EXPECT_TRUE(std::regex_match(lines[i], text_line_re())) << lines[i];
            EXPECT_EQ(lines[i].substr(lines[i].size() - c.shown[i].size()), c.shown[i]);
        }
    }
}

TEST_F(LogTest, NonePrintsNothingAnywhere) {
    const std::string file = path("none.log");
    LoggingConfig cfg;
    cfg.level = LogLevel::none;
    cfg.llama_log = true;
    cfg.llama_debug_log = true;
    ASSERT_EQ(wnl::configure_logging(cfg, nullptr), Status::ok);
    for (LogLevel l : {LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error, LogLevel::none}) {
        EXPECT_FALSE(wnl::log_enabled(l, "engine"));
    }
    wnl::install_llama_log_hook();
    ggml_log_callback cb = installed_llama_callback();
    ASSERT_NE(cb, nullptr);
    {
        FdCapture out(1);
        FdCapture err(2);
        for (LogLevel l : {LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error, LogLevel::none}) {
            wnl::log(l, "engine", "should not appear", {{"k", 1}});
        }
        cb(GGML_LOG_LEVEL_ERROR, "llama error\n", nullptr);
        cb(GGML_LOG_LEVEL_WARN, "llama warn\n", nullptr);
        cb(GGML_LOG_LEVEL_INFO, "llama info\n", nullptr);
        cb(GGML_LOG_LEVEL_DEBUG, "llama debug\n", nullptr);
        EXPECT_EQ(err.finish(), "");
        EXPECT_EQ(out.finish(), "");
    }
    // The same with a file: created, but left empty.
    cfg.file = file;
    ASSERT_EQ(wnl::configure_logging(cfg, nullptr), Status::ok);
    wnl::log(LogLevel::error, "engine", "should not appear");
    cb(GGML_LOG_LEVEL_ERROR, "llama error\n", nullptr);
    wnl::reset_logging();
    EXPECT_TRUE(fs::exists(file));
    EXPECT_EQ(read_file(file), "");
}

// ---------------------------------------------------------------------------
// Files

TEST_F(LogTest, FileIsCreatedAndAppendedAcrossConfigures) {
    const std::string file = path("app.log");
    ASSERT_FALSE(fs::exists(file));
    {
        FdCapture err(2);
        ASSERT_EQ(wnl::configure_logging(file_config(file), nullptr), Status::ok);
        EXPECT_TRUE(fs::exists(file));
        wnl::log(LogLevel::info, "engine", "first");
        // Flushed per line: visible before the logger lets go of the file.
        EXPECT_EQ(split_lines(read_file(file)).size(), 1u);
        ASSERT_EQ(wnl::configure_logging(file_config(file), nullptr), Status::ok);
        wnl::log(LogLevel::info, "engine", "second");
        EXPECT_EQ(err.finish(), "");  // nothing went to stderr
    }
    wnl::reset_logging();
    const std::string text = read_file(file);
    const auto lines = split_lines(text);
    ASSERT_EQ(lines.size(), 2u) << text;
    EXPECT_TRUE(std::regex_match(lines[0], text_line_re()));
    EXPECT_EQ(lines[0].substr(24), " INFO  [engine] first");
    EXPECT_EQ(lines[1].substr(24), " INFO  [engine] second");

    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    const mode_t mask = ::umask(0);
    ::umask(mask);
    EXPECT_EQ(st.st_mode & 0777, 0644u & ~mask);
}

TEST_F(LogTest, FileKeepsExistingContent) {
    const std::string file = path("existing.log");
    {
        std::ofstream out(file);
        out << "earlier line\n";
    }
    ASSERT_EQ(wnl::configure_logging(file_config(file), nullptr), Status::ok);
    wnl::log(LogLevel::warn, "engine", "later");
    wnl::reset_logging();
    const auto lines = split_lines(read_file(file));
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0], "earlier line");
    EXPECT_EQ(lines[1].substr(24), " WARN  [engine] later");
}

TEST_F(LogTest, SwitchingFilesClosesTheOldOne) {
    const std::string a = path("a.log");
    const std::string b = path("b.log");
    ASSERT_EQ(wnl::configure_logging(file_config(a), nullptr), Status::ok);
    EXPECT_EQ(open_fds_on(a), 1);
    wnl::log(LogLevel::info, "engine", "to-a");
    ASSERT_EQ(wnl::configure_logging(file_config(b), nullptr), Status::ok);
    EXPECT_EQ(open_fds_on(a), 0);
    EXPECT_EQ(open_fds_on(b), 1);
    wnl::log(LogLevel::info, "engine", "to-b");
    // Back to stderr closes b as well.
    {
        FdCapture err(2);
        wnl::reset_logging();
        wnl::log(LogLevel::info, "engine", "to-stderr");
        const auto lines = split_lines(err.finish());
        ASSERT_EQ(lines.size(), 1u);
        EXPECT_EQ(lines[0].substr(24), " INFO  [engine] to-stderr");
    }
    EXPECT_EQ(open_fds_on(b), 0);

    const auto la = split_lines(read_file(a));
    const auto lb = split_lines(read_file(b));
    ASSERT_EQ(la.size(), 1u);
    ASSERT_EQ(lb.size(), 1u);
    EXPECT_EQ(la[0].substr(24), " INFO  [engine] to-a");
    EXPECT_EQ(lb[0].substr(24), " INFO  [engine] to-b");
}

TEST_F(LogTest, UnwritablePathIsRejectedAndPreviousSettingsStay) {
    const std::string good = path("good.log");
    LoggingConfig prev = file_config(good, LogLevel::debug, true);
    prev.components = {"engine"};
    ASSERT_EQ(wnl::configure_logging(prev, nullptr), Status::ok);

    struct Bad {
        std::string path;
        int err;
    };
    const std::vector<Bad> bads = {
        {"/nonexistent/dir/x.log", ENOENT},
        {dir_, EISDIR},  // a directory
    };
    for (const Bad& bad : bads) {
        LoggingConfig next = file_config(bad.path, LogLevel::error, false);
        std::string error = "untouched";
        EXPECT_EQ(wnl::configure_logging(next, &error), Status::invalid_argument);
        EXPECT_EQ(error, "logging.file: cannot open '" + bad.path + "': " + std::strerror(bad.err));
        // A null error pointer is allowed.
        EXPECT_EQ(wnl::configure_logging(next, nullptr), Status::invalid_argument);
    }

    // Still debug, JSON, filtered to "engine", writing to good.log.
    EXPECT_TRUE(wnl::log_enabled(LogLevel::debug, "engine"));
    EXPECT_FALSE(wnl::log_enabled(LogLevel::info, "other"));
    {
        FdCapture err(2);
        wnl::log(LogLevel::debug, "engine", "still here");
        wnl::log(LogLevel::info, "other", "filtered");
        EXPECT_EQ(err.finish(), "");
    }
    wnl::reset_logging();
    const auto lines = split_lines(read_file(good));
    ASSERT_EQ(lines.size(), 1u);
    const json j = json::parse(lines[0]);
    EXPECT_EQ(j["level"], "debug");
    EXPECT_EQ(j["component"], "engine");
    EXPECT_EQ(j["msg"], "still here");
}

// ---------------------------------------------------------------------------
// Component filter

TEST_F(LogTest, ComponentFilterAppliesToAllButErrors) {
    LoggingConfig cfg;
    cfg.level = LogLevel::debug;
    cfg.components = {"sched", "model"};
    ASSERT_EQ(wnl::configure_logging(cfg, nullptr), Status::ok);
    EXPECT_TRUE(wnl::log_enabled(LogLevel::debug, "sched"));
    EXPECT_TRUE(wnl::log_enabled(LogLevel::info, "model"));
    EXPECT_FALSE(wnl::log_enabled(LogLevel::info, "net"));
    EXPECT_FALSE(wnl::log_enabled(LogLevel::warn, "net"));
    EXPECT_FALSE(wnl::log_enabled(LogLevel::warn, "sche"));
    EXPECT_TRUE(wnl::log_enabled(LogLevel::error, "net"));

    FdCapture err(2);
    wnl::log(LogLevel::info, "sched", "s-info");
    wnl::log(LogLevel::debug, "model", "m-debug");
    wnl::log(LogLevel::info, "net", "n-info");
    wnl::log(LogLevel::warn, "net", "n-warn");
    wnl::log(LogLevel::error, "net", "n-error");
    const auto lines = split_lines(err.finish());
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0].substr(24), " INFO  [sched] s-info");
    EXPECT_EQ(lines[1].substr(24), " DEBUG [model] m-debug");
    EXPECT_EQ(lines[2].substr(24), " ERROR [net] n-error");

    // An empty list means every component again.
    cfg.components.clear();
    ASSERT_EQ(wnl::configure_logging(cfg, nullptr), Status::ok);
    EXPECT_TRUE(wnl::log_enabled(LogLevel::info, "net"));
}

// ---------------------------------------------------------------------------
// llama.cpp's log

class LlamaLogTest : public LogTest {
protected:
    void SetUp() override {
        LogTest::SetUp();
        wnl::install_llama_log_hook();
        wnl::install_llama_log_hook();  // idempotent
        cb_ = installed_llama_callback();
        ASSERT_NE(cb_, nullptr);
        ggml_log_callback g = nullptr;
        void* ud = nullptr;
        ggml_log_get(&g, &ud);
        EXPECT_EQ(g, cb_);  // ggml's own log goes the same way
    }

    // Runs f with the logger writing JSON to a fresh file; returns the lines.
    template <typename F>
    std::vector<json> capture(LoggingConfig cfg, F&& f) {
        const std::string file = path("llama" + std::to_string(n_++) + ".log");
        cfg.file = file;
        cfg.json = true;
        EXPECT_EQ(wnl::configure_logging(cfg, nullptr), Status::ok);
        f();
        wnl::reset_logging();
        std::vector<json> out;
        for (const auto& l : split_lines(read_file(file))) out.push_back(json::parse(l));
        return out;
    }

    ggml_log_callback cb_ = nullptr;
    int n_ = 0;
};

TEST_F(LlamaLogTest, LevelsMapAndInfoNeedsEnableLog) {
    LoggingConfig cfg;
    cfg.level = LogLevel::debug;
    auto send_all = [&] {
        cb_(GGML_LOG_LEVEL_ERROR, "an error\n", nullptr);
        cb_(GGML_LOG_LEVEL_WARN, "a warning\n", nullptr);
        cb_(GGML_LOG_LEVEL_INFO, "some info\n", nullptr);
        cb_(GGML_LOG_LEVEL_NONE, "unlevelled\n", nullptr);
        cb_(GGML_LOG_LEVEL_DEBUG, "some debug\n", nullptr);
    };

    // Neither flag: only errors and warnings.
    auto lines = capture(cfg, send_all);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0]["level"], "error");
    EXPECT_EQ(lines[0]["component"], "llama");
    EXPECT_EQ(lines[0]["msg"], "an error");
    EXPECT_EQ(lines[1]["level"], "warn");
    EXPECT_EQ(lines[1]["msg"], "a warning");

    // enable-log: info lines too.
    cfg.llama_log = true;
    lines = capture(cfg, send_all);
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_EQ(lines[2]["level"], "info");
    EXPECT_EQ(lines[2]["msg"], "some info");
    EXPECT_EQ(lines[3]["level"], "info");
    EXPECT_EQ(lines[3]["msg"], "unlevelled");

    // enable-debug-log: info and debug.
    cfg.llama_log = false;
    cfg.llama_debug_log = true;
    lines = capture(cfg, send_all);
    ASSERT_EQ(lines.size(), 5u);
    EXPECT_EQ(lines[4]["level"], "debug");
    EXPECT_EQ(lines[4]["msg"], "some debug");
    for (const auto& j : lines) EXPECT_EQ(j["component"], "llama");

    // The logger's level still applies: at warn, debug and info are dropped.
    cfg.level = LogLevel::warn;
    lines = capture(cfg, send_all);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0]["msg"], "an error");
    EXPECT_EQ(lines[1]["msg"], "a warning");

    // And the component filter, errors excepted.
    cfg.level = LogLevel::debug;
    cfg.components = {"sched"};
    lines = capture(cfg, send_all);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0]["msg"], "an error");
}

TEST_F(LlamaLogTest, FragmentsAreJoinedIntoLines) {
    LoggingConfig cfg;
    cfg.level = LogLevel::debug;
    cfg.llama_log = true;
    const auto lines = capture(cfg, [&] {
        cb_(GGML_LOG_LEVEL_INFO, "llama_model_loader: loaded ", nullptr);
        cb_(GGML_LOG_LEVEL_CONT, "meta data with 26 key-value pairs", nullptr);
        cb_(GGML_LOG_LEVEL_CONT, "\n", nullptr);
        // Several lines in one piece, trailing CR/LF stripped, blank lines skipped.
        cb_(GGML_LOG_LEVEL_WARN, "w1\nw2\r\n\n", nullptr);
        // Progress dots: CONT pieces after a finished line start a new one at
        // the previous line's level.
        cb_(GGML_LOG_LEVEL_INFO, "load_tensors: loading\n", nullptr);
        cb_(GGML_LOG_LEVEL_CONT, ".", nullptr);
        cb_(GGML_LOG_LEVEL_CONT, ".", nullptr);
        cb_(GGML_LOG_LEVEL_CONT, ".\n", nullptr);
        // A new non-CONT piece ends an unterminated line.
        cb_(GGML_LOG_LEVEL_INFO, "no newline", nullptr);
        cb_(GGML_LOG_LEVEL_ERROR, "boom\n", nullptr);
        cb_(GGML_LOG_LEVEL_INFO, "say \"x\"\tok\n", nullptr);
    });
    ASSERT_EQ(lines.size(), 8u);
    EXPECT_EQ(lines[0]["msg"], "llama_model_loader: loaded meta data with 26 key-value pairs");
    EXPECT_EQ(lines[0]["level"], "info");
    EXPECT_EQ(lines[1]["msg"], "w1");
    EXPECT_EQ(lines[1]["level"], "warn");
    EXPECT_EQ(lines[2]["msg"], "w2");
    EXPECT_EQ(lines[2]["level"], "warn");
    EXPECT_EQ(lines[3]["msg"], "load_tensors: loading");
    EXPECT_EQ(lines[4]["msg"], "...");
    EXPECT_EQ(lines[4]["level"], "info");
    EXPECT_EQ(lines[5]["msg"], "no newline");
    EXPECT_EQ(lines[5]["level"], "info");
    EXPECT_EQ(lines[6]["msg"], "boom");
    EXPECT_EQ(lines[6]["level"], "error");
    EXPECT_EQ(lines[7]["msg"], "say \"x\"\tok");
    for (const auto& j : lines) EXPECT_EQ(j["component"], "llama");
}

TEST_F(LlamaLogTest, FragmentsAreBufferedPerThread) {
    LoggingConfig cfg;
    cfg.llama_log = true;
    const auto lines = capture(cfg, [&] {
        cb_(GGML_LOG_LEVEL_INFO, "main part1 ", nullptr);
        std::thread other([&] {
            cb_(GGML_LOG_LEVEL_WARN, "other ", nullptr);
            cb_(GGML_LOG_LEVEL_CONT, "line\n", nullptr);
        });
        other.join();
        cb_(GGML_LOG_LEVEL_CONT, "part2\n", nullptr);
    });
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0]["msg"], "other line");
    EXPECT_EQ(lines[0]["level"], "warn");
    EXPECT_EQ(lines[1]["msg"], "main part1 part2");
    EXPECT_EQ(lines[1]["level"], "info");
}

TEST_F(LlamaLogTest, TextFormatToStderr) {
    LoggingConfig cfg;
    cfg.llama_log = true;
    ASSERT_EQ(wnl::configure_logging(cfg, nullptr), Status::ok);
    FdCapture err(2);
    cb_(GGML_LOG_LEVEL_INFO, "print_info: n_ctx = 4096\n", nullptr);
    const auto lines = split_lines(err.finish());
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].substr(24), " INFO  [llama] print_info: n_ctx = 4096");
}

// ---------------------------------------------------------------------------
// Concurrency

constexpr int kThreads = 8;
constexpr int kLinesPerThread = 500;

TEST_F(LogTest, ConcurrentJsonLinesAreWhole) {
    const std::string file = path("conc.log");
    ASSERT_EQ(wnl::configure_logging(file_config(file, LogLevel::info, true), nullptr), Status::ok);
    const std::string padding(300, 'p');  // long lines make tearing likelier
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([t, &padding] {
            for (int i = 0; i < kLinesPerThread; ++i) {
                wnl::log(LogLevel::info, "worker", "line", {{"t", t}, {"i", i}, {"pad", padding}});
            }
        });
    }
    for (auto& th : threads) th.join();
    wnl::reset_logging();

    const std::string text = read_file(file);
    ASSERT_EQ(text.back(), '\n');
    const auto lines = split_lines(text);
    ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kLinesPerThread));
    std::set<std::pair<int, int>> seen;
    for (const auto& l : lines) {
        json j;
        ASSERT_NO_THROW(j = json::parse(l)) << l;
        ASSERT_EQ(j["msg"], "line");
        ASSERT_EQ(j["pad"], padding);
        seen.emplace(j["t"].get<int>(), j["i"].get<int>());
    }
    EXPECT_EQ(seen.size(), static_cast<size_t>(kThreads * kLinesPerThread));
}

TEST_F(LogTest, ConcurrentTextLinesToStderrAreWhole) {
    FdCapture err(2);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([t] {
            for (int i = 0; i < kLinesPerThread; ++i) {
                wnl::log(LogLevel::warn, "worker", "text line", {{"t", t}, {"i", i}, {"s", "a b c"}});
            }
        });
    }
    for (auto& th : threads) th.join();
    const auto lines = split_lines(err.finish());
    ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kLinesPerThread));
    const std::regex re(
        R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z WARN  \[worker\] text line t=(\d) i=(\d+) s="a b c"$)");
    std::set<std::pair<int, int>> seen;
    for (const auto& l : lines) {
        std::smatch m;
        ASSERT_TRUE(std::regex_match(l, m, re)) << l;
        seen.emplace(std::stoi(m[1]), std::stoi(m[2]));
    }
    EXPECT_EQ(seen.size(), static_cast<size_t>(kThreads * kLinesPerThread));
}

TEST_F(LogTest, ReconfigureWhileLogging) {
    const std::string a = path("ra.log");
    const std::string b = path("rb.log");
    wnl::install_llama_log_hook();
    ggml_log_callback cb = installed_llama_callback();
    ASSERT_NE(cb, nullptr);

    // From here on every configuration writes to a file.
    ASSERT_EQ(wnl::configure_logging(file_config(b), nullptr), Status::ok);
    FdCapture err(2);
    constexpr int kWriters = 4;
    constexpr int kIterations = 3000;
    // Writers go on until told to stop, so that they are still writing when
    // the last configuration (level info, file a) is in place: on a loaded
    // machine a writer can otherwise do all its iterations inside one window
    // where the level lets nothing through.
    std::atomic<int> done[kWriters] = {};
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kWriters; ++t) {
        threads.emplace_back([&, t] {
            for (int n = 0; n < kIterations || !stop.load(); ++n) {
                wnl::log(LogLevel::info, t % 2 ? "sched" : "model", "busy", {{"t", t}, {"n", n}});
                if (wnl::log_enabled(LogLevel::debug, "sched")) wnl::log(LogLevel::debug, "sched", "dbg");
                cb(GGML_LOG_LEVEL_INFO, "llama ", nullptr);
                cb(GGML_LOG_LEVEL_CONT, "piece\n", nullptr);
                done[t].store(n + 1);
            }
        });
    }
    auto writers_below = [&](const int* floor) {
        for (int t = 0; t < kWriters; ++t) {
            if (done[t].load() < floor[t]) return true;
        }
        return false;
    };
    int rounds = 0;
    const int minimum[kWriters] = {kIterations, kIterations, kIterations, kIterations};
    while (rounds < 50 || writers_below(minimum)) {
        LoggingConfig cfg;
        cfg.file = rounds % 2 ? a : b;
        cfg.json = rounds % 3 == 0;
        cfg.level = static_cast<LogLevel>(rounds % 5);
        cfg.llama_log = rounds % 2 == 0;
        if (rounds % 4 == 1) cfg.components = {"sched", "llama"};
        EXPECT_EQ(wnl::configure_logging(cfg, nullptr), Status::ok);  // no early return: writers run
        ++rounds;
        std::this_thread::yield();
    }
    EXPECT_EQ(wnl::configure_logging(file_config(a), nullptr), Status::ok);
    // Two more iterations each: at least one whole one under this config.
    int after_config[kWriters];
    for (int t = 0; t < kWriters; ++t) after_config[t] = done[t].load() + 2;
    while (writers_below(after_config)) std::this_thread::yield();
    stop = true;
    for (auto& th : threads) th.join();
    wnl::log(LogLevel::info, "engine", "after");
    wnl::reset_logging();
    EXPECT_EQ(err.finish(), "");

    size_t total = 0;
    for (const std::string& f : {a, b}) {
        const std::string text = read_file(f);
        if (!text.empty()) {
            EXPECT_EQ(text.back(), '\n');
        }
        for (const auto& l : split_lines(text)) {
            ++total;
            // A line formatted just before a format switch may land in either
            // file, but it is always one whole line in one format.
            if (!l.empty() && l[0] == '{') {
                json j;
                ASSERT_NO_THROW(j = json::parse(l)) << l;
                EXPECT_TRUE(j.contains("ts") && j.contains("level") && j.contains("component"));
            } else {
                ASSERT_TRUE(std::regex_match(l, text_line_re())) << l;
            }
        }
    }
    EXPECT_GT(total, static_cast<size_t>(kWriters)) << "each writer logs under the last configuration";
}

}  // namespace
