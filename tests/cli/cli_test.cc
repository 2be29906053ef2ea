// The iris binary as a user runs it: exit codes, one-line errors, streamed output.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {
namespace fs = std::filesystem;

struct Outcome {
  int code = -1;
  std::string out, err;
};

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("iris_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs `iris ARGS` (ARGS already shell-quoted) with `input` on stdin.
  Outcome Iris(const std::string& args, const std::string& input = "",
               const std::string& env = "") {
    std::ofstream(dir_ / "stdin") << input;
    std::string cmd = env + " " + std::string(IRIS_BINARY) + " " + args + " <" +
                      (dir_ / "stdin").string() + " >" + (dir_ / "stdout").string() + " 2>" +
                      (dir_ / "stderr").string();
    int rc = std::system(cmd.c_str());
    Outcome o;
    o.code = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
    o.out = Slurp(dir_ / "stdout");
    o.err = Slurp(dir_ / "stderr");
    return o;
  }

  static std::string Data(const std::string& rel) {
    return std::string(IRIS_TEST_DATA_DIR) + "/" + rel;
  }

  fs::path dir_;
};

TEST_F(CliTest, HelpListsSubcommandsAndFlags) {
  Outcome o = Iris("--help");
  EXPECT_EQ(o.code, 0);
  for (const char* s : {"run", "verify", "tokenize", "bench", "quantize", "merge"}) {
    EXPECT_NE(o.out.find(s), std::string::npos) << s;
  }
  Outcome r = Iris("run --help");
  EXPECT_EQ(r.code, 0);
  for (const char* s :
       {"--model", "--max-tokens", "--temperature", "--top-p", "--seed", "--threads", "--stop",
        "--top-k", "--min-p", "--repetition-penalty", "--image"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
  }
}

TEST_F(CliTest, UsageSinceTakesRealDatesOnly) {
  const std::string env = "IRIS_DATA_DIR=" + dir_.string();  // no request log there yet
  Outcome leap = Iris("usage --since 2024-02-29", "", env);
  EXPECT_EQ(leap.code, 0) << leap.err;
  EXPECT_NE(leap.out.find("no requests recorded since 2024-02-29"), std::string::npos) << leap.out;
  for (const char* date : {"2024-02-31", "2023-02-29", "2024-13-01", "2024-04-31", "2024-01-00"}) {
    Outcome o = Iris(std::string("usage --since ") + date, "", env);
    EXPECT_EQ(o.code, 2) << date;
    EXPECT_NE(o.err.find(std::string("--since '") + date + "' is not a date"), std::string::npos)
        << o.err;
  }
  Outcome o = Iris("usage --since 2024-02-31", "", env);
  EXPECT_NE(o.err.find("February 2024 has days 1 to 29"), std::string::npos) << o.err;
}

TEST_F(CliTest, RunStreamsAnAnswerAndReportsSpeed) {
  Outcome o = Iris("run --model " + Data("smolvlm2/tiny-256m-style") +
                   " --max-tokens 8 --threads 2 'What is the capital of France?'");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_FALSE(o.out.empty());
  EXPECT_NE(o.err.find("tok/s"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("loaded in"), std::string::npos) << o.err;
}

TEST_F(CliTest, RunAnswersAboutImages) {
  Outcome o = Iris("run --model " + Data("smolvlm2/tiny-256m-style") + " --image " +
                   Data("smolvlm2/images/split.png") + " --image " +
                   Data("smolvlm2/images/small.png") + " --max-tokens 4 'Compare these'");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.err.find("26 image tiles"), std::string::npos) << o.err;  // 13 + 13
  EXPECT_NE(o.err.find("first token after"), std::string::npos) << o.err;
}

TEST_F(CliTest, RunReadsGgufFilesAsTheSafetensorsCheckpoint) {
  const std::string question =
      " --image " + Data("smolvlm2/images/split.png") + " --max-tokens 6 --threads 2 'Describe it'";
  Outcome st = Iris("run --model " + Data("smolvlm2/tiny-256m-style") + question);
  ASSERT_EQ(st.code, 0) << st.err;
  Outcome gguf = Iris("run --model " + Data("gguf/tiny-256m-style/text-BF16.gguf") + " --mmproj " +
                      Data("gguf/tiny-256m-style/mmproj-BF16.gguf") + question);
  ASSERT_EQ(gguf.code, 0) << gguf.err;
  EXPECT_EQ(gguf.out, st.out);
  EXPECT_NE(gguf.err.find("(BF16+F32 weights)"), std::string::npos) << gguf.err;
  EXPECT_NE(gguf.err.find("13 image tiles"), std::string::npos) << gguf.err;
  Outcome q8 = Iris("run --model " + Data("gguf/tiny-256m-style/text-Q8_0.gguf") +
                    " --max-tokens 2 --threads 2 hi");
  ASSERT_EQ(q8.code, 0) << q8.err;
  EXPECT_NE(q8.err.find("(F32+Q8_0 weights)"), std::string::npos) << q8.err;
  Outcome q4 = Iris("run --model " + Data("gguf/tiny-256m-style/text-Q4_0.gguf") +
                    " --max-tokens 2 --threads 2 hi");
  ASSERT_EQ(q4.code, 0) << q4.err;
  // Q4_0 runs on the int8 kernels (in 4-bit panels, or as Q8_0 rows where the CPU lacks
  // AVX512-VNNI), not dequantized to F32.
  EXPECT_NE(q4.err.find("(F32+Q4_0 weights)"), std::string::npos) << q4.err;
  // Images need the mmproj.
  Outcome blind = Iris("run --model " + Data("gguf/tiny-256m-style/text-BF16.gguf") + question);
  EXPECT_NE(blind.code, 0);
  EXPECT_NE(blind.err.find("cannot read images"), std::string::npos) << blind.err;
}

// `iris quantize` writes GGUF files `iris run --model DIR` answers from exactly as the
// checkpoint quantized at load; errors are one line.
TEST_F(CliTest, QuantizeWritesGgufFilesRunAnswersFrom) {
  const std::string model = Data("smolvlm2/tiny-256m-style");
  const std::string out = (dir_ / "gguf").string();
  Outcome q = Iris("quantize --model " + model + " --weights q4_0 --out " + out);
  ASSERT_EQ(q.code, 0) << q.err;
  EXPECT_EQ(q.out, out + "\n");
  EXPECT_NE(q.err.find("tiny-256m-style-Q4_0.gguf"), std::string::npos) << q.err;
  EXPECT_NE(q.err.find("mmproj-tiny-256m-style-BF16.gguf"), std::string::npos) << q.err;
  EXPECT_TRUE(fs::exists(out + "/tiny-256m-style-Q4_0.gguf"));
  const std::string question = " --image " + Data("smolvlm2/images/small.png") +
                               " --max-tokens 12 --threads 2 'What is it?'";
  Outcome from_files = Iris("run --model " + out + question);
  ASSERT_EQ(from_files.code, 0) << from_files.err;
  EXPECT_NE(from_files.err.find("Q4_0"), std::string::npos) << from_files.err;
  Outcome at_load = Iris("run --model " + model + " --weights q4_0" + question);
  ASSERT_EQ(at_load.code, 0) << at_load.err;
  EXPECT_EQ(from_files.out, at_load.out);
  Outcome again = Iris("quantize --model " + model + " --out " + out);
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.err.find("exists and is not an empty directory"), std::string::npos) << again.err;
  Outcome gguf = Iris("quantize --model " + out + " --out " + (dir_ / "other").string());
  EXPECT_EQ(gguf.code, 1);
  EXPECT_NE(gguf.err.find("not a safetensors checkpoint"), std::string::npos) << gguf.err;
  Outcome type =
      Iris("quantize --model " + model + " --weights q5_1 --out " + (dir_ / "other").string());
  EXPECT_NE(type.code, 0);
  EXPECT_NE(type.err.find("q5_1"), std::string::npos) << type.err;
  Outcome name =
      Iris("quantize --model " + model + " --name ../escape --out " + (dir_ / "other").string());
  EXPECT_EQ(name.code, 1);
  EXPECT_NE(name.err.find("pass --name"), std::string::npos) << name.err;
  EXPECT_FALSE(fs::exists(dir_ / "escape-Q8_0.gguf"));
}

