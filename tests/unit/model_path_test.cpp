// Guest model paths against the host's rules (src/engine/model_path.h), on a
// scratch tree with symlinks in and out of the allowed directory.
#include "engine/model_path.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace wnl {
namespace {

namespace fs = std::filesystem;

class ModelPath : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/wnl-model-path-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        root_ = fs::canonical(tmpl).string();
        fs::create_directories(root_ + "/models/sub");
        fs::create_directories(root_ + "/outside");
        touch("models/a.gguf");
        touch("models/sub/b.gguf");
        touch("models/notes.txt");
        touch("outside/secret.gguf");
        touch("outside/secret.txt");
        fs::create_symlink("a.gguf", root_ + "/models/in.gguf");
        fs::create_symlink("../outside/secret.gguf", root_ + "/models/out.gguf");
        fs::create_symlink(root_ + "/outside", root_ + "/models/outdir");
        fs::create_symlink(root_ + "/outside/missing.gguf", root_ + "/models/dangling-out.gguf");
        fs::create_symlink("missing.gguf", root_ + "/models/dangling-in.gguf");
        fs::create_symlink("loop.gguf", root_ + "/models/loop.gguf");
        fs::create_symlink(root_ + "/models", root_ + "/models-link");
        fs::create_symlink(root_ + "/outside/secret.txt", root_ + "/txt.gguf");
    }
    void TearDown() override { fs::remove_all(root_); }
    void touch(const std::string& rel) { std::ofstream(root_ + "/" + rel) << "x"; }
    Status check(const std::string& rel, const ModelPathRules& rules, std::string* canonical = nullptr) {
        std::string out, why;
        const std::string name = rel.empty() || rel[0] == '/' ? rel : root_ + "/" + rel;
        Status st = resolve_guest_model_path(name, rules, &out, &why);
        if (canonical) *canonical = out;
        EXPECT_FALSE(why.empty() && st != Status::ok) << rel;
        return st;
    }
    ModelPathRules dirs(const std::string& rel) {
        ModelPathRules r;
        r.model_dirs = {root_ + "/" + rel};
        return r;
    }
    std::string root_;
};

TEST_F(ModelPath, InsideTheAllowList) {
    const ModelPathRules r = dirs("models");
    std::string c;
    EXPECT_EQ(check("models/a.gguf", r, &c), Status::ok);
    EXPECT_EQ(c, root_ + "/models/a.gguf");
    EXPECT_EQ(check("models/sub/b.gguf", r), Status::ok);
    EXPECT_EQ(check("models/notes.txt", r), Status::ok);  // any file under model_dirs
    EXPECT_EQ(check("models/in.gguf", r, &c), Status::ok);
    EXPECT_EQ(c, root_ + "/models/a.gguf");
    EXPECT_EQ(check("models/./sub/../a.gguf", r), Status::ok);
    EXPECT_EQ(check("models//sub///b.gguf", r), Status::ok);
    EXPECT_EQ(check("models/missing.gguf", r), Status::model_not_found);
    EXPECT_EQ(check("models/dangling-in.gguf", r), Status::model_not_found);
    EXPECT_EQ(check("models/nodir/x.gguf", r), Status::model_not_found);
}

TEST_F(ModelPath, EveryWayOutIsRefusedTheSameExistingOrNot) {
    const ModelPathRules r = dirs("models");
    for (const char* rel :
         {"outside/secret.gguf", "outside/missing.gguf", "outside/secret.txt", "models/../outside/secret.gguf",
          "models/../outside/missing.gguf", "models/sub/../../outside/secret.gguf", "models/out.gguf",
          "models/outdir/secret.gguf", "models/outdir/missing.gguf", "models/dangling-out.gguf", "models/loop.gguf",
          "models-other/a.gguf", "/etc/passwd", "/etc/missing", "/", "models/../../../../../../etc/passwd"}) {
        EXPECT_EQ(check(rel, r), Status::path_refused) << rel;
    }
    // A prefix of the directory's name is not the directory.
    fs::create_directories(root_ + "/models2");
    touch("models2/c.gguf");
    EXPECT_EQ(check("models2/c.gguf", r), Status::path_refused);
}

TEST_F(ModelPath, DirectoryGivenThroughASymlink) {
    const ModelPathRules r = dirs("models-link");
    EXPECT_EQ(check("models-link/a.gguf", r), Status::ok);
    EXPECT_EQ(check("models/a.gguf", r), Status::ok);  // the same directory, resolved
    EXPECT_EQ(check("models-link/out.gguf", r), Status::path_refused);
}

TEST_F(ModelPath, NoModelDirsMeansGgufFilesOnly) {
    const ModelPathRules r;
    std::string c;
    EXPECT_EQ(check("outside/secret.gguf", r, &c), Status::ok);
    EXPECT_EQ(check("models/out.gguf", r, &c), Status::ok);  // a .gguf through a .gguf link
    EXPECT_EQ(c, root_ + "/outside/secret.gguf");
    EXPECT_EQ(check("models/missing.gguf", r), Status::model_not_found);
    EXPECT_EQ(check("outside/SECRET.GGUF", r), Status::model_not_found);  // the suffix in any case
    for (const char* rel : {"outside/secret.txt", "outside/missing.txt", "txt.gguf", "models", "/etc/passwd",
                            "/etc/missing", "models/loop.gguf"}) {
        EXPECT_EQ(check(rel, r), Status::path_refused) << rel;
    }
}

TEST_F(ModelPath, GuestPathsOffRefusesEverything) {
    ModelPathRules r = dirs("models");
    r.guest_paths = false;
    EXPECT_EQ(check("models/a.gguf", r), Status::path_refused);
    EXPECT_EQ(check("models/missing.gguf", r), Status::path_refused);
}

TEST_F(ModelPath, EmptyOrNul) {
    std::string out, why;
    EXPECT_EQ(resolve_guest_model_path("", ModelPathRules{}, &out, &why), Status::invalid_argument);
    EXPECT_EQ(resolve_guest_model_path(std::string("a\0b.gguf", 8), ModelPathRules{}, &out, &why),
              Status::invalid_argument);
}

TEST(LexicallyNormal, Folds) {
    EXPECT_EQ(lexically_normal("/a/./b//../c", "/x"), "/a/c");
    EXPECT_EQ(lexically_normal("b/c", "/x/y"), "/x/y/b/c");
    EXPECT_EQ(lexically_normal("../../../../z", "/x/y"), "/z");
    EXPECT_EQ(lexically_normal("/..", "/"), "/");
    EXPECT_EQ(lexically_normal("/a/b/", "/"), "/a/b");
}

}  // namespace
}  // namespace wnl