// An adapter on the fly and the checkpoint `iris merge` writes give the same answer, and not
// the base model's.
TEST_F(CliTest, RunWithAnAdapterAnswersAsTheMergedCheckpoint) {
  const std::string model = Data("smolvlm2/tiny-256m-style");
  const std::string adapter = Data("lora/tiny-256m-style");
  const std::string merged = (dir_ / "merged").string();
  Outcome m = Iris("merge --model " + model + " --adapter " + adapter + " --out " + merged);
  ASSERT_EQ(m.code, 0) << m.err;
  EXPECT_NE(m.err.find("rank 4, 27 layers (text, vision)"), std::string::npos) << m.err;
  EXPECT_NE(m.err.find("tensors"), std::string::npos) << m.err;
  const std::string question = " --image " + Data("smolvlm2/images/small.png") +
                               " --max-tokens 12 --threads 2 'What is it?'";
  Outcome fly = Iris("run --model " + model + " --adapter " + adapter + question);
  ASSERT_EQ(fly.code, 0) << fly.err;
  EXPECT_NE(fly.err.find("adapter " + adapter), std::string::npos) << fly.err;
  Outcome out = Iris("run --model " + merged + question);
  ASSERT_EQ(out.code, 0) << out.err;
  EXPECT_EQ(fly.out, out.out);
  Outcome base = Iris("run --model " + model + question);
  ASSERT_EQ(base.code, 0) << base.err;
  EXPECT_NE(base.out, fly.out);
  // Errors are one line: a missing adapter, an occupied output directory.
  Outcome missing = Iris("run --model " + model + " --adapter " + (dir_ / "nope").string() + " hi");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("is not an adapter directory"), std::string::npos) << missing.err;
  Outcome again = Iris("merge --model " + model + " --adapter " + adapter + " --out " + merged);
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.err.find("exists and is not empty"), std::string::npos) << again.err;
}

// `iris finetune` on a few conversations: a progress line, the adapter `iris run` takes, bad
// lines named (and refused unless skipped), and --resume of a finished run changing nothing.
TEST_F(CliTest, FinetuneWritesAnAdapterRunTakes) {
  std::string data;
  for (int i = 0; i < 8; ++i) {
    data += R"({"messages": [{"role": "user", "content": "Say hi )" + std::to_string(i) +
            R"("}, {"role": "assistant", "content": "Hi!"}]})" + "\n";
  }
  std::ofstream(dir_ / "train.jsonl") << data;
  std::ofstream(dir_ / "bad.jsonl") << data << "{\"messages\": [{\"role\": \"user\"}]}\n";
  const std::string model = Data("smolvlm2/tiny-256m-style");
  const std::string out = (dir_ / "adapter").string();
  const std::string flags = " --epochs 4 --batch-tokens 64 --lr 1e-2 --threads 2 --out " + out;
  Outcome bad =
      Iris("finetune --model " + model + " --data " + (dir_ / "bad.jsonl").string() + flags);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("bad.jsonl:9: message 1 has no content"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("--bad-lines skip"), std::string::npos) << bad.err;
  Outcome ok = Iris("finetune --model " + model + " --data " + (dir_ / "bad.jsonl").string() +
                    flags + " --bad-lines skip");
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_NE(ok.err.find("8 conversations"), std::string::npos) << ok.err;
  EXPECT_NE(ok.err.find("step 12/12"), std::string::npos) << ok.err;
  EXPECT_NE(ok.err.find("tok/s"), std::string::npos) << ok.err;
  EXPECT_TRUE(fs::exists(out + "/adapter_config.json"));
  EXPECT_TRUE(fs::exists(out + "/train_log.jsonl"));
  Outcome run = Iris("run --model " + model + " --adapter " + out + " --max-tokens 3 'Say hi 3'");
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_NE(run.out.find("Hi!"), std::string::npos) << run.out;
  Outcome resumed = Iris("finetune --model " + model + " --data " + (dir_ / "bad.jsonl").string() +
                         flags + " --bad-lines skip --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("already finished: step 12 of 12"), std::string::npos) << resumed.err;
  Outcome other = Iris("finetune --model " + model + " --data " + (dir_ / "bad.jsonl").string() +
                       flags + " --bad-lines skip --resume --rank 4");
  EXPECT_EQ(other.code, 1);
  EXPECT_NE(other.err.find("other options, data or model (rank 8 then, 4 now)"), std::string::npos)
      << other.err;
}

TEST_F(CliTest, RunAnswersAboutAVideo) {
  const std::string clip = (dir_ / "clip.mp4").string();
  const std::string make =
      "ffmpeg -y -loglevel error -f lavfi -i testsrc=size=64x48:rate=4 -t 3 "
      "-pix_fmt yuv420p " +
      clip;
  if (std::system(make.c_str()) != 0) GTEST_SKIP() << "ffmpeg could not make a test clip";
  Outcome o = Iris("run --model " + Data("smolvlm2/tiny-256m-style") + " --video " + clip +
                   " --max-tokens 4 'What happens?'");
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.err.find("3 image tiles/frames"), std::string::npos) << o.err;  // 3 s at 1 fps
  std::ofstream(dir_ / "audio.txt") << "not a video";
  Outcome bad = Iris("run --model " + Data("smolvlm2/tiny-256m-style") + " --video " +
                     (dir_ / "audio.txt").string() + " hi");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("audio.txt"), std::string::npos) << bad.err;
}

TEST_F(CliTest, BadImagesAreOneLineErrors) {
  std::ofstream(dir_ / "junk.jpg") << "this is not an image at all";
  Outcome junk = Iris("run --model " + Data("smolvlm2/tiny-256m-style") + " --image " +
                      (dir_ / "junk.jpg").string() + " hi");
  EXPECT_NE(junk.code, 0);
  EXPECT_NE(junk.err.find("junk.jpg"), std::string::npos) << junk.err;
  EXPECT_EQ(std::count(junk.err.begin(), junk.err.end(), '\n'), 1) << junk.err;
  Outcome big = Iris("run --model " + Data("smolvlm2/tiny-256m-style") + " --image " +
                     Data("smolvlm2/images/split.png") + " --max-image-pixels 1000 hi");
  EXPECT_NE(big.code, 0);
  EXPECT_NE(big.err.find("split.png"), std::string::npos) << big.err;
  Outcome missing =
      Iris("run --model " + Data("smolvlm2/tiny-256m-style") + " --image /nonexistent/x.png hi");
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.err.find("/nonexistent/x.png"), std::string::npos) << missing.err;
}

TEST_F(CliTest, SamplingIsReproducibleWithASeed) {
  const std::string args = "run --model " + Data("smolvlm2/tiny-256m-style") +
                           " --max-tokens 12 --temperature 0.9 --top-p 0.95 --seed 7 hello";
  Outcome a = Iris(args), b = Iris(args);
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
}

TEST_F(CliTest, MissingModelDirectoryIsAOneLineError) {
  Outcome o = Iris("run --model /nonexistent/model hello");
  EXPECT_NE(o.code, 0);
  EXPECT_NE(o.err.find("/nonexistent/model"), std::string::npos) << o.err;
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
}

TEST_F(CliTest, ConfigThatIsNotSmolVlm2IsRefused) {
  std::ofstream(dir_ / "config.json") << R"({"model_type": "llama", "hidden_size": 8})";
  Outcome o = Iris("run --model " + dir_.string() + " hello");
  EXPECT_NE(o.code, 0);
  EXPECT_NE(o.err.find("not a SmolVLM2"), std::string::npos) << o.err;
}

TEST_F(CliTest, BadFlagValuesAreRejected) {
  EXPECT_NE(Iris("run --model x --temperature abc hello").code, 0);
  EXPECT_NE(Iris("run --model x --top-p 2 hello").code, 0);
  EXPECT_NE(Iris("run --no-such-flag").code, 0);
  EXPECT_NE(Iris("").code, 0);
}

TEST_F(CliTest, TokenizeRoundTrip) {
  Outcome enc =
      Iris("tokenize --tokenizer " + Data("tokenizer/tokenizer.json"),
           "<|im_start|>User: What is the capital of France?<end_of_utterance>\nAssistant:");
  ASSERT_EQ(enc.code, 0) << enc.err;
  EXPECT_EQ(enc.out, "[1,11126,42,1812,314,260,3575,282,4649,47,49279,198,9519,9531,42]\n");
  Outcome dec = Iris("tokenize --decode --tokenizer " + Data("tokenizer/tokenizer.json"),
                     "[11126, 42, 1812]");
  ASSERT_EQ(dec.code, 0) << dec.err;
  EXPECT_EQ(dec.out, "User: What");
  Outcome bad = Iris("tokenize --decode --tokenizer " + Data("tokenizer/tokenizer.json"), "[1,");
  EXPECT_NE(bad.code, 0);
  EXPECT_FALSE(bad.err.empty());
}

TEST_F(CliTest, VerifyPassesOnTextAndFailsOnMissingGoldens) {
  Outcome o = Iris("verify " + Data("smolvlm2/tiny-2.2b-style") + " --cases text_only");
  EXPECT_EQ(o.code, 0) << o.out << o.err;
  EXPECT_NE(o.out.find("logits"), std::string::npos);
  EXPECT_NE(o.out.find("8/8 tokens match"), std::string::npos) << o.out;
  Outcome bad = Iris("verify " + dir_.string());
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("goldens.json"), std::string::npos) << bad.err;
}

TEST_F(CliTest, RepoIdsResolveThroughTheHuggingFaceCache) {
  const std::string env = "HF_HUB_CACHE=" + (dir_ / "hub").string() + " HF_HUB_OFFLINE=1";
  Outcome missing = Iris("run --model HuggingFaceTB/SmolVLM2-256M-Video-Instruct hi", "", env);
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.err.find("iris pull"), std::string::npos) << missing.err;
  Outcome offline = Iris("pull smolvlm2-256m", "", env);
  EXPECT_NE(offline.code, 0);
  EXPECT_NE(offline.err.find("offline"), std::string::npos) << offline.err;

  // A snapshot laid out as huggingface_hub does is found by repo id and by short name.
  const fs::path repo = dir_ / "hub" / "models--HuggingFaceTB--SmolVLM2-256M-Video-Instruct";
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  fs::create_directories(repo / "refs");
  fs::create_directories(repo / "snapshots");
  std::ofstream(repo / "refs" / "main") << commit;
  fs::copy(Data("smolvlm2/tiny-256m-style"), repo / "snapshots" / commit,
           fs::copy_options::recursive);
  Outcome found = Iris("run --model smolvlm2-256m --max-tokens 2 hi", "", env);
  EXPECT_EQ(found.code, 0) << found.err;
  Outcome listed = Iris("models --json", "", env);
  EXPECT_EQ(listed.code, 0) << listed.err;
  EXPECT_NE(listed.out.find("HuggingFaceTB/SmolVLM2-256M-Video-Instruct"), std::string::npos)
      << listed.out;
}

TEST_F(CliTest, BenchPrintsJson) {
  Outcome o = Iris("bench --model " + Data("smolvlm2/tiny-256m-style") +
                   " --prompt-tokens 16 --decode-tokens 4 --json --image " +
                   Data("smolvlm2/images/split.png"));
  ASSERT_EQ(o.code, 0) << o.err;
  for (const char* key :
       {"\"prefill_tokens_per_second\"", "\"decode_tokens_per_second\"", "\"peak_rss_bytes\"",
        "\"load_seconds\"", "\"threads\"", "\"cpu_features\"", "\"vision_ms_per_tile\"",
        "\"time_to_first_token_seconds\""}) {
    EXPECT_NE(o.out.find(key), std::string::npos) << key;
  }
}

}  // namespace
